"""Resume state that is not a plain tensor: an optimizer's nested state_dict and a numpy RNG, as tensors + JSON.

An optimizer's state_dict mixes tensors, ints, floats (inf included), tuples and int-keyed dicts; it is split
into tensors for a safetensors file and a JSON structure that names each tensor, and rebuilt exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch


class ResumeStateError(ValueError):
    """Stored resume state does not match what it claims to hold."""


# Markers that let the optimizer's state_dict (tuples, int keys, tensors, inf) survive a trip through JSON.
_TENSOR, _TUPLE, _FLOAT, _INT_KEYS = "__tensor__", "__tuple__", "__float__", "__int_keys__"
_MARKERS = frozenset({_TENSOR, _TUPLE, _FLOAT, _INT_KEYS})
# Only bit generators whose state is plain ints, so the state is JSON as-is.
_BIT_GENERATORS = {"PCG64": np.random.PCG64, "PCG64DXSM": np.random.PCG64DXSM}


def optimizer_state_to_tensors(
    optimizer: torch.optim.Optimizer | Mapping[str, Any],
    *,
    prefix: str = "optim",
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer's ``state_dict()`` into tensors for ``state.safetensors`` and a JSON structure.

    Tensors are keyed by their path, e.g. ``optim/state/0/exp_avg``; the structure (for the data manifest) holds
    every plain value and names each tensor by that key. Also accepts a state_dict (e.g. an LR scheduler's).
    """
    state_dict = optimizer if isinstance(optimizer, Mapping) else optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    structure = _encode(state_dict, prefix, tensors)
    return tensors, structure


def optimizer_state_from_tensors(tensors: Mapping[str, torch.Tensor], structure: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`optimizer_state_to_tensors`: a state_dict ready for ``optimizer.load_state_dict``."""
    return _decode(structure, tensors)


def numpy_rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """The JSON-able state of a numpy Generator (PCG64 or PCG64DXSM: plain ints)."""
    state = rng.bit_generator.state
    if state["bit_generator"] not in _BIT_GENERATORS:
        raise ValueError(
            f"numpy bit generator {state['bit_generator']} is not storable; use one of {sorted(_BIT_GENERATORS)}"
        )
    return state


def numpy_rng_from_state(state: Mapping[str, Any]) -> np.random.Generator:
    """A numpy Generator continuing exactly where the one that produced ``state`` stopped."""
    name = state.get("bit_generator")
    if name not in _BIT_GENERATORS:
        raise ResumeStateError(
            f"numpy RNG state names bit generator {name!r}; expected one of {sorted(_BIT_GENERATORS)}"
        )
    bit_generator = _BIT_GENERATORS[name]()
    bit_generator.state = dict(state)
    return np.random.Generator(bit_generator)


def _encode(value: Any, key: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        if key in tensors:
            raise ValueError(f"two optimizer state entries map to the tensor key {key!r}")
        tensors[key] = value.detach().to("cpu", copy=True).contiguous()
        return {_TENSOR: key}
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {_FLOAT: repr(value)}
    if isinstance(value, tuple | list):
        items = [_encode(item, f"{key}/{index}", tensors) for index, item in enumerate(value)]
        return {_TUPLE: items} if isinstance(value, tuple) else items
    if isinstance(value, Mapping):
        encoded = {str(name): _encode(item, f"{key}/{name}", tensors) for name, item in value.items()}
        if all(isinstance(name, str) for name in value) and not (len(value) == 1 and set(value) <= _MARKERS):
            return encoded
        if all(isinstance(name, int) and not isinstance(name, bool) for name in value):
            return {_INT_KEYS: encoded}
    raise TypeError(f"{key}: cannot store {type(value).__name__} {value!r:.80} in a checkpoint")


def _decode(value: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [_decode(item, tensors) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and set(value) <= _MARKERS:
        ((marker, payload),) = value.items()
        if marker == _TENSOR:
            if payload not in tensors:
                raise ResumeStateError(f"state tensor {payload!r} named in the optimizer structure is not in the state")
            return tensors[payload]
        if marker == _TUPLE:
            return tuple(_decode(item, tensors) for item in payload)
        if marker == _FLOAT:
            return float(payload)
        return {int(name): _decode(item, tensors) for name, item in sorted(payload.items(), key=lambda kv: int(kv[0]))}
    return {name: _decode(item, tensors) for name, item in value.items()}
