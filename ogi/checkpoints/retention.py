"""Retention: keep a run's newest checkpoints and its best by an eval score, prune the rest.

Pruning deletes a checkpoint's manifest and tensor files and leaves ``pruned.json`` in its directory, holding the
checkpoint's hash, step and iteration. Children keep naming it by hash, so the lineage of every kept checkpoint
still verifies and ends at that record (see ``verify_lineage``). Checkpoints that do not verify are never pruned:
they are evidence, and a newest one that is broken does not count towards the kept.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path

from ogi.checkpoints.format import (
    MANIFEST_FILENAME,
    PRUNED_FILENAME,
    STATE_FILENAME,
    WEIGHTS_FILENAME,
    Checkpoint,
    CheckpointError,
    atomic_write,
    read_verified,
)
from ogi.checkpoints.lineage import list_checkpoints


@dataclass(frozen=True, kw_only=True)
class Retention:
    """Which checkpoints of a run to keep.

    keep_last: the newest checkpoints whose files verify to keep; 0 keeps every checkpoint.
    best_by: the eval score whose best checkpoint is kept as well, or None.
    higher_is_better: the direction of ``best_by``.
    """

    keep_last: int
    best_by: str | None = None
    higher_is_better: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.keep_last, bool) or not isinstance(self.keep_last, int) or self.keep_last < 0:
            raise ValueError(f"keep_last = {self.keep_last!r} must be a whole number >= 0 (0 keeps all)")


def prune_checkpoints(run_dir: Path, retention: Retention) -> list[Path]:
    """Prune every checkpoint of ``run_dir`` that ``retention`` does not keep; returns the pruned directories.

    Kept: the ``keep_last`` newest checkpoints whose files verify, and the one with the best ``best_by`` eval score
    (the newer on a tie). Checkpoints that do not verify are left alone. Every file is re-hashed: after the first
    call a run holds only about ``keep_last + 2`` checkpoints, so each call reads a few checkpoints' bytes.
    """
    if retention.keep_last == 0:
        return []
    kept: set[Path] = set()
    candidates: list[Checkpoint] = []
    for directory in reversed(list_checkpoints(run_dir)):
        try:
            checkpoint = read_verified(directory, verify_files=True)
        except CheckpointError:
            continue
        if len(kept) < retention.keep_last:
            kept.add(checkpoint.path)
        candidates.append(checkpoint)
    if retention.best_by is not None:
        sign = 1.0 if retention.higher_is_better else -1.0
        scored = [c for c in candidates if retention.best_by in c.eval_scores]
        if scored:
            best = max(scored, key=lambda c: (sign * c.eval_scores[retention.best_by], c.step))
            kept.add(best.path)
    pruned = []
    for checkpoint in reversed(candidates):
        if checkpoint.path not in kept:
            _prune(checkpoint)
            pruned.append(checkpoint.path)
    return pruned


def _prune(checkpoint: Checkpoint) -> None:
    record = {
        "checkpoint_sha256": checkpoint.checkpoint_sha256,
        "step": checkpoint.step,
        "iteration": checkpoint.iteration,
        "eval_scores": dict(checkpoint.eval_scores),
        "pruned_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    text = json.dumps(record, indent=2, sort_keys=True, ensure_ascii=True, allow_nan=False) + "\n"
    # the record lands before anything is deleted, so a crash never leaves a child naming a parent that is just gone
    atomic_write(checkpoint.path / PRUNED_FILENAME, text.encode("ascii"))
    for name in (MANIFEST_FILENAME, WEIGHTS_FILENAME, STATE_FILENAME):
        (checkpoint.path / name).unlink(missing_ok=True)
