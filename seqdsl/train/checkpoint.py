"""The training checkpoint: one safetensors file, written whole or not at all, read without pickle.

In:  `tensors` (name → NumPy array: weights, optimizer moments, RNG states, the loss history) and
     `state` (a JSON-able dict: step, data position, schedule, optimizer scalars, metric history,
     best so far, the run's options).
Out: `write(path, tensors, state)` (a temporary file beside `path`, fsynced, renamed over it:
     `files.write_file`), `read(path)` → (tensors, state); `encode`/`decode` the bytes.
     Every problem with the file is a `SpecError` naming it.

The format is safetensors (https://github.com/huggingface/safetensors): 8 bytes little-endian
header length, a JSON header {tensor: {"dtype", "shape", "data_offsets"}, "__metadata__": {str:
str}}, then the raw little-endian bytes of each tensor. It is written and read here with NumPy
alone (no torch, no safetensors package needed, no pickle ever), and the `safetensors` library
reads it too. The JSON state is the metadata entry "seqdsl" (the format name is "format").
"""

from __future__ import annotations

import json
import math
import os
import stat
import struct

import numpy as np

from ..errors import SpecError
from ..files import write_file

FORMAT = "seqdsl-checkpoint/1"
MAX_HEADER = 100 << 20
DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
          "I16": np.int16, "I8": np.int8, "U8": np.uint8, "U16": np.uint16, "U32": np.uint32, "U64": np.uint64,
          "BOOL": np.bool_}
CODES = {np.dtype(v): k for k, v in DTYPES.items()}


def _finite_json(obj):
    """JSON cannot hold inf or nan: they are written as {"float": "inf"} and read back."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"float": repr(obj)}
    if isinstance(obj, dict):
        return {k: _finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_json(v) for v in obj]
    return obj


def _restore_floats(obj):
    if isinstance(obj, dict):
        if set(obj) == {"float"} and obj["float"] in ("inf", "-inf", "nan"):
            return float(obj["float"])
        return {k: _restore_floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_restore_floats(v) for v in obj]
    return obj


def encode(tensors: dict, state: dict) -> bytes:
    """The bytes of a checkpoint holding `tensors` and `state`."""
    header: dict = {"__metadata__": {"format": FORMAT,
                                     "seqdsl": json.dumps(_finite_json(state), allow_nan=False)}}
    blobs, offset = [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        if a.dtype not in CODES:
            raise SpecError(f"cannot write the checkpoint: tensor {name!r} has dtype {a.dtype}")
        data = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": CODES[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the tensors start 8-byte aligned
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def decode(data: bytes, path) -> tuple:
    """(tensors, state) from the bytes of a checkpoint; a `SpecError` naming `path` if they are not one."""
    what = f"cannot read the checkpoint {path}"
    if len(data) < 8:
        raise SpecError(f"{what}: the file is truncated or empty ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > min(MAX_HEADER, len(data) - 8):
        raise SpecError(f"{what}: not a seqdsl checkpoint (a damaged or foreign file)")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
        meta = header.pop("__metadata__")
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}")
        state = _restore_floats(json.loads(meta["seqdsl"]))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise SpecError(f"{what}: not a seqdsl checkpoint ({e})") from None
    body, tensors = memoryview(data)[8 + n:], {}
    for name, info in header.items():
        try:
            dtype = np.dtype(DTYPES[info["dtype"]]).newbyteorder("<")
            start, end = (int(x) for x in info["data_offsets"])
            shape = tuple(int(s) for s in info["shape"])
            if not (0 <= start <= end <= len(body)) or (end - start) != dtype.itemsize * math.prod(shape):
                raise ValueError("its data lies outside the file")
            a = np.frombuffer(body[start:end], dtype=dtype).reshape(shape)
        except (KeyError, TypeError, ValueError) as e:
            raise SpecError(f"{what}: tensor {name!r} is damaged ({e})") from None
        tensors[name] = a.astype(a.dtype.newbyteorder("="))
    return tensors, state


def write(path, tensors: dict, state: dict, fault=None) -> None:
    """Write the checkpoint atomically (temporary file, fsync, rename); `fault(f, data)`, if given,
    writes instead (the tests' way of dying half-way through)."""
    data = encode(tensors, state)
    write_file(path, (lambda f: fault(f, data)) if fault else (lambda f: f.write(data)), "the checkpoint")


def read(path) -> tuple:
    """(tensors, state) of the checkpoint file `path`."""
    what = f"cannot read the checkpoint {path}"
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise SpecError(f"{what}: it is not a regular file")
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise SpecError(f"{what}: no such file") from None
    except OSError as e:
        raise SpecError(f"{what}: {e.strerror or e}") from None
    return decode(data, path)
