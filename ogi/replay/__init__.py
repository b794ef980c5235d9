"""Recording rollouts to MCAP, exact replay, viewing, video and plots."""

from ogi.replay.check import ReplayResult, VersionMismatchError, replay_check
from ogi.replay.format import RecordingError
from ogi.replay.reader import Recording, StepRecord
from ogi.replay.recorder import Recorder

__all__ = [
    "Recorder",
    "Recording",
    "RecordingError",
    "ReplayResult",
    "StepRecord",
    "VersionMismatchError",
    "replay_check",
]
