"""`Recording`: read a recording back, checking it on the way; every problem is a `RecordingError`."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np
from mcap.exceptions import McapError
from mcap.records import Attachment, Channel, Footer, Header, Message
from mcap.stream_reader import StreamReader

from ogi.replay import format as fmt
from ogi.replay.format import RecordingError
from ogi.replay.model import apply_fields, compile_xml, model_sha256


@dataclass
class StepRecord:
    """One control step: what was written before its physics, and the step's data.

    state_reset: sim -> integration state row that replaced the sim's state before the physics.
    xfrc_applied: sim -> (nbody, 6) applied forces set before the physics.
    model_rows: sim -> {field: row}, per-simulation model fields set before the physics.
    data: the step topic's arrays, (n, ...) each (see `Recording.step_layout`).
    """

    index: int
    data: dict[str, np.ndarray]
    state_reset: dict[int, np.ndarray] = field(default_factory=dict)
    xfrc_applied: dict[int, np.ndarray] = field(default_factory=dict)
    model_rows: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)


def _messages(path: Path) -> Iterator[tuple[Channel | None, object]]:
    """(channel, record) in file order; channel is None for non-message records. Errors become RecordingError."""
    channels: dict[int, Channel] = {}
    footer = False
    try:
        with open(path, "rb") as stream:
            reader = StreamReader(stream, validate_crcs=True, record_size_limit=1 << 30)
            for record in reader.records:
                if isinstance(record, Channel):
                    channels[record.id] = record
                elif isinstance(record, Message):
                    if record.channel_id not in channels:
                        raise RecordingError(f"{path}: message on unknown channel {record.channel_id} (corrupt file)")
                    yield channels[record.channel_id], record
                    continue
                elif isinstance(record, Footer):
                    footer = True
                yield None, record
    except RecordingError:
        raise
    except FileNotFoundError:
        raise RecordingError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise RecordingError(f"{path}: is a directory, not a recording") from None
    except (McapError, struct.error, EOFError, ValueError, KeyError, IndexError, OverflowError, MemoryError) as err:
        kind = "truncated" if "EndOfFile" in type(err).__name__ or isinstance(err, EOFError) else "corrupt"
        raise RecordingError(f"{path}: {kind} recording ({type(err).__name__}: {err})") from None
    except Exception as err:  # the decompressors raise their own types (zstd, lz4)
        raise RecordingError(f"{path}: corrupt recording ({type(err).__name__}: {err})") from None
    if not footer:
        raise RecordingError(f"{path}: truncated recording (no footer; was the recorder closed?)")


class Recording:
    """A recording's header (model, initial state, per-simulation model rows) and lazy access to its steps."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.info: dict = {}
        self.xml: str | None = None
        self.patch: dict[str, np.ndarray] = {}
        self.initial_state: np.ndarray | None = None
        self.initial_model_rows: dict[str, np.ndarray] = {}
        self.step_layout: list[list] = []
        self.reward_terms: list[str] = []
        self.events: list[dict] = []
        self.num_steps = 0
        self.camera_frames = 0
        self._scan()

    # ---- reading -------------------------------------------------------------------------------
    def _scan(self) -> None:
        header_seen = False
        for channel, record in _messages(self.path):
            if isinstance(record, Header):
                header_seen = True
                if record.profile != fmt.PROFILE:
                    raise RecordingError(
                        f"{self.path}: an MCAP file of profile '{record.profile}', not an OGI recording"
                    )
            elif isinstance(record, Attachment) and record.name == fmt.MODEL_ATTACHMENT:
                try:
                    self.xml = bytes(record.data).decode()
                except UnicodeDecodeError:
                    raise RecordingError(
                        f"{self.path}: the model attachment is not UTF-8 text (corrupt file)"
                    ) from None
            elif channel is not None:
                self._read_message(channel, record)
        if not header_seen:
            raise RecordingError(f"{self.path}: no MCAP header")
        self._validate()

    def _read_message(self, channel: Channel, message: Message) -> None:
        topic = channel.topic
        what = f"{self.path}: {topic}"
        if topic == fmt.TOPIC_RECORDING:
            try:
                self.info = json.loads(message.data)
            except ValueError as err:
                raise RecordingError(f"{what}: not JSON ({err})") from None
            if self.info.get("format") != fmt.FORMAT:
                raise RecordingError(f"{what}: format '{self.info.get('format')}' is not '{fmt.FORMAT}'")
            if int(self.info.get("format_version", 0)) > fmt.FORMAT_VERSION:
                raise RecordingError(
                    f"{what}: format version {self.info['format_version']} is newer than "
                    f"this reader's {fmt.FORMAT_VERSION}"
                )
        elif topic == fmt.TOPIC_MODEL_PATCH:
            self.patch = fmt.unpack_arrays(message.data, what)[1]
        elif topic == fmt.TOPIC_INITIAL_STATE:
            self.initial_state = fmt.unpack_arrays(message.data, what)[1]["state"]
        elif topic == fmt.TOPIC_SIM_MODEL and message.sequence == 0:
            meta, rows = fmt.unpack_arrays(message.data, what)
            if meta.get("sims") != list(range(int(self.info.get("num_sims", -1)))):
                raise RecordingError(f"{what}: the first per-simulation model message must cover every simulation")
            self.initial_model_rows = rows
        elif topic == fmt.TOPIC_STEP:
            if not self.step_layout:
                try:
                    self.step_layout = json.loads(channel.metadata["layout"])
                    self.reward_terms = json.loads(channel.metadata.get("reward_terms", "[]"))
                except (KeyError, ValueError) as err:
                    raise RecordingError(f"{what}: channel has no valid layout ({err})") from None
            step = fmt.unpack_fixed(self.step_layout, message.data, what)["step"][0]
            if step != self.num_steps:
                raise RecordingError(f"{what}: step {step} follows step {self.num_steps - 1} (steps missing)")
            self.num_steps += 1
        elif topic == fmt.TOPIC_EVENTS:
            try:
                self.events.append(json.loads(message.data))
            except ValueError as err:
                raise RecordingError(f"{what}: event is not JSON ({err})") from None
        elif topic == fmt.TOPIC_CAMERA:
            self.camera_frames += 1

    def _validate(self) -> None:
        if not self.info:
            raise RecordingError(f"{self.path}: no {fmt.TOPIC_RECORDING} message; not an OGI recording")
        if self.xml is None:
            raise RecordingError(f"{self.path}: no {fmt.MODEL_ATTACHMENT} attachment")
        digest = model_sha256(self.xml)
        if digest != self.info.get("model_sha256"):
            raise RecordingError(
                f"{self.path}: model hash mismatch: the attached model XML hashes to {digest[:16]}..., "
                f"the recording names {str(self.info.get('model_sha256'))[:16]}..."
            )
        n, nstate = int(self.info["num_sims"]), int(self.info["nstate"])
        if self.initial_state is None or self.initial_state.shape != (n, nstate):
            shape = None if self.initial_state is None else self.initial_state.shape
            raise RecordingError(f"{self.path}: initial state is {shape}, expected ({n}, {nstate})")

    # ---- access --------------------------------------------------------------------------------
    @property
    def num_sims(self) -> int:
        return int(self.info["num_sims"])

    def base_model(self) -> mujoco.MjModel:
        """The model compiled from the recorded XML with the recorded patch: the recorder's model."""
        model = compile_xml(self.xml)
        if mujoco.mj_stateSize(model, fmt.STATE_SIG) != int(self.info["nstate"]):
            raise RecordingError(f"{self.path}: the recorded XML compiles to a model of another state size")
        apply_fields(model, self.patch)
        return model

    def sim_model(self, sim: int, base: mujoco.MjModel | None = None) -> mujoco.MjModel:
        """Simulation `sim`'s model at the start of the recording."""
        self.check_sim(sim)
        model = self.base_model() if base is None else base
        apply_fields(model, self.initial_model_rows, row=sim)
        return model

    def check_sim(self, sim: int) -> None:
        """Raise RecordingError unless `sim` is a simulation of the recording."""
        if not 0 <= sim < self.num_sims:
            raise RecordingError(
                f"simulation {sim} is not in the recording (it has {self.num_sims}: 0..{self.num_sims - 1})"
            )

    def images(self, sim: int | None = None) -> Iterator[tuple[dict, np.ndarray]]:
        """The camera topic's images in order, each as (meta {"step", "sim", "name"}, image (H, W, C) uint8)."""
        for channel, message in _messages(self.path):
            if channel is None or channel.topic != fmt.TOPIC_CAMERA:
                continue
            meta, arrays = fmt.unpack_arrays(message.data, f"{self.path}: {channel.topic}")
            if "image" not in arrays:
                raise RecordingError(f"{self.path}: {channel.topic}: message without an image")
            if sim is None or meta.get("sim") == sim:
                yield meta, arrays["image"]

    def steps(self) -> Iterator[StepRecord]:
        """Every step in order, each with the overwrites that preceded its physics (read lazily)."""
        pending = StepRecord(-1, {})
        for channel, message in _messages(self.path):
            if channel is None:
                continue
            topic, what = channel.topic, f"{self.path}: {channel.topic}"
            if topic == fmt.TOPIC_STEP:
                pending.data = fmt.unpack_fixed(self.step_layout, message.data, what)
                pending.index = int(pending.data["step"][0])
                yield pending
                pending = StepRecord(-1, {})
            elif topic in (fmt.TOPIC_STATE_RESET, fmt.TOPIC_XFRC) or (
                topic == fmt.TOPIC_SIM_MODEL and message.sequence > 0
            ):
                meta, arrays = fmt.unpack_arrays(message.data, what)
                sims = meta.get("sims", [])
                if topic == fmt.TOPIC_STATE_RESET:
                    pending.state_reset.update({s: arrays["state"][i] for i, s in enumerate(sims)})
                elif topic == fmt.TOPIC_XFRC:
                    pending.xfrc_applied.update({s: arrays["xfrc_applied"][i] for i, s in enumerate(sims)})
                else:
                    for i, s in enumerate(sims):
                        pending.model_rows[s] = {name: rows[i] for name, rows in arrays.items()}

    def arrays(self, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """Step arrays stacked over time, (steps, n, ...) each; all of them unless `names` is given."""
        chosen = [name for name, _, _ in self.step_layout if names is None or name in names]
        out: dict[str, list[np.ndarray]] = {name: [] for name in chosen}
        for step in self.steps():
            for name in chosen:
                out[name].append(step.data[name])
        return {name: np.stack(values) if values else np.zeros((0,)) for name, values in out.items()}
