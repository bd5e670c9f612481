"""What every backend shares below code generation: its explicit error, and batched layouts.

In:  value expressions (text) and their `VType`s.
Out: `Unsupported`, the error for an op or construct a backend cannot compile (never an
     approximation); `align(v, t, out)`, `v` indexed so that it broadcasts against a value of
     type `out` in the batch-first / time-major layouts of generated code.
"""

from __future__ import annotations

from ..errors import SpecError
from ..types import VType


class Unsupported(SpecError):
    """The backend has no emitter for an op (an explicit error, never an approximation)."""


def align(v: str, t: VType, out: VType) -> str:
    """Index `v` so that it broadcasts against a value of type `out` (batched layouts)."""
    if t.batched and not t.seq and out.seq:
        v = f"{v}[:, None]"
    if t.batched and len(t.dims) < len(out.dims):
        v = f"{v}{'[..., None]' * (len(out.dims) - len(t.dims))}"
    return v
