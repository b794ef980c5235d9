"""Byte layouts of a final IDL struct, derived from its type: the C struct (for the CRC) and XCDR1 (the wire).

cyclonedds' pure-Python codec spends about a millisecond per `LowState_`, too slow for a 1 kHz loop. A
`Layout` walks the struct's fields once and records, for every primitive leaf, its byte offsets in both
layouts; encoding, decoding and CDR -> C conversion are then a few numpy index operations. Tests check that
its bytes equal cyclonedds' own codec.

C layout: natural alignment, a struct aligned to its largest member and padded to a multiple of it.
XCDR1 (plain CDR, little endian, 4-byte encapsulation header): each primitive aligned to its own size
relative to the start of the data; structs add no alignment of their own.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

import numpy as np

_PRIMITIVES = {
    "uint8": "u1",
    "int8": "i1",
    "uint16": "<u2",
    "int16": "<i2",
    "uint32": "<u4",
    "int32": "<i4",
    "float32": "<f4",
    "uint64": "<u8",
    "int64": "<i8",
    "float64": "<f8",
}
CDR_LE_HEADER = b"\x00\x01\x00\x00"


class WireError(ValueError):
    """Bytes that are not a well-formed message of the expected type."""


@dataclass(frozen=True)
class Leaf:
    """One primitive field, possibly repeated (array, or array of structs): k elements."""

    dtype: np.dtype
    c_offsets: np.ndarray  # (k,) byte offsets in the C struct
    cdr_offsets: np.ndarray  # (k,) byte offsets in the CDR data (after the header)
    wire_index: np.ndarray  # (k, itemsize) byte positions in the wire buffer (header included)
    words: np.ndarray | None  # (k,) indices into the wire buffer viewed as `dtype`, when all are aligned for it


def _leaf(dtype: np.dtype, c_offsets: np.ndarray, cdr_offsets: np.ndarray) -> Leaf:
    start = cdr_offsets + len(CDR_LE_HEADER)
    size = dtype.itemsize
    words = start // size if np.all(start % size == 0) else None
    return Leaf(dtype, c_offsets, cdr_offsets, start[:, None] + np.arange(size), words)


def _field_types(cls: type) -> dict[str, typing.Any]:
    return typing.get_type_hints(cls, include_extras=True)


def _describe(hint: typing.Any) -> tuple[str, typing.Any, int]:
    """('prim', numpy code, n) or ('struct', class, n) for a field type; n = array length (1 for scalars)."""
    if typing.get_origin(hint) is typing.Annotated:
        base, *extras = typing.get_args(hint)
        for extra in extras:
            if isinstance(extra, str) and extra in _PRIMITIVES:
                return "prim", _PRIMITIVES[extra], 1
            if hasattr(extra, "subtype") and hasattr(extra, "length"):
                kind, inner, n = _describe(extra.subtype)
                return kind, inner, n * extra.length
        raise TypeError(f"unsupported IDL field type {hint!r}")
    if isinstance(hint, type) and hasattr(hint, "__idl__"):
        return "struct", hint, 1
    raise TypeError(f"unsupported IDL field type {hint!r} (only primitives, arrays and final structs)")


def _c_align(cls: type) -> int:
    align = 1
    for hint in _field_types(cls).values():
        kind, inner, _ = _describe(hint)
        align = max(align, np.dtype(inner).itemsize if kind == "prim" else _c_align(inner))
    return align


class Layout:
    """Leaves, C size and CDR size of one final IDL struct type."""

    def __init__(self, cls: type):
        self.cls = cls
        leaves: dict[str, list] = {}
        self.c_size = self._walk_c(cls, 0, "", leaves)
        cdr_end = self._walk_cdr(cls, 0, "", leaves)
        self.cdr_size = cdr_end
        self.leaves = {
            path: _leaf(np.dtype(code), np.array(c, dtype=np.int64), np.array(cdr, dtype=np.int64))
            for path, (code, c, cdr) in leaves.items()
        }
        # c_bytes = padded_cdr[gather]; padding bytes of the C struct read the zero byte past the CDR data
        gather = np.full(self.c_size, self.cdr_size, dtype=np.int64)
        for leaf in self.leaves.values():
            size = leaf.dtype.itemsize
            for c_off, cdr_off in zip(leaf.c_offsets, leaf.cdr_offsets):
                gather[c_off : c_off + size] = np.arange(cdr_off, cdr_off + size)
        self._gather = gather
        self.wire_size = (len(CDR_LE_HEADER) + self.cdr_size + 3) & ~3

    def _walk_c(self, cls: type, offset: int, prefix: str, leaves: dict) -> int:
        """Record C offsets of `cls`'s leaves starting at `offset`; returns the end of the (padded) struct."""
        start = offset
        for name, hint in _field_types(cls).items():
            kind, inner, n = _describe(hint)
            if kind == "prim":
                size = np.dtype(inner).itemsize
                offset = (offset + size - 1) // size * size
                entry = leaves.setdefault(prefix + name, [inner, [], []])
                entry[1].extend(range(offset, offset + n * size, size))
                offset += n * size
            else:
                align = _c_align(inner)
                for _ in range(n):
                    offset = (offset + align - 1) // align * align
                    offset = self._walk_c(inner, offset, f"{prefix}{name}.", leaves)
        align = _c_align(cls)
        return start + ((offset - start) + align - 1) // align * align

    def _walk_cdr(self, cls: type, offset: int, prefix: str, leaves: dict) -> int:
        for name, hint in _field_types(cls).items():
            kind, inner, n = _describe(hint)
            if kind == "prim":
                size = np.dtype(inner).itemsize
                offset = (offset + size - 1) // size * size
                leaves[prefix + name][2].extend(range(offset, offset + n * size, size))
                offset += n * size
            else:
                for _ in range(n):
                    offset = self._walk_cdr(inner, offset, f"{prefix}{name}.", leaves)
        return offset

    # ---- encode / decode ---------------------------------------------------------------------------------
    def new_buffer(self) -> np.ndarray:
        """A zeroed wire buffer (header included, padded to 4 bytes) to fill with `put` and send with `tobytes`."""
        buffer = np.zeros(self.wire_size, dtype=np.uint8)
        buffer[: len(CDR_LE_HEADER)] = np.frombuffer(CDR_LE_HEADER, dtype=np.uint8)
        return buffer

    def put(self, buffer: np.ndarray, path: str, values: typing.Any) -> None:
        """Write a leaf's k values (broadcast) into a wire buffer."""
        leaf = self.leaves[path]
        words = self._words(leaf, buffer)
        if words is not None:
            buffer.view(leaf.dtype)[words] = values
            return
        data = np.ascontiguousarray(np.broadcast_to(np.asarray(values, dtype=leaf.dtype), leaf.cdr_offsets.shape))
        buffer[leaf.wire_index] = data.view(np.uint8).reshape(leaf.wire_index.shape)

    @staticmethod
    def _words(leaf: Leaf, buffer: np.ndarray) -> np.ndarray | None:
        return None if leaf.words is None or len(buffer) % leaf.dtype.itemsize else leaf.words

    def get(self, data: np.ndarray, path: str) -> np.ndarray:
        """A leaf's (k,) values from wire bytes (as a uint8 array)."""
        leaf = self.leaves[path]
        words = self._words(leaf, data)
        if words is not None:
            return data.view(leaf.dtype)[words]
        return np.ascontiguousarray(data[leaf.wire_index]).view(leaf.dtype).reshape(-1)

    def check_wire(self, payload: bytes) -> np.ndarray:
        """The payload as a uint8 array, after checking its header and length; raises WireError."""
        if len(payload) < len(CDR_LE_HEADER) + self.cdr_size:
            raise WireError(f"{self.cls.__name__}: {len(payload)} bytes, expected {len(CDR_LE_HEADER) + self.cdr_size}")
        if payload[:2] != CDR_LE_HEADER[:2]:
            raise WireError(f"{self.cls.__name__}: encapsulation {payload[:2].hex()} is not little-endian plain CDR")
        return np.frombuffer(payload, dtype=np.uint8)

    def c_bytes(self, data: np.ndarray) -> bytes:
        """The C struct's bytes (padding zero) from wire bytes."""
        body = np.append(data[len(CDR_LE_HEADER) : len(CDR_LE_HEADER) + self.cdr_size], np.uint8(0))
        return body[self._gather].tobytes()
