"""Lineage: walking a checkpoint's parent chain with every hash checked, and finding a run's newest valid checkpoint.

A chain runs from a checkpoint back to the first of its run (or of the run it was started from). Retention may
delete an old checkpoint's files; it leaves ``pruned.json`` naming the checkpoint by hash, and a chain that reaches
such a record ends there: the child's manifest still names its parent by hash, so the link is checked, not skipped.
A parent that is simply gone, or replaced by another checkpoint, breaks the chain.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

from ogi.checkpoints.format import (
    CHECKPOINTS_DIRNAME,
    MANIFEST_FILENAME,
    PRUNED_FILENAME,
    Checkpoint,
    CheckpointError,
    CheckpointManifestError,
    CheckpointMissingError,
    CorruptCheckpointWarning,
    LineageError,
    NoValidCheckpointError,
    read_verified,
)

_SHORT = 12  # hex digits of a hash shown in messages


@dataclass(frozen=True, kw_only=True)
class PrunedCheckpoint:
    """What retention left of a checkpoint: its directory and identity (the hash its children record)."""

    path: Path
    checkpoint_sha256: str
    step: int
    iteration: int


@dataclass(frozen=True, kw_only=True)
class Lineage:
    """A verified chain, newest first, and the pruned parent it ends at (None if it reaches the run's first)."""

    checkpoints: tuple[Checkpoint, ...]
    pruned_parent: PrunedCheckpoint | None = None


def verify_lineage(path: Path, *, walk_lineage: bool = True, verify_parent_files: bool = True) -> Lineage:
    """Re-derive every hash of a checkpoint and, with ``walk_lineage``, of each parent back to the run's first.

    The chain ends early, without error, at a parent retention pruned whose record holds the hash the child names.
    With ``verify_parent_files=False`` parents' manifests and links are checked but their tensor files are not
    re-hashed. Raises a CheckpointError subclass naming the file and what differed.
    """
    checkpoint = read_verified(Path(path), verify_files=True)
    chain = [checkpoint]
    seen = {checkpoint.path.resolve()}
    while walk_lineage and checkpoint.parent_sha256 is not None:
        parent_dir = checkpoint.parent_dir
        assert parent_dir is not None  # the manifest check pairs parent with parent_path
        recorded = checkpoint.parent_sha256[:_SHORT]
        if parent_dir.resolve() in seen:
            raise LineageError(f"{checkpoint.manifest_path}: parent {parent_dir} is already in the chain (a cycle)")
        pruned = read_pruned(parent_dir)
        if pruned is not None:
            if pruned.checkpoint_sha256 != checkpoint.parent_sha256:
                raise LineageError(
                    f"{checkpoint.manifest_path} records parent checkpoint_sha256 {recorded} but "
                    f"{parent_dir / PRUNED_FILENAME} names {pruned.checkpoint_sha256[:_SHORT]}: "
                    "the parent was replaced by a different checkpoint"
                )
            return Lineage(checkpoints=tuple(chain), pruned_parent=pruned)
        try:
            parent = read_verified(parent_dir, verify_files=verify_parent_files)
        except CheckpointMissingError as error:
            raise LineageError(
                f"{checkpoint.manifest_path} names parent {parent_dir} (checkpoint_sha256 {recorded}), "
                f"which is missing: {error}"
            ) from error
        if parent.checkpoint_sha256 != checkpoint.parent_sha256:
            raise LineageError(
                f"{checkpoint.manifest_path} records parent checkpoint_sha256 {recorded} but {parent.manifest_path} "
                f"has {parent.checkpoint_sha256[:_SHORT]}: the parent was replaced by a different checkpoint"
            )
        seen.add(parent_dir.resolve())
        chain.append(parent)
        checkpoint = parent
    return Lineage(checkpoints=tuple(chain))


def verify_checkpoint(
    path: Path,
    *,
    walk_lineage: bool = True,
    verify_parent_files: bool = True,
) -> list[Checkpoint]:
    """The checkpoints of :func:`verify_lineage`'s chain, newest first: ``[checkpoint, parent, ..., oldest kept]``."""
    return list(verify_lineage(path, walk_lineage=walk_lineage, verify_parent_files=verify_parent_files).checkpoints)


def read_pruned(directory: Path) -> PrunedCheckpoint | None:
    """The record retention left in ``directory``, or None if it holds a checkpoint (a manifest) or no record."""
    directory = Path(directory)
    path = directory / PRUNED_FILENAME
    if (directory / MANIFEST_FILENAME).exists() or not path.is_file():
        return None
    try:
        record = json.loads(path.read_bytes())
    except ValueError as error:
        raise CheckpointManifestError(f"{path} is not valid JSON: {error}") from None
    kinds = {"checkpoint_sha256": str, "step": int, "iteration": int}
    if not isinstance(record, dict) or any(not isinstance(record.get(key), kind) for key, kind in kinds.items()):
        raise CheckpointManifestError(f"{path} must be an object with {', '.join(kinds)}")
    return PrunedCheckpoint(
        path=directory,
        checkpoint_sha256=record["checkpoint_sha256"],
        step=record["step"],
        iteration=record["iteration"],
    )


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoint directories of a run, oldest step first, whether or not they verify; pruned ones are left out."""
    root = Path(run_dir) / CHECKPOINTS_DIRNAME
    if not root.is_dir():
        return []
    entries = (entry for entry in root.iterdir() if entry.is_dir() and entry.name.isdigit())
    kept = (
        entry for entry in entries if (entry / MANIFEST_FILENAME).exists() or not (entry / PRUNED_FILENAME).exists()
    )
    return sorted(kept, key=lambda entry: int(entry.name))


def latest_valid_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The newest checkpoint of a run whose files and lineage verify, or None; newer broken ones are warned about.

    Broken checkpoints are never deleted. Parents' tensor files are not re-hashed: resuming needs only this
    checkpoint's bytes and an unbroken chain of manifests, and a damaged ancestor file should not cost the run.
    """
    for directory in reversed(list_checkpoints(run_dir)):
        try:
            return verify_checkpoint(directory, verify_parent_files=False)[0]
        except CheckpointError as error:
            warnings.warn(
                f"skipping checkpoint {directory}: {type(error).__name__}: {error}",
                CorruptCheckpointWarning,
                stacklevel=2,
            )
    return None


def resolve_checkpoint(path: Path) -> Path:
    """A checkpoint directory as given, or the newest valid checkpoint of a run directory.

    Raises NoValidCheckpointError (a CheckpointError and a FileNotFoundError) when ``path`` is neither.
    """
    path = Path(path)
    if (path / MANIFEST_FILENAME).is_file():
        return path
    latest = latest_valid_checkpoint(path)
    if latest is None:
        raise NoValidCheckpointError(
            f"{path}: no valid checkpoint "
            "(neither a checkpoint directory nor a run directory holding one that verifies)"
        )
    return latest.path


@dataclass(frozen=True, kw_only=True)
class VerifyResult:
    """One checkpoint's verification: its lineage, or the error that stopped it."""

    target: Path
    lineage: Lineage | None = None
    error: CheckpointError | None = None


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    """What ``ogi verify PATH`` found: one result for a checkpoint, one per checkpoint for a run directory."""

    path: Path
    is_run: bool
    results: tuple[VerifyResult, ...]

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(result.error is None for result in self.results)


def verify_path(path: Path) -> VerifyReport:
    """Verify one checkpoint and its lineage, or every checkpoint of a run directory (a run's parents' tensor files
    are not re-hashed: each is verified as a checkpoint of its own). Returns data; nothing is printed."""
    path = Path(path)
    is_run = not (path / MANIFEST_FILENAME).exists() and (path / CHECKPOINTS_DIRNAME).is_dir()
    results = []
    for target in list_checkpoints(path) if is_run else [path]:
        try:
            lineage = verify_lineage(target, verify_parent_files=not is_run)
        except CheckpointError as error:
            results.append(VerifyResult(target=target, error=error))
        else:
            results.append(VerifyResult(target=target, lineage=lineage))
    return VerifyReport(path=path, is_run=is_run, results=tuple(results))
