"""Checkpoints: safetensors tensors plus a JSON manifest of hashes that chains each checkpoint to its parent.

One checkpoint is the directory ``<run>/checkpoints/<step:09d>/`` holding

- ``weights.safetensors``: the policy tensors, all that export and deployment need;
- ``state.safetensors``: every other tensor a bit-identical resume needs (optimizer moments, normalizer statistics,
  the torch RNG state as uint8);
- ``manifest.json``, written last: sha256 and byte size of both files, the full config and its hash, the reward
  weights, the non-tensor training state (curriculum, numpy RNG, optimizer structure) and its hash, the eval scores,
  the parent's ``checkpoint_sha256``, and ``checkpoint_sha256`` itself: the hash of this manifest without that field.

Hashes are sha256 hex digests; JSON values are hashed in canonical form (:func:`canonical_json`).
Every load path reads only safetensors and JSON, so loading a checkpoint can never run pickled code.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as _load_safetensors
from safetensors.torch import save as _save_safetensors

from ogi.training.resume_state import (  # noqa: F401  (part of this module's API)
    ResumeStateError,
    numpy_rng_from_state,
    numpy_rng_state,
    optimizer_state_from_tensors,
    optimizer_state_to_tensors,
)

FORMAT_VERSION = 1
CHECKPOINTS_DIRNAME = "checkpoints"
WEIGHTS_FILENAME = "weights.safetensors"
STATE_FILENAME = "state.safetensors"
MANIFEST_FILENAME = "manifest.json"
_TENSOR_FILES = {"weights": WEIGHTS_FILENAME, "state": STATE_FILENAME}
_SHORT = 12  # hex digits of a hash shown in messages: enough to tell two digests apart by eye
_HASH_CHUNK_BYTES = 1 << 20
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "format_version": int, "step": int, "iteration": int, "created_utc": str,
    "weights_sha256": str, "state_sha256": str, "weights_bytes": int, "state_bytes": int,
    "config": dict, "config_sha256": str, "reward_weights": dict, "data_manifest": dict, "data_sha256": str,
    "parent": (str, type(None)), "parent_path": (str, type(None)), "eval_scores": dict, "checkpoint_sha256": str,
}


class CheckpointError(ValueError):
    """A checkpoint that cannot be trusted or read; the subclass says why."""


class CheckpointMissingError(CheckpointError):
    """A checkpoint directory or one of its files does not exist."""


class CheckpointTruncatedError(CheckpointError):
    """A file's size differs from the byte count its manifest records."""


class CheckpointHashMismatchError(CheckpointError):
    """Right size, wrong sha256 (a flipped bit), or a manifest whose content no longer matches its own hash."""


class CheckpointManifestError(CheckpointError):
    """A manifest that is not valid JSON, lacks fields, or has another format version."""


class LineageError(CheckpointError):
    """The parent chain is broken: a parent is missing, was replaced, or the chain loops."""


class CorruptCheckpointWarning(UserWarning):
    """A checkpoint skipped by :func:`latest_valid_checkpoint` because it does not verify."""


@dataclass(frozen=True, kw_only=True)
class Checkpoint:
    """A checkpoint directory and its parsed manifest (the manifest is not to be mutated)."""

    path: Path
    manifest: Mapping[str, Any]

    @property
    def step(self) -> int:
        """Environment steps taken when this checkpoint was written."""
        return self.manifest["step"]

    @property
    def iteration(self) -> int:
        return self.manifest["iteration"]

    @property
    def checkpoint_sha256(self) -> str:
        return self.manifest["checkpoint_sha256"]

    @property
    def parent_sha256(self) -> str | None:
        return self.manifest["parent"]

    @property
    def parent_dir(self) -> Path | None:
        """The parent checkpoint's directory, or None for the first checkpoint of a run."""
        relative = self.manifest["parent_path"]
        return None if relative is None else Path(os.path.normpath(self.path / relative))

    @property
    def config(self) -> Mapping[str, Any]:
        return self.manifest["config"]

    @property
    def reward_weights(self) -> Mapping[str, float]:
        return self.manifest["reward_weights"]

    @property
    def data_manifest(self) -> Mapping[str, Any]:
        return self.manifest["data_manifest"]

    @property
    def eval_scores(self) -> Mapping[str, float]:
        return self.manifest["eval_scores"]

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST_FILENAME

    @property
    def weights_path(self) -> Path:
        return self.path / WEIGHTS_FILENAME

    @property
    def state_path(self) -> Path:
        return self.path / STATE_FILENAME


