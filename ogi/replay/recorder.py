"""`Recorder`: stream a `WalkVecEnv` rollout into one self-contained MCAP file, step by step.

The recorder observes the env without changing what it computes: it wraps the env's `step` and its
rig's physics call on that one instance (both restored by `close`). Just before the physics of each
control step it compares every simulation's integration state with the state the previous step
ended in: controls are written every step; a changed `xfrc_applied` (a push, or its removal) and any
other changed state (a reset, a layer that moved the robot) are written as exact overwrites, and so
are changed per-simulation model fields (domain randomization at a reset). Replay from the initial
state, the overwrites and the controls is then bit for bit the recorded run.

Memory stays constant: each step is handed to the MCAP writer as it comes, which writes 1 MiB chunks.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mujoco
import numpy as np
from mcap.writer import CompressionType, Writer
from mujoco import batch as mjbatch

from ogi.replay import format as fmt
from ogi.replay.model import compile_xml, model_patch, model_sha256

if TYPE_CHECKING:
    from ogi.envs.walk import WalkVecEnv
    from ogi.envs.wholebody import WholeBodyVecEnv

CONTACT_FORCE_THRESHOLD_N = 1.0  # as the walk env's foot contact


class Recorder:
    """Record `env` into `path` from its next step on; use as a context manager or call `close()`.

    Every later `env.step` is recorded. `add_event` adds an event (safety stop, planner decision, ...)
    to the current step's events.
    """

    def __init__(self, env: WalkVecEnv, path: str | Path, *, meta: dict[str, Any] | None = None):
        if getattr(getattr(env, "sim", None), "delay_substeps", 0):
            # a delayed env steps its physics in two parts per control step, each with its own targets; the
            # recording format holds one control per step, so its replay would not reproduce the run
            raise ValueError(
                "cannot record an env with a command delay (sim.command_delay_s, or a dynamics profile's delay_ms): "
                "recordings hold one set of targets per control step; record with the delay at 0"
            )
        self.env = env
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        model = env.model
        xml = env.rig.spec.to_xml()
        self.patch = model_patch(model, compile_xml(xml))
        self.n = env.num_envs
        self.step_index = 0
        self._closed = False
        self._xfrc = fmt.state_columns(model, mujoco.mjtState.mjSTATE_XFRC_APPLIED)
        self._ctrl = ctrl = fmt.state_columns(model, mujoco.mjtState.mjSTATE_CTRL)
        if not ctrl.stop <= self._xfrc.start:
            raise ValueError("unexpected integration state layout: controls after applied forces")
        # state columns neither controls nor applied forces, as slices
        self._other = (slice(0, ctrl.start), slice(ctrl.stop, self._xfrc.start), slice(self._xfrc.stop, None))
        self._expanded: list[str] = []
        self._live: list[np.ndarray] = []  # the batch's live per-simulation views of those fields
        self._model_bytes = np.zeros((self.n, 0), dtype=np.uint8)  # their values as last recorded
        self._expanded_count = -1
        self._set_const_done = False
        self._ended_state: np.ndarray | None = None
        self._pending: dict[str, np.ndarray] = {}
        self._events: list[dict] = []
        self.reward_terms: list[str] = []
        self.bytes_written = 0
        self.on_close: list = []  # callables run first by close(): layers that feed this recorder stop

        self._file = open(self.path, "wb")
        self._writer = Writer(self._file, compression=CompressionType.LZ4)
        self._writer.start(profile=fmt.PROFILE, library="ogi")
        self._writer.add_attachment(0, 0, fmt.MODEL_ATTACHMENT, "application/xml", xml.encode())
        robot = env.robot
        self.info = {
            "format": fmt.FORMAT,
            "format_version": fmt.FORMAT_VERSION,
            "mujoco_version": mujoco.__version__,
            "model_sha256": model_sha256(xml),
            "robot": robot.name,
            "num_sims": self.n,
            "ctrl_dt_s": env.cfg.sim.ctrl_dt_s,
            "sim_dt_s": env.cfg.sim.sim_dt_s,
            "substeps": env.cfg.sim.substeps,
            "state_sig": fmt.STATE_SIG,
            "nstate": env.batch.nstate,
            "nq": model.nq,
            "nv": model.nv,
            "nu": model.nu,
            "nbody": model.nbody,
            "base_body": robot.base_body,
            "joint_names": list(robot.joint_names),
            "foot_sites": list(robot.foot_sites),
            "torque_limit_nm": [float(t) for t in robot.torque_limit],
            "terrain_kinds": list(env.terrain.kinds) if env.terrain is not None else [],
            "terrain_levels": env.terrain.num_levels if env.terrain is not None else 0,
            "created_unix_s": time.time(),
            **(meta or {}),
        }
        self._channels: dict[str, int] = {}
        self._step_channel: int | None = None
        self._orig_env_step = env.step
        self._orig_rig_step = env.rig.step
        env.step = self._env_step  # type: ignore[method-assign]
        env.rig.step = self._rig_step  # type: ignore[method-assign]

    # ---- public -------------------------------------------------------------------------------
    @staticmethod
    def attached(env: WalkVecEnv) -> Recorder | None:
        """The recorder recording `env` now, or None: how another layer (safety, planner) finds it for events."""
        hook = env.__dict__.get("step")
        owner = getattr(hook, "__self__", None)
        return owner if isinstance(owner, Recorder) and not owner._closed else None

    def add_event(
        self, kind: str, *, sim: int = -1, cause: str = "", data: dict | None = None, step: int | None = None
    ) -> None:
        """Record an event at `step` (default: the step in progress, or the next one between steps) for `sim` (-1: all).

        `data` must be JSON-serializable; kind and cause are free text (e.g. "safety", "torque_limit").
        """
        if self._closed:
            raise RuntimeError("the recorder is closed")
        step = self.step_index if step is None else int(step)
        event = {
            "step": step,
            "time_s": step * self.info["ctrl_dt_s"],
            "sim": int(sim),
            "kind": str(kind),
            "cause": str(cause),
            "data": data or {},
        }
        try:
            json.dumps(event)  # fail here, with the caller on the stack, rather than when the step is written
        except (TypeError, ValueError) as err:
            raise TypeError(f"event data must be JSON-serializable (plain floats, lists, dicts): {err}") from None
        self._events.append(event)

    def add_image(self, image: np.ndarray, *, sim: int, name: str = "planner", step: int | None = None) -> None:
        """Record an image `(H, W, C)` (uint8, or float in [0, 1] stored as uint8) that simulation `sim` saw at
        `step` (default: the step in progress) on the camera topic; replay does not need it, viewers show it."""
        if self._closed:
            raise RuntimeError("the recorder is closed")
        image = np.asarray(image)
        if image.ndim != 3:
            raise ValueError(f"an image must be (height, width, channels), got shape {image.shape}")
        if image.dtype != np.uint8:
            if not np.isfinite(image).all():
                raise ValueError("image values must be finite")
            image = np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
        step = self.step_index if step is None else int(step)
        meta = {"step": step, "sim": int(sim), "name": str(name)}
        channel = self._channel(fmt.TOPIC_CAMERA, fmt.ENCODING_ARRAYS)
        self._message(channel, step, fmt.pack_arrays(meta, {"image": image}))

    def close(self) -> None:
        """Restore the env's methods, write the pending events and the file's summary."""
        if self._closed:
            return
        for stop in self.on_close:
            stop()
        self._closed = True
        self.env.__dict__.pop("step", None)
        self.env.rig.__dict__.pop("step", None)
        try:
            if self._ended_state is None:  # no step was taken: the file still holds the model and the state
                self._write_start(self.env.batch.state)
            self._flush_events()
            self._writer.finish()
        finally:
            self._file.close()
        self.bytes_written = self.path.stat().st_size

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- hooks ---------------------------------------------------------------------------------
    def _rig_step(self, substeps: int) -> np.ndarray:
        env, batch, k = self.env, self.env.batch, self.step_index
        state = batch.state
        if self._ended_state is None:
            self._write_start(state)
        else:
            self._write_overwrites(state, k)
        self._pending = {
            "ctrl": state[:, self._ctrl].copy(),
            "command": env.command.copy(),
            "terrain": self._terrain(),
        }
        failed = self._orig_rig_step(substeps)
        rig = env.rig
        self._ended_state = state.copy()
        self._pending["time"] = batch.bind("time").copy()
        self._pending["qpos"] = rig.qpos().copy()
        self._pending["qvel"] = rig.qvel().copy()
        self._pending["torque"] = rig.joint_torque().copy()
        self._pending["foot_contact"] = (rig.foot_force() > CONTACT_FORCE_THRESHOLD_N).astype(np.uint8)
        return failed

    def _env_step(self, actions):
        obs, reward, terminated, truncated, info = self._orig_env_step(actions)
        k = self.step_index
        terms = {key: value for key, value in info.items() if key.startswith("reward/")}
        if self._step_channel is None:
            self.reward_terms = list(terms)
        arrays = {
            "step": np.array([k], dtype=np.int64),
            "time": self._pending["time"],
            "qpos": self._pending["qpos"],
            "qvel": self._pending["qvel"],
            "ctrl": self._pending["ctrl"],
            "command": self._pending["command"],
            "reward": np.asarray(reward, dtype=np.float64),
            "reward_terms": np.column_stack([terms[t] for t in self.reward_terms]).astype(np.float64)
            if self.reward_terms
            else np.zeros((self.n, 0)),
            "torque": self._pending["torque"],
            "foot_contact": self._pending["foot_contact"],
            "terrain": self._pending["terrain"],
            "terminated": np.asarray(terminated, dtype=np.uint8),
            "truncated": np.asarray(truncated, dtype=np.uint8),
        }
        if self._step_channel is None:
            self._register_step_channel(arrays)
        self._message(self._step_channel, k, fmt.pack_fixed(arrays))
        for sim in np.flatnonzero(info.get("pushed", np.zeros(self.n, dtype=bool))):
            force = self.env.push_force[sim]
            self.add_event("push", sim=int(sim), cause="randomization", data={"force_n": force.tolist()}, step=k)
        done = np.asarray(terminated) | np.asarray(truncated)
        for sim in np.flatnonzero(done):
            cause = (
                "diverged"
                if info["diverged"][sim]
                else "fell"
                if info["fell"][sim]
                else ("terminated" if terminated[sim] else "time_limit")
            )
            self.add_event(
                "reset", sim=int(sim), cause=cause, data={"episode_steps": int(info["episode_length"][sim])}, step=k
            )
        self.step_index += 1
        self._flush_events()
        return obs, reward, terminated, truncated, info

    # ---- writing ------------------------------------------------------------------------------
    def _terrain(self) -> np.ndarray:
        cur = self.env.curriculum
        if cur is None:
            return np.full((self.n, 2), -1, dtype=np.int32)
        return np.column_stack([cur.kind, cur.level]).astype(np.int32)

    def _channel(self, topic: str, encoding: str, metadata: dict[str, str] | None = None, schema: int = 0) -> int:
        if topic not in self._channels:
            self._channels[topic] = self._writer.register_channel(topic, encoding, schema, metadata or {})
        return self._channels[topic]

    def _message(self, channel: int, step: int, payload: bytes) -> None:
        t = round(step * self.info["ctrl_dt_s"] * 1e9)
        self._writer.add_message(channel, log_time=t, data=payload, publish_time=t, sequence=step)

    def _write_start(self, state: np.ndarray) -> None:
        self._model_fields_changed(force_scan=True)
        info = dict(self.info, expanded_fields=self._expanded)
        self._message(self._channel(fmt.TOPIC_RECORDING, fmt.ENCODING_JSON), 0, json.dumps(info).encode())
        self._message(self._channel(fmt.TOPIC_MODEL_PATCH, fmt.ENCODING_ARRAYS), 0, fmt.pack_arrays({}, self.patch))
        self._write_model_rows(np.arange(self.n), 0)
        self._message(
            self._channel(fmt.TOPIC_INITIAL_STATE, fmt.ENCODING_ARRAYS),
            0,
            fmt.pack_arrays({"step": 0, "sims": list(range(self.n))}, {"state": state.copy()}),
        )

    def _model_fields_changed(self, force_scan: bool) -> np.ndarray:
        """(n,) bool: simulations whose per-simulation model fields differ from the last recorded ones.

        The set of per-simulation fields grows when a field is first expanded (randomization, a layer setting
        gains) or set_const first runs; a full look over MODEL_FIELDS costs ~1 ms, so it is taken only then.
        """
        batch = self.env.batch
        cache = getattr(batch, "_expanded", None)  # Batch's own record of expand() calls
        set_const_done = batch.expanded("body_subtreemass") is not None  # among mj_setConst's outputs
        count = -2 if cache is None else len(cache)
        if force_scan or cache is None or count != self._expanded_count or set_const_done != self._set_const_done:
            self._expanded_count, self._set_const_done = count, set_const_done
            self._expanded = [name for name in sorted(mjbatch.MODEL_FIELDS) if batch.expanded(name) is not None]
            self._live = [batch.expanded(name) for name in self._expanded]
            self._model_bytes = np.zeros((self.n, 0), dtype=np.uint8)  # a new field: every row is new
        now = self._model_row_bytes()
        if now.shape != self._model_bytes.shape:
            return np.ones(self.n, dtype=bool)
        return (now != self._model_bytes).any(axis=1)

    def _model_row_bytes(self) -> np.ndarray:
        if not self._live:
            return np.zeros((self.n, 0), dtype=np.uint8)
        return np.concatenate([np.ascontiguousarray(v).reshape(self.n, -1).view(np.uint8) for v in self._live], axis=1)

    def _write_model_rows(self, sims: np.ndarray, step: int) -> None:
        rows = {name: np.array(values[sims]) for name, values in zip(self._expanded, self._live)}
        self._model_bytes = self._model_row_bytes()
        self._message(
            self._channel(fmt.TOPIC_SIM_MODEL, fmt.ENCODING_ARRAYS),
            step,
            fmt.pack_arrays({"step": step, "sims": sims.tolist()}, rows),
        )

    def _write_overwrites(self, state: np.ndarray, k: int) -> None:
        # compared as bits: -0.0 vs 0.0 and NaN payloads count as changes
        differs = state.view(np.uint64) != self._ended_state.view(np.uint64)
        changed = np.zeros(self.n, dtype=bool)
        for columns in self._other:
            changed |= differs[:, columns].any(axis=1)
        if changed.any():
            sims = np.flatnonzero(changed)
            self._message(
                self._channel(fmt.TOPIC_STATE_RESET, fmt.ENCODING_ARRAYS),
                k,
                fmt.pack_arrays({"step": k, "sims": sims.tolist()}, {"state": state[sims].copy()}),
            )
        pushed = differs[:, self._xfrc].any(axis=1) & ~changed
        if pushed.any():
            sims = np.flatnonzero(pushed)
            xfrc = state[sims][:, self._xfrc].reshape(len(sims), self.info["nbody"], 6)
            self._message(
                self._channel(fmt.TOPIC_XFRC, fmt.ENCODING_ARRAYS),
                k,
                fmt.pack_arrays({"step": k, "sims": sims.tolist()}, {"xfrc_applied": xfrc}),
            )
        model_changed = self._model_fields_changed(force_scan=False)
        if model_changed.any():
            self._write_model_rows(np.flatnonzero(model_changed), k)

    def _register_step_channel(self, arrays: dict[str, np.ndarray]) -> None:
        metadata = {"layout": json.dumps(fmt.layout_of(arrays)), "reward_terms": json.dumps(self.reward_terms)}
        self._step_channel = self._channel(fmt.TOPIC_STEP, fmt.ENCODING_FIXED, metadata)

    def _flush_events(self) -> None:
        if not self._events:
            return
        if fmt.TOPIC_EVENTS not in self._channels:
            schema = self._writer.register_schema("ogi.Event", "jsonschema", json.dumps(fmt.EVENT_SCHEMA).encode())
            self._channel(fmt.TOPIC_EVENTS, fmt.ENCODING_JSON, schema=schema)
        channel = self._channels[fmt.TOPIC_EVENTS]
        for event in sorted(self._events, key=lambda e: e["step"]):
            self._message(channel, event["step"], json.dumps(event).encode())
        self._events.clear()


def record_whole_body(env: WholeBodyVecEnv, path: str | Path, *, meta: dict[str, Any] | None = None) -> Recorder:
    """A `Recorder` of a whole-body task env's physics (box and tables are in its state and model), with a `task`
    event for each simulation's goal: now, at each episode start and when a goal moves. Closing it stops both."""
    recorder = Recorder(env.walk, path, meta={"task": env.cfg.task, **(meta or {})})

    def goals(ids: np.ndarray, cause: str) -> None:
        for i in ids:
            data = {"task": env.cfg.task, "goal": env.goal[i].tolist()}
            if env.cfg.task == "pick_place":
                data["tables_xy"] = env.table_xy[i].tolist()
            recorder.add_event("task", sim=int(i), cause=cause, data=data)

    goals(np.arange(env.num_envs), "recording start")
    env.goal_listeners.append(goals)
    recorder.on_close.append(lambda: env.goal_listeners.remove(goals))
    return recorder
