"""A GGUF file's metadata and tensor table, read in one pass over a memory map.

gguf-py's ``GGUFReader`` builds a NumPy view for every element of every metadata array: about
5 s for SmolLM2's 49,152-token vocabulary and 48,900 merges on a 2-core CPU, before transformers
parses each of those views again. Here string arrays are decoded straight from the bytes and
number arrays are one ``frombuffer`` each; the tensors are left in the map until asked for.

Only little-endian GGUF v2 and v3 files are read (what llama.cpp writes); anything else raises
:class:`UnsupportedGGUF` so that a caller can fall back to a general reader.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class UnsupportedGGUF(ValueError):
    """The file is not one this reader handles (it may still be a valid GGUF file)."""


# GGUF's metadata value types: (struct format, NumPy dtype) of the fixed-size ones
_SCALARS = {
    0: ("<B", np.uint8),
    1: ("<b", np.int8),
    2: ("<H", np.uint16),
    3: ("<h", np.int16),
    4: ("<I", np.uint32),
    5: ("<i", np.int32),
    6: ("<f", np.float32),
    7: ("<?", np.bool_),
    10: ("<Q", np.uint64),
    11: ("<q", np.int64),
    12: ("<d", np.float64),
}
_STRING, _ARRAY = 8, 9
_DEFAULT_ALIGNMENT = 32


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of the file: its name, ggml shape (fastest-varying dimension first), ggml
    type and where its bytes are."""

    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int
    nbytes: int

    @property
    def rows_shape(self) -> tuple[int, ...]:
        """The shape in row-major (NumPy, PyTorch) order."""
        return tuple(reversed(self.shape))


class GGUFFile:
    """An open GGUF file: ``metadata`` (key -> value: str, int, float, bool or a list; number
    arrays as NumPy arrays), ``tensors`` in file order, ``raw(tensor)`` a tensor's bytes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        with open(self.path, "rb") as handle:
            self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        self._view = memoryview(self._map)
        try:
            self._parse()
        except (struct.error, UnicodeDecodeError, IndexError) as err:
            self.close()
            raise UnsupportedGGUF(f"{self.path}: not a readable GGUF file ({err})") from None
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._view.release()
        self._map.close()

    def __enter__(self) -> GGUFFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def raw(self, tensor: TensorInfo) -> np.ndarray:
        """The tensor's bytes as a uint8 array shaped (rows..., bytes per row); a view of the
        map, valid while the file is open."""
        begin = self._data_start + tensor.offset
        flat = np.frombuffer(self._view, dtype=np.uint8, count=tensor.nbytes, offset=begin)
        return flat.reshape(*tensor.rows_shape[:-1], -1)

    def get(self, key: str, default=None):
        return self.metadata.get(key, default)

    # --- parsing -------------------------------------------------------------------------

    def _parse(self) -> None:
        view = self._view
        if bytes(view[:4]) != b"GGUF":
            raise UnsupportedGGUF(f"{self.path}: not a GGUF file (no GGUF magic)")
        version, tensor_count, kv_count = struct.unpack_from("<IQQ", view, 4)
        if version not in (2, 3):
            # a big-endian file reads its version byte-swapped
            raise UnsupportedGGUF(f"{self.path}: GGUF version {version} is not read here")
        self._pos = 24
        self.metadata: dict[str, object] = {}
        for _ in range(kv_count):
            key = self._string()
            (kind,) = self._unpack("<I")
            self.metadata[key] = self._value(kind)
        infos = []
        for _ in range(tensor_count):
            name = self._string()
            (dims,) = self._unpack("<I")
            shape = self._unpack(f"<{dims}Q")
            kind, offset = self._unpack("<IQ")
            infos.append((name, tuple(int(d) for d in shape), kind, offset))
        alignment = int(self.metadata.get("general.alignment", _DEFAULT_ALIGNMENT))
        self._data_start = -(-self._pos // alignment) * alignment
        self.tensors = [
            TensorInfo(name, shape, kind, offset, _nbytes(name, shape, kind))
            for name, shape, kind, offset in infos
        ]
        end = max((t.offset + t.nbytes for t in self.tensors), default=0) + self._data_start
        if end > len(view):
            raise UnsupportedGGUF(f"{self.path}: truncated ({len(view)} bytes, {end} needed)")

    def _unpack(self, fmt: str) -> tuple:
        values = struct.unpack_from(fmt, self._view, self._pos)
        self._pos += struct.calcsize(fmt)
        return values

    def _string(self) -> str:
        (length,) = struct.unpack_from("<Q", self._view, self._pos)
        begin = self._pos + 8
        self._pos = begin + length
        return str(self._view[begin : self._pos], "utf-8")

    def _value(self, kind: int):
        if kind == _STRING:
            return self._string()
        if kind == _ARRAY:
            element, count = self._unpack("<IQ")
            if element == _STRING:
                return [self._string() for _ in range(count)]
            if element == _ARRAY:
                return [self._value(_ARRAY) for _ in range(count)]
            if element not in _SCALARS:
                raise UnsupportedGGUF(f"{self.path}: unknown metadata type {element}")
            dtype = np.dtype(_SCALARS[element][1]).newbyteorder("<")
            values = np.frombuffer(self._view, dtype=dtype, count=count, offset=self._pos)
            self._pos += values.nbytes
            return values.copy()
        if kind not in _SCALARS:
            raise UnsupportedGGUF(f"{self.path}: unknown metadata type {kind}")
        (value,) = self._unpack(_SCALARS[kind][0])
        return value


def _nbytes(name: str, shape: tuple[int, ...], kind: int) -> int:
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    try:
        block, size = GGML_QUANT_SIZES[GGMLQuantizationType(kind)]
    except (ValueError, KeyError):
        raise UnsupportedGGUF(f"tensor {name}: ggml type {kind} is not known to gguf") from None
    elements = int(np.prod(shape, dtype=np.int64))
    if shape and shape[0] % block:
        raise UnsupportedGGUF(f"tensor {name}: rows of {shape[0]} are not whole {block}-blocks")
    return elements // block * size