@dataclass(frozen=True, kw_only=True)
class LoadedCheckpoint:
    """A checkpoint with its tensors read into CPU memory."""

    checkpoint: Checkpoint
    weights: dict[str, torch.Tensor]
    state: dict[str, torch.Tensor]

    @property
    def path(self) -> Path:
        return self.checkpoint.path

    @property
    def manifest(self) -> Mapping[str, Any]:
        return self.checkpoint.manifest

    @property
    def data_manifest(self) -> Mapping[str, Any]:
        return self.checkpoint.data_manifest


def canonical_json(value: Any) -> bytes:
    """The byte string hashed for a JSON value: sorted keys, no whitespace, ASCII only, no NaN or infinity."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


def json_sha256(value: Any) -> str:
    """sha256 hex digest of :func:`canonical_json` of ``value``."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 hex digest of a file's bytes, read in chunks so large files need little memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(
    run_dir: Path,
    *,
    step: int,
    iteration: int,
    weights: Mapping[str, torch.Tensor],
    state: Mapping[str, torch.Tensor],
    config: Mapping[str, Any],
    reward_weights: Mapping[str, float],
    data_manifest: Mapping[str, Any],
    eval_scores: Mapping[str, float] | None = None,
    parent: Checkpoint | None = None,
) -> Checkpoint:
    """Write ``<run_dir>/checkpoints/<step:09d>/`` atomically, manifest last, and return it.

    ``step`` counts environment steps; ``parent`` is the previous checkpoint of this lineage, None for a run's first.
    A crash before the manifest lands leaves a directory without a manifest, which no reader accepts.
    Raises CheckpointError if a checkpoint already exists at this step: checkpoints are never overwritten.
    """
    for name, value in (("step", step), ("iteration", iteration)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"checkpoint {name} must be an int >= 0, got {value!r}")
    if not weights:
        raise ValueError("checkpoint weights are empty: a checkpoint must hold the policy's tensors")
    directory = Path(run_dir) / CHECKPOINTS_DIRNAME / f"{step:09d}"
    manifest_path = directory / MANIFEST_FILENAME
    if manifest_path.exists():
        raise CheckpointError(f"{manifest_path} already exists: checkpoints are never overwritten; move it aside first")
    if parent is not None:
        on_disk = _read_manifest(parent.path, check_hashes=False)
        if on_disk["checkpoint_sha256"] != parent.checkpoint_sha256:
            raise LineageError(
                f"parent {parent.manifest_path} on disk has checkpoint_sha256 {on_disk['checkpoint_sha256'][:_SHORT]}, "
                f"not the {parent.checkpoint_sha256[:_SHORT]} of the Checkpoint passed as parent")
    config_json = _as_json(config, "config")
    data_json = _as_json(data_manifest, "data_manifest")
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "step": step,
        "iteration": iteration,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": config_json,
        "config_sha256": json_sha256(config_json),
        "reward_weights": _finite_floats(reward_weights, "reward_weights"),
        "data_manifest": data_json,
        "data_sha256": json_sha256(data_json),
        "eval_scores": _finite_floats(eval_scores or {}, "eval_scores"),
        "parent": None if parent is None else parent.checkpoint_sha256,
        "parent_path": None if parent is None else os.path.relpath(parent.path, directory),
    }
    _make_directory(directory)
    for field, tensors in (("weights", weights), ("state", state)):
        data = _tensors_to_bytes(tensors, field)
        _atomic_write(directory / _TENSOR_FILES[field], data)
        manifest[f"{field}_sha256"] = hashlib.sha256(data).hexdigest()
        manifest[f"{field}_bytes"] = len(data)
    manifest["checkpoint_sha256"] = json_sha256(manifest)
    if manifest_path.exists():
        raise CheckpointError(f"{manifest_path} appeared while saving: another writer saved this step")
    text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=True, allow_nan=False) + "\n"
    _atomic_write(manifest_path, text.encode("ascii"))
    return Checkpoint(path=directory, manifest=manifest)


