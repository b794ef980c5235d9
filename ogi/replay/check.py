"""Exact replay: re-simulate a recording with plain `MjModel`/`MjData` and compare every state bit."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import mujoco
import numpy as np

from ogi.replay.format import STATE_SIG, RecordingError
from ogi.replay.model import apply_fields
from ogi.replay.reader import Recording


class VersionMismatchError(RecordingError):
    """The recording was made with another MuJoCo version; replay may not be exact."""


@dataclass(frozen=True, kw_only=True)
class ReplayResult:
    steps: int
    sims: tuple[int, ...]
    exact: bool
    first_divergence: dict | None  # {"step", "sim", "field", "index", "recorded", "replayed"} of the earliest mismatch

    def as_dict(self) -> dict:
        return {
            "steps": self.steps,
            "sims": list(self.sims),
            "exact": self.exact,
            "first_divergence": self.first_divergence,
        }


def check_version(recording: Recording, strict: bool) -> None:
    recorded = recording.info.get("mujoco_version")
    if strict and recorded != mujoco.__version__:
        raise VersionMismatchError(
            f"{recording.path} was recorded with MuJoCo {recorded}, this is MuJoCo {mujoco.__version__}; "
            "bit-exact replay needs the same version (pass --no-strict to replay anyway)"
        )


def replay_check(
    recording: Recording,
    *,
    sims: list[int] | None = None,
    strict: bool = True,
    progress: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Replay `sims` (default all) from the initial state with the recorded controls and overwrites.

    Compares qpos and qvel after every control step with the recorded values, bit for bit; stops at the
    first step where any simulation diverges. `progress(step)` is called after each step.
    """
    check_version(recording, strict)
    sims = list(range(recording.num_sims)) if sims is None else sims
    for sim in sims:
        recording.check_sim(sim)
    base = recording.base_model()
    models = [recording.sim_model(sim, base=copy.copy(base)) for sim in sims]
    datas = [mujoco.MjData(m) for m in models]
    for sim, model, data in zip(sims, models, datas):
        mujoco.mj_setState(model, data, np.ascontiguousarray(recording.initial_state[sim]), STATE_SIG)
    substeps = int(recording.info["substeps"])
    steps = 0
    for record in recording.steps():
        for sim, model, data in zip(sims, models, datas):
            if sim in record.model_rows:
                apply_fields(model, record.model_rows[sim])
            if sim in record.state_reset:
                mujoco.mj_setState(model, data, np.ascontiguousarray(record.state_reset[sim]), STATE_SIG)
            if sim in record.xfrc_applied:
                data.xfrc_applied[:] = record.xfrc_applied[sim]
            data.ctrl[:] = record.data["ctrl"][sim]
            mujoco.mj_step(model, data, nstep=substeps)
            for name, replayed in (("qpos", data.qpos), ("qvel", data.qvel)):
                recorded = record.data[name][sim]
                differs = recorded.view(np.uint64) != replayed.view(np.uint64)
                if differs.any():
                    index = int(np.flatnonzero(differs)[0])
                    return ReplayResult(
                        steps=steps,
                        sims=tuple(sims),
                        exact=False,
                        first_divergence={
                            "step": record.index,
                            "sim": sim,
                            "field": name,
                            "index": index,
                            "recorded": float(recorded[index]),
                            "replayed": float(replayed[index]),
                        },
                    )
        steps += 1
        if progress is not None:
            progress(steps)
    if steps != recording.num_steps:
        raise RecordingError(f"{recording.path}: read {steps} steps, the scan found {recording.num_steps}")
    return ReplayResult(steps=steps, sims=tuple(sims), exact=True, first_divergence=None)
