"""Recording rollouts to MCAP, exact replay, viewing, video and plots.

Names load on first use, so that `ogi` (which registers the replay commands) starts without MuJoCo.
"""

import importlib

_WHERE = {
    "Recorder": "ogi.replay.recorder",
    "Recording": "ogi.replay.reader",
    "RecordingError": "ogi.replay.format",
    "ReplayResult": "ogi.replay.check",
    "StepRecord": "ogi.replay.reader",
    "VersionMismatchError": "ogi.replay.check",
    "VideoConfig": "ogi.replay.video",
    "record_whole_body": "ogi.replay.recorder",
    "replay_check": "ogi.replay.check",
    "write_plots": "ogi.replay.plots",
    "write_video": "ogi.replay.video",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'ogi.replay' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