def load_checkpoint(path: Path, *, verify: bool = True) -> LoadedCheckpoint:
    """Read a checkpoint's tensors (CPU) and manifest; with ``verify`` every size and hash is checked first.

    The lineage is not walked here (see :func:`verify_checkpoint`). Each file is read once and its bytes are both
    hashed and parsed, so what is loaded is exactly what was verified.
    """
    directory = Path(path)
    manifest = _read_manifest(directory, check_hashes=verify)
    tensors: dict[str, dict[str, torch.Tensor]] = {}
    for field, filename in _TENSOR_FILES.items():
        file = directory / filename
        if not file.is_file():
            raise CheckpointMissingError(f"{file} does not exist")
        data = file.read_bytes()
        if verify:
            _check_size(file, len(data), manifest[f"{field}_bytes"])
            _check_digest(file, hashlib.sha256(data).hexdigest(), manifest[f"{field}_sha256"])
        try:
            tensors[field] = _load_safetensors(data)
        except SafetensorError as error:
            raise CheckpointError(f"{file} is not a readable safetensors file: {error}") from error
    return LoadedCheckpoint(
        checkpoint=Checkpoint(path=directory, manifest=manifest), weights=tensors["weights"], state=tensors["state"])


def verify_checkpoint(
    path: Path, *, walk_lineage: bool = True, verify_parent_files: bool = True,
) -> list[Checkpoint]:
    """Re-derive every hash of a checkpoint and, with ``walk_lineage``, of each parent back to the run's first.

    Returns the chain newest first: ``[checkpoint, parent, grandparent, ..., first]``. With
    ``verify_parent_files=False`` parents' manifests and links are checked but their tensor files are not re-hashed.
    Raises a CheckpointError subclass naming the file and what differed.
    """
    checkpoint = _verify_one(Path(path), verify_files=True)
    chain = [checkpoint]
    seen = {checkpoint.path.resolve()}
    while walk_lineage and checkpoint.parent_sha256 is not None:
        parent_dir = checkpoint.parent_dir
        assert parent_dir is not None  # _check_fields pairs parent with parent_path
        recorded = checkpoint.parent_sha256[:_SHORT]
        if parent_dir.resolve() in seen:
            raise LineageError(f"{checkpoint.manifest_path}: parent {parent_dir} is already in the chain (a cycle)")
        try:
            parent = _verify_one(parent_dir, verify_files=verify_parent_files)
        except CheckpointMissingError as error:
            raise LineageError(
                f"{checkpoint.manifest_path} names parent {parent_dir} (checkpoint_sha256 {recorded}), "
                f"which is missing: {error}") from error
        if parent.checkpoint_sha256 != checkpoint.parent_sha256:
            raise LineageError(
                f"{checkpoint.manifest_path} records parent checkpoint_sha256 {recorded} but {parent.manifest_path} "
                f"has {parent.checkpoint_sha256[:_SHORT]}: the parent was replaced by a different checkpoint")
        seen.add(parent_dir.resolve())
        chain.append(parent)
        checkpoint = parent
    return chain


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoint directories of a run, oldest step first, whether or not they verify (none if the run is new)."""
    root = Path(run_dir) / CHECKPOINTS_DIRNAME
    if not root.is_dir():
        return []
    return sorted((entry for entry in root.iterdir() if entry.is_dir() and entry.name.isdigit()),
                  key=lambda entry: int(entry.name))


def latest_valid_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The newest checkpoint of a run whose files and lineage verify, or None; newer broken ones are warned about.

    Broken checkpoints are never deleted. Parents' tensor files are not re-hashed: resuming needs only this
    checkpoint's bytes and an unbroken chain of manifests, and a damaged ancestor file should not cost the run.
    """
    for directory in reversed(list_checkpoints(run_dir)):
        try:
            return verify_checkpoint(directory, verify_parent_files=False)[0]
        except CheckpointError as error:
            warnings.warn(f"skipping checkpoint {directory}: {type(error).__name__}: {error}",
                          CorruptCheckpointWarning, stacklevel=2)
    return None


