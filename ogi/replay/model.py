"""Rebuilding a recording's exact MjModel from its MJCF: the XML, a patch of fields, per-simulation rows.

MJCF stores numbers as decimal text, so a model compiled from `spec.to_xml()` can differ from the
compiled spec in the last bits (inertias, positions, derived constants). The recorder stores the
fields that differ as a patch, and replay applies it, so that replay runs on the very same numbers.
"""

from __future__ import annotations

import hashlib

import mujoco
import numpy as np

from ogi.replay.format import RecordingError

# fields whose per-simulation values cover only their first rows: `mujoco.batch` keeps the bodies' bounding-volume
# hierarchies per simulation, which precede the meshes' (shared by all simulations)
PREFIX_FIELDS = frozenset({"bvh_aabb"})


def model_sha256(xml: str) -> str:
    return hashlib.sha256(xml.encode()).hexdigest()


def _array_fields(model: mujoco.MjModel) -> list[str]:
    names = []
    for name in dir(model):
        if name.startswith("_") or name in ("names",):
            continue
        try:
            value = getattr(model, name)
        except Exception:  # some attributes are methods or raise for absent objects
            continue
        if isinstance(value, np.ndarray) and value.dtype.kind in "fiub":
            names.append(name)
    for name in dir(model.opt):
        if not name.startswith("_") and isinstance(getattr(model.opt, name), (int, float, np.ndarray)):
            names.append(f"opt.{name}")
    return names


def _get(model: mujoco.MjModel, name: str) -> np.ndarray:
    if name.startswith("opt."):
        return np.asarray(getattr(model.opt, name[4:]))
    return getattr(model, name)


def _set(model: mujoco.MjModel, name: str, value: np.ndarray) -> None:
    if name.startswith("opt."):
        current = getattr(model.opt, name[4:])
        if isinstance(current, np.ndarray):
            current[...] = value
        else:
            setattr(model.opt, name[4:], type(current)(value.item()))
        return
    getattr(model, name)[...] = value


def compile_xml(xml: str) -> mujoco.MjModel:
    try:
        return mujoco.MjModel.from_xml_string(xml)
    except ValueError as err:
        raise RecordingError(f"the recorded model XML does not compile: {err}") from None


def model_patch(model: mujoco.MjModel, from_xml: mujoco.MjModel) -> dict[str, np.ndarray]:
    """Fields of `model` whose bits differ from the same model compiled from its XML."""
    if (model.nq, model.nv, model.nu, model.nbody, model.ngeom) != (
        from_xml.nq,
        from_xml.nv,
        from_xml.nu,
        from_xml.nbody,
        from_xml.ngeom,
    ):
        raise ValueError("the model compiled from its own XML has different sizes; it cannot be recorded")
    patch = {}
    for name in _array_fields(model):
        a, b = np.asarray(_get(model, name)), np.asarray(_get(from_xml, name))
        if a.shape != b.shape:
            raise ValueError(f"field {name} has shape {a.shape} but {b.shape} when compiled from XML")
        if a.tobytes() != b.tobytes():
            patch[name] = a.copy()
    return patch


def apply_fields(model: mujoco.MjModel, fields: dict[str, np.ndarray], row: int | None = None) -> None:
    """Write fields into `model`; with `row`, each array is (nsim, ...) and row `row` is written."""
    for name, values in fields.items():
        value = values if row is None else values[row]
        try:
            target = _get(model, name)
        except AttributeError:
            raise RecordingError(f"the recording sets model field '{name}', which this MuJoCo does not have") from None
        if name in PREFIX_FIELDS and _is_prefix(np.shape(value), np.shape(target)):
            target[: np.shape(value)[0]] = value
            continue
        if np.shape(target) != np.shape(value):
            raise RecordingError(f"model field '{name}' is {np.shape(target)} but the recording has {np.shape(value)}")
        _set(model, name, value)


def _is_prefix(part: tuple[int, ...], whole: tuple[int, ...]) -> bool:
    return len(part) == len(whole) and part[1:] == whole[1:] and part[0] <= whole[0]
