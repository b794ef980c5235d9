"""The checkpoint format: safetensors tensors plus a JSON manifest of hashes that chains each checkpoint to its parent.

One checkpoint is the directory ``<run>/checkpoints/<step:09d>/`` holding

- ``weights.safetensors``: the policy tensors, all that export and deployment need;
- ``state.safetensors``: every other tensor a bit-identical resume needs (optimizer moments, normalizer statistics,
  the torch RNG state as uint8);
- ``manifest.json``, written last: sha256 and byte size of both files, the full config (a JSON object) and its
  hash, the reward weights, the non-tensor training state (curriculum, numpy RNG, optimizer structure; a JSON
  object) and its hash, the eval scores, the parent's ``checkpoint_sha256``, and ``checkpoint_sha256`` itself: the
  hash of this manifest without that field.

Hashes are sha256 hex digests; JSON values are hashed in canonical form (:func:`canonical_json`), always as stored.
Manifests of an older writer hold ``config`` and ``data_manifest`` as a string (JSON or a Python literal); they
still verify against the string they store, and load as the object the string spells.
Every load path reads only safetensors and JSON (and Python literals, never code), so loading a checkpoint can
never run pickled code.
"""

from __future__ import annotations

import ast
import datetime
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as _load_safetensors
from safetensors.torch import save as _save_safetensors

FORMAT_VERSION = 1
CHECKPOINTS_DIRNAME = "checkpoints"
WEIGHTS_FILENAME = "weights.safetensors"
STATE_FILENAME = "state.safetensors"
MANIFEST_FILENAME = "manifest.json"
# Left in a checkpoint directory whose files retention deleted: names the checkpoint by hash so lineage ends cleanly.
PRUNED_FILENAME = "pruned.json"
_TENSOR_FILES = {"weights": WEIGHTS_FILENAME, "state": STATE_FILENAME}
_SHORT = 12  # hex digits of a hash shown in messages: enough to tell two digests apart by eye
_HASH_CHUNK_BYTES = 1 << 20
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "format_version": int,
    "step": int,
    "iteration": int,
    "created_utc": str,
    "weights_sha256": str,
    "state_sha256": str,
    "weights_bytes": int,
    "state_bytes": int,
    "config": (dict, str),
    "config_sha256": str,
    "reward_weights": dict,
    "data_manifest": (dict, str),
    "data_sha256": str,
    "parent": (str, type(None)),
    "parent_path": (str, type(None)),
    "eval_scores": dict,
    "checkpoint_sha256": str,
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


class NoValidCheckpointError(CheckpointMissingError, FileNotFoundError):
    """A path that is neither a checkpoint directory nor a run directory holding a checkpoint that verifies."""


class CorruptCheckpointWarning(UserWarning):
    """A checkpoint skipped by ``latest_valid_checkpoint`` because it does not verify."""


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
        """The run's config as a JSON object (decoded from an older manifest's string)."""
        return _stored_object(self.manifest["config"])

    @property
    def reward_weights(self) -> Mapping[str, float]:
        return self.manifest["reward_weights"]

    @property
    def data_manifest(self) -> Mapping[str, Any]:
        """The non-tensor training state as a JSON object (decoded from an older manifest's string)."""
        return _stored_object(self.manifest["data_manifest"])

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
                f"not the {parent.checkpoint_sha256[:_SHORT]} of the Checkpoint passed as parent"
            )
    config_json = _as_json(config, "config")
    data_json = _as_json(data_manifest, "data_manifest")
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "step": step,
        "iteration": iteration,
        "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
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
        atomic_write(directory / _TENSOR_FILES[field], data)
        manifest[f"{field}_sha256"] = hashlib.sha256(data).hexdigest()
        manifest[f"{field}_bytes"] = len(data)
    manifest["checkpoint_sha256"] = json_sha256(manifest)
    if manifest_path.exists():
        raise CheckpointError(f"{manifest_path} appeared while saving: another writer saved this step")
    # a checkpoint pruned at this step before a resume went back past it: the new manifest replaces its record
    (directory / PRUNED_FILENAME).unlink(missing_ok=True)
    atomic_write(manifest_path, _manifest_bytes(manifest))
    return Checkpoint(path=directory, manifest=manifest)