def verify_command(path: Path) -> int:
    """``ogi verify PATH``: verify one checkpoint and its lineage, or every checkpoint of a run directory.

    Prints one line per checkpoint; returns the exit code, 0 if all verify and 1 otherwise.
    """
    path = Path(path)
    is_run = not (path / MANIFEST_FILENAME).exists() and (path / CHECKPOINTS_DIRNAME).is_dir()
    targets = list_checkpoints(path) if is_run else [path]
    if not targets:
        print(f"INVALID {path}: the run has no checkpoints")
        return 1
    all_valid = True
    for target in targets:
        try:
            chain = verify_checkpoint(target, verify_parent_files=not is_run)
        except CheckpointError as error:
            print(f"INVALID {target}\n    {type(error).__name__}: {error}")
            all_valid = False
            continue
        print(f"ok      {target}  ({len(chain)} checkpoint(s) back to {chain[-1].path})")
        for checkpoint in [] if is_run else chain:
            print(f"    {_describe(checkpoint)}")
    return 0 if all_valid else 1


def _verify_one(directory: Path, *, verify_files: bool) -> Checkpoint:
    manifest = _read_manifest(directory, check_hashes=True)
    for field, filename in _TENSOR_FILES.items() if verify_files else ():
        file = directory / filename
        if not file.is_file():
            raise CheckpointMissingError(f"{file} does not exist")
        _check_size(file, file.stat().st_size, manifest[f"{field}_bytes"])
        _check_digest(file, file_sha256(file), manifest[f"{field}_sha256"])
    return Checkpoint(path=directory, manifest=manifest)


def _read_manifest(directory: Path, *, check_hashes: bool) -> dict[str, Any]:
    if not directory.is_dir():
        raise CheckpointMissingError(f"checkpoint directory {directory} does not exist")
    path = directory / MANIFEST_FILENAME
    if not path.is_file():
        raise CheckpointMissingError(
            f"{path} does not exist: the manifest is written last, so this save never completed")
    try:
        manifest = json.loads(path.read_bytes(), parse_constant=_reject_constant)
    except ValueError as error:
        raise CheckpointManifestError(f"{path} is not valid JSON: {error}") from None
    _check_fields(manifest, path)
    if check_hashes:
        content = {key: value for key, value in manifest.items() if key != "checkpoint_sha256"}
        _check_json_hash(path, "checkpoint_sha256", json_sha256(content), manifest["checkpoint_sha256"])
        _check_json_hash(path, "config_sha256", json_sha256(manifest["config"]), manifest["config_sha256"])
        _check_json_hash(path, "data_sha256", json_sha256(manifest["data_manifest"]), manifest["data_sha256"])
    return manifest


