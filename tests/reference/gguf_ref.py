"""Reference GGUF metadata reader and writer (docs/bpe.md §12): slow, obviously correct.

GGUF (llama.cpp's model file, little-endian): ``b"GGUF"``, ``u32`` version (2 or 3),
``u64`` tensor count, ``u64`` key/value count, then the key/value pairs: a string key, a ``u32``
value type and the value. Strings are a ``u64`` byte length and UTF-8 bytes; an array is a
``u32`` element type, a ``u64`` count and the elements. Tensor infos and data follow; neither
is read here (vocab-only files have no tensors).

:func:`read_metadata` returns ``{key: value}`` (arrays as lists); :func:`write` writes a
vocab-only file from such a dict, each value with its type (:class:`Typed`), so tests can cut
small GGUF files from real ones and mutate them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = (
    range(13)
)
_SCALAR = {
    UINT8: "B",
    INT8: "b",
    UINT16: "H",
    INT16: "h",
    UINT32: "I",
    INT32: "i",
    FLOAT32: "f",
    BOOL: "?",
    UINT64: "Q",
    INT64: "q",
    FLOAT64: "d",
}

#: llama.cpp's token types (``tokenizer.ggml.token_type``)
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


@dataclass
class Typed:
    """A value with its GGUF type; ``elem`` is the element type of an array."""

    type: int
    value: Any
    elem: int | None = None


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str) -> Any:
        (v,) = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return v

    def string(self) -> str:
        n = self.take("Q")
        raw = self.data[self.at : self.at + n]
        if len(raw) != n:
            raise ValueError("truncated string")
        self.at += n
        return raw.decode("utf-8")

    def value(self, t: int) -> Typed:
        if t in _SCALAR:
            return Typed(t, self.take(_SCALAR[t]))
        if t == STRING:
            return Typed(t, self.string())
        if t == ARRAY:
            elem, n = self.take("I"), self.take("Q")
            return Typed(t, [self.value(elem).value for _ in range(n)], elem)
        raise ValueError(f"unknown value type {t}")


def read_typed(data: bytes) -> dict[str, Typed]:
    """Every key/value pair of a GGUF file's metadata, with its type."""
    r = _Reader(data)
    if r.take("4s") != b"GGUF":
        raise ValueError("not a GGUF file")
    version = r.take("I")
    if version not in (2, 3):
        raise ValueError(f"GGUF version {version}")
    r.take("Q")  # tensors
    return {r.string(): r.value(r.take("I")) for _ in range(r.take("Q"))}


def read_metadata(data: bytes) -> dict[str, Any]:
    """Every key/value pair of a GGUF file's metadata; arrays as lists."""
    return {k: v.value for k, v in read_typed(data).items()}


def _put(t: int, v: Any, elem: int | None = None) -> bytes:
    if t in _SCALAR:
        return struct.pack("<" + _SCALAR[t], v)
    if t == STRING:
        b = v.encode("utf-8")
        return struct.pack("<Q", len(b)) + b
    if t == ARRAY:
        assert elem is not None
        return struct.pack("<IQ", elem, len(v)) + b"".join(_put(elem, x) for x in v)
    raise ValueError(f"unknown value type {t}")


def write(kv: dict[str, Typed], *, version: int = 3) -> bytes:
    """A vocab-only GGUF file (no tensors) holding ``kv``."""
    out = [b"GGUF", struct.pack("<IQQ", version, 0, len(kv))]
    for k, v in kv.items():
        out += [_put(STRING, k), struct.pack("<I", v.type), _put(v.type, v.value, v.elem)]
    return b"".join(out)
