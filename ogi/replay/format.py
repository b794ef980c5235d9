"""The recording file format: MCAP topics, message encodings and the state-row layout.

A recording holds one batch of simulations. Binary messages carry raw little-endian arrays:

- `ogi.fixed`: the payload is the arrays of the channel's `layout` (JSON in the channel metadata,
  `[[name, dtype, shape], ...]`) back to back, each C-contiguous.
- `ogi.arrays`: a 4-byte little-endian header length, a JSON header `{"meta": {...}, "arrays":
  [[name, dtype, shape], ...]}`, then those arrays back to back.

`docs/recording.md` describes every topic.
"""

from __future__ import annotations

import json
import struct

import mujoco
import numpy as np

FORMAT = "ogi-recording"
FORMAT_VERSION = 1
PROFILE = "ogi"

TOPIC_RECORDING = "/ogi/recording"
TOPIC_MODEL_PATCH = "/ogi/model_patch"
TOPIC_INITIAL_STATE = "/ogi/initial_state"
TOPIC_SIM_MODEL = "/ogi/sim_model"
TOPIC_STATE_RESET = "/ogi/state_reset"
TOPIC_XFRC = "/ogi/xfrc_applied"
TOPIC_STEP = "/ogi/step"
TOPIC_EVENTS = "/ogi/events"
TOPIC_CAMERA = "/ogi/camera"  # images a layer saw (the planner's camera), one message per capture
MODEL_ATTACHMENT = "model.xml"

ENCODING_FIXED = "ogi.fixed"
ENCODING_ARRAYS = "ogi.arrays"
ENCODING_JSON = "json"

STATE_SIG = int(mujoco.mjtState.mjSTATE_INTEGRATION)

EVENT_SCHEMA = {
    "title": "ogi.Event",
    "type": "object",
    "properties": {
        "step": {"type": "integer", "description": "control step the event belongs to"},
        "time_s": {"type": "number", "description": "recording time, s (step * ctrl_dt_s)"},
        "sim": {"type": "integer", "description": "simulation index in the batch, -1 for all"},
        "kind": {"type": "string", "description": "reset, push, or a layer's own kind (safety, planner, ...)"},
        "cause": {"type": "string"},
        "data": {"type": "object"},
    },
    "required": ["step", "time_s", "sim", "kind", "cause", "data"],
}


class RecordingError(ValueError):
    """A recording cannot be read or replayed: corrupt, truncated, or not matching its model."""


def state_columns(model: mujoco.MjModel, component: mujoco.mjtState) -> slice:
    """Columns of one state component within an mjSTATE_INTEGRATION row of `model`."""
    offset = 0
    bit = 1
    while bit <= STATE_SIG:
        if bit & STATE_SIG:
            size = mujoco.mj_stateSize(model, bit)
            if bit == int(component):
                return slice(offset, offset + size)
            offset += size
        bit <<= 1
    raise ValueError(f"{component} is not part of the integration state")


def layout_of(arrays: dict[str, np.ndarray]) -> list[list]:
    """[[name, dtype, shape], ...] of arrays, in order; dtypes little-endian."""
    return [[name, np.dtype(a.dtype).newbyteorder("<").str, list(a.shape)] for name, a in arrays.items()]


def pack_fixed(arrays: dict[str, np.ndarray]) -> bytes:
    """Arrays back to back, little-endian and C-contiguous (their order is the channel layout's)."""
    return b"".join(
        np.ascontiguousarray(a, dtype=np.dtype(a.dtype).newbyteorder("<")).tobytes() for a in arrays.values()
    )


def unpack_fixed(layout: list[list], payload: bytes, what: str) -> dict[str, np.ndarray]:
    """Inverse of `pack_fixed`; a payload of the wrong size raises RecordingError naming `what`."""
    out, offset = {}, 0
    for name, dtype, shape in layout:
        dt = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64))
        size = count * dt.itemsize
        if offset + size > len(payload):
            raise RecordingError(f"{what}: message ends inside array '{name}' ({len(payload)} bytes)")
        out[name] = np.frombuffer(payload, dt, count, offset).reshape(shape)
        offset += size
    if offset != len(payload):
        raise RecordingError(f"{what}: message has {len(payload) - offset} bytes after its arrays")
    return out


def pack_arrays(meta: dict, arrays: dict[str, np.ndarray]) -> bytes:
    """`ogi.arrays` payload: header length, JSON header, raw arrays."""
    header = json.dumps({"meta": meta, "arrays": layout_of(arrays)}, separators=(",", ":")).encode()
    return struct.pack("<I", len(header)) + header + pack_fixed(arrays)


def unpack_arrays(payload: bytes, what: str) -> tuple[dict, dict[str, np.ndarray]]:
    """Inverse of `pack_arrays`: (meta, arrays); anything malformed raises RecordingError naming `what`."""
    if len(payload) < 4:
        raise RecordingError(f"{what}: message too short for its header ({len(payload)} bytes)")
    (length,) = struct.unpack_from("<I", payload)
    if 4 + length > len(payload):
        raise RecordingError(f"{what}: header length {length} exceeds the message ({len(payload)} bytes)")
    try:
        header = json.loads(payload[4 : 4 + length])
        meta, layout = header["meta"], header["arrays"]
        for name, dtype, shape in layout:
            if np.dtype(dtype).hasobject or not all(isinstance(d, int) and d >= 0 for d in shape):
                raise ValueError(f"array '{name}' has dtype {dtype} shape {shape}")
    except (ValueError, KeyError, TypeError) as err:
        raise RecordingError(f"{what}: malformed header ({err})") from None
    return meta, unpack_fixed(layout, payload[4 + length :], what)