def _check_fields(manifest: Any, path: Path) -> None:
    if not isinstance(manifest, dict):
        raise CheckpointManifestError(f"{path} holds a JSON {type(manifest).__name__}, not an object")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CheckpointManifestError(
            f"{path} has format_version {manifest.get('format_version')!r}; this code reads version {FORMAT_VERSION}")
    missing = sorted(set(_FIELD_TYPES) - set(manifest))
    if missing:
        raise CheckpointManifestError(f"{path} lacks the fields {missing}")
    wrong = [f"{key} ({type(manifest[key]).__name__})" for key, kind in _FIELD_TYPES.items()
             if not isinstance(manifest[key], kind) or (kind is int and isinstance(manifest[key], bool))]
    if wrong:
        raise CheckpointManifestError(f"{path} has fields of the wrong type: {', '.join(wrong)}")
    if (manifest["parent"] is None) != (manifest["parent_path"] is None):
        raise CheckpointManifestError(f"{path}: parent and parent_path must both be null or both be set")


def _check_json_hash(path: Path, field: str, actual: str, expected: str) -> None:
    if actual != expected:
        raise CheckpointHashMismatchError(
            f"{path}: content hashes to {actual[:_SHORT]} but {field} records {expected[:_SHORT]}: "
            "the manifest was edited or damaged")


def _check_size(file: Path, actual: int, expected: int) -> None:
    if actual != expected:
        how = "truncated" if actual < expected else "longer than written"
        raise CheckpointTruncatedError(
            f"{file} is {actual} bytes but the manifest records {expected}: the file is {how}")


def _check_digest(file: Path, actual: str, expected: str) -> None:
    if actual != expected:
        raise CheckpointHashMismatchError(
            f"{file} has sha256 {actual[:_SHORT]} but the manifest records {expected[:_SHORT]} "
            "(same size, so bytes were altered in place, e.g. a flipped bit)")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a checkpoint manifest")


def _as_json(value: Mapping[str, Any], field: str) -> dict[str, Any]:
    """``value`` as the plain JSON object it will be stored and hashed as (tuples become lists)."""
    if not isinstance(value, Mapping):
        raise TypeError(f"checkpoint {field} must be a mapping, got {type(value).__name__}")
    try:
        return json.loads(json.dumps(value, default=_json_default, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise ValueError(f"checkpoint {field} must be JSON with finite numbers: {error}") from None


def _json_default(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    raise TypeError(f"a {type(value).__name__} is not JSON-serializable")


def _finite_floats(values: Mapping[str, float], field: str) -> dict[str, float]:
    result = {}
    for name, value in values.items():
        if not isinstance(name, str) or not math.isfinite(float(value)):
            raise ValueError(f"checkpoint {field} must map names to finite numbers, got {name!r}: {value!r}")
        result[name] = float(value)
    return result


def _tensors_to_bytes(tensors: Mapping[str, torch.Tensor], field: str) -> bytes:
    prepared = {}
    for name, tensor in tensors.items():
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            raise TypeError(f"checkpoint {field} must map str to torch.Tensor, got {name!r}: {type(tensor).__name__}")
        # A private contiguous CPU copy: safetensors refuses tensors that share storage (e.g. tied weights).
        prepared[name] = tensor.detach().to("cpu", copy=True).contiguous()
    return _save_safetensors(prepared)


def _make_directory(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    # The new directory entries must be durable too, or a power cut can lose the whole checkpoint.
    _fsync_directory(directory.parent)
    _fsync_directory(directory.parent.parent)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so a crash leaves either the old file or the complete new one, never a partial one."""
    descriptor, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    if os.name != "posix":  # only POSIX can open a directory to fsync its entries
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _describe(checkpoint: Checkpoint) -> str:
    parent = (checkpoint.parent_sha256 or "-")[:_SHORT]
    scores = " ".join(f"{name}={score:.4g}" for name, score in sorted(checkpoint.eval_scores.items()))
    return (f"step {checkpoint.step:>11,}  iteration {checkpoint.iteration:>6}  "
            f"sha256 {checkpoint.checkpoint_sha256[:_SHORT]}  parent {parent:<{_SHORT}}  "
            f"weights {checkpoint.manifest['weights_bytes']:,} B  eval {scores or '-'}")
