"""Value types: what a value in a cell, block or model is, per sample.

In:  dims (`Size`s), a sequence flag, a dtype, a batched flag.
Out: `VType`. Text forms: `[H]` a vector per sample, `seq[H]` a sequence of vectors
     (the time axis in blocks and models; the attended memory's axis in cells),
     `seq<int>` token ids, and `shared[H, I]` for values with no batch axis (parameters
     and constants). Arrays are laid out (B, [S|T,] *dims) when batched, dims otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from .sizes import Size, dims_str


@dataclass(frozen=True)
class VType:
    dims: tuple = ()
    seq: bool = False
    dtype: str = "float"  # "float" | "int"
    batched: bool = True

    def __str__(self) -> str:
        if self.dtype == "int":
            return "seq<int>" if self.seq else "<int>"
        body = dims_str(self.dims)
        if not self.batched:
            return ("shared seq" if self.seq else "shared") + body
        return ("seq" + body) if self.seq else body

    def subs(self, env: dict) -> "VType":
        return VType(tuple(d.subs(env) for d in self.dims), self.seq, self.dtype, self.batched)

    @property
    def rank(self) -> int:
        return len(self.dims)

    def concrete_dims(self) -> tuple | None:
        vals = tuple(d.value for d in self.dims)
        return None if any(v is None for v in vals) else vals

    def with_(self, **kw) -> "VType":
        d = dict(dims=self.dims, seq=self.seq, dtype=self.dtype, batched=self.batched)
        d.update(kw)
        return VType(**d)


def vec(*dims: Size, seq: bool = False, batched: bool = True) -> VType:
    return VType(tuple(dims), seq, "float", batched)