def copy_checkpoint(source: Path, destination: Path, *, parent: Path | None = None) -> Checkpoint:
    """Copy a verified checkpoint to `destination` (a new directory), its lineage pointing at `parent`.

    For shipping a checkpoint beside a copy of its parent (a fine-tuned policy next to the one it started from):
    the recorded parent path is relative to the checkpoint, so it changes with the move. `parent` must hold the
    checkpoint this one records as its parent (the same checkpoint_sha256); without `parent` the copy keeps the
    old relative path, which fits only a copy of the whole tree. Tensors are copied byte for byte; the manifest's
    ``parent_path`` and its own hash are the only fields that change.
    """
    source, destination = Path(source), Path(destination)
    manifest = _read_manifest(source, check_hashes=True)
    if destination.exists():
        raise CheckpointError(f"{destination} exists: a copy goes to a new directory")
    if parent is not None:
        if manifest["parent"] is None:
            raise LineageError(f"{source} is the first checkpoint of its run: it has no parent to point at")
        found = _read_manifest(Path(parent), check_hashes=True)["checkpoint_sha256"]
        if found != manifest["parent"]:
            raise LineageError(
                f"{parent} is checkpoint {found[:_SHORT]}, not the parent {manifest['parent'][:_SHORT]} "
                f"that {source} records"
            )
        relative = os.path.relpath(Path(parent).resolve(), destination.resolve())
        manifest = {**manifest, "parent_path": relative}
    blobs = {}
    for field, filename in _TENSOR_FILES.items():
        data = (source / filename).read_bytes()
        _check_size(source / filename, len(data), manifest[f"{field}_bytes"])
        _check_digest(source / filename, hashlib.sha256(data).hexdigest(), manifest[f"{field}_sha256"])
        blobs[filename] = data
    manifest = {key: value for key, value in manifest.items() if key != "checkpoint_sha256"}
    manifest["checkpoint_sha256"] = json_sha256(manifest)
    _make_directory(destination)
    for filename, data in blobs.items():
        atomic_write(destination / filename, data)
    atomic_write(destination / MANIFEST_FILENAME, _manifest_bytes(manifest))
    return Checkpoint(path=destination, manifest=manifest)


def _manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """A manifest as written: sorted keys, ASCII, no NaN."""
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=True, allow_nan=False) + "\n").encode("ascii")


def load_checkpoint(path: Path, *, verify: bool = True) -> LoadedCheckpoint:
    """Read a checkpoint's tensors (CPU) and manifest; with ``verify`` every size and hash is checked first.

    The lineage is not walked here (see ``verify_checkpoint``). Each file is read once and its bytes are both
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
        checkpoint=Checkpoint(path=directory, manifest=manifest), weights=tensors["weights"], state=tensors["state"]
    )


def read_verified(directory: Path, *, verify_files: bool) -> Checkpoint:
    """One checkpoint with its manifest's hashes checked and, with ``verify_files``, its tensor files re-hashed."""
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
            f"{path} does not exist: the manifest is written last, so this save never completed"
        )
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
    for field in ("config", "data_manifest"):
        if isinstance(manifest[field], str):
            try:
                _stored_object(manifest[field])
            except ValueError as error:
                raise CheckpointManifestError(
                    f"{path}: {field} is a string that is not a JSON object: {error}"
                ) from None
    return manifest


def _check_fields(manifest: Any, path: Path) -> None:
    if not isinstance(manifest, dict):
        raise CheckpointManifestError(f"{path} holds a JSON {type(manifest).__name__}, not an object")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CheckpointManifestError(
            f"{path} has format_version {manifest.get('format_version')!r}; this code reads version {FORMAT_VERSION}"
        )
    missing = sorted(set(_FIELD_TYPES) - set(manifest))
    if missing:
        raise CheckpointManifestError(f"{path} lacks the fields {missing}")
    wrong = [
        f"{key} ({type(manifest[key]).__name__})"
        for key, kind in _FIELD_TYPES.items()
        if not isinstance(manifest[key], kind) or (kind is int and isinstance(manifest[key], bool))
    ]
    if wrong:
        raise CheckpointManifestError(f"{path} has fields of the wrong type: {', '.join(wrong)}")
    if (manifest["parent"] is None) != (manifest["parent_path"] is None):
        raise CheckpointManifestError(f"{path}: parent and parent_path must both be null or both be set")


def _check_json_hash(path: Path, field: str, actual: str, expected: str) -> None:
    if actual != expected:
        raise CheckpointHashMismatchError(
            f"{path}: content hashes to {actual[:_SHORT]} but {field} records {expected[:_SHORT]}: "
            "the manifest was edited or damaged"
        )


def _check_size(file: Path, actual: int, expected: int) -> None:
    if actual != expected:
        how = "truncated" if actual < expected else "longer than written"
        raise CheckpointTruncatedError(
            f"{file} is {actual} bytes but the manifest records {expected}: the file is {how}"
        )


def _check_digest(file: Path, actual: str, expected: str) -> None:
    if actual != expected:
        raise CheckpointHashMismatchError(
            f"{file} has sha256 {actual[:_SHORT]} but the manifest records {expected[:_SHORT]} "
            "(same size, so bytes were altered in place, e.g. a flipped bit)"
        )


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


def _stored_object(value: dict[str, Any] | str) -> dict[str, Any]:
    """A manifest's ``config`` or ``data_manifest`` as a JSON object; older writers stored it as a string.

    The string is JSON or a Python literal (a dict's repr); ``ast.literal_eval`` evaluates literals only, never code.
    """
    if not isinstance(value, str):
        return value
    try:
        decoded = json.loads(value, parse_constant=_reject_constant)
    except ValueError:
        try:
            decoded = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as error:
            raise ValueError(f"neither JSON nor a Python literal ({type(error).__name__})") from None
    if not isinstance(decoded, Mapping):
        raise ValueError(f"it spells a {type(decoded).__name__}, not an object")
    return _as_json(decoded, "stored value")


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


def atomic_write(path: Path, data: bytes) -> None:
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
