"""The fields of a compiled model: what one example of its training data holds.

In:  an executable from `seqdsl.compile` (either backend), read through its generated module's
     `INPUTS` (name → (type text, dims, dtype, has a time axis, vocabulary size or None)) and
     `PREDICTED` (name → {"dist", "per_step", "dims", "classes", "previous", ...}).
Out: `spec_fields(exe)` → {name: Field}, the inputs first, then the predicted outputs (the observed
     values a training example gives for them), in the module's order. Never imports torch.

A field's `kind` says what a value of it is:

    tokens   a sequence of token ids           seq<int>, or categorical per step     (T,)
    label    one class id per example          categorical per sample               ()
    vectors  a sequence of numbers or vectors  seq[D], or normal per step           (T,) + dims
    vector   one vector per example            [D], or normal per sample with dims  dims
    value    one number per example            a per-sample normal without dims     ()

`role` is "input" or "observed" (a predicted output, whose true value comes with the data); an
observed output the model also reads at t-1 (`word[t-1]`) is one field, "observed", with
`previous=True`: its token sequences get the end token appended (the model must learn to stop).
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("tokens", "label", "vectors", "vector", "value")


@dataclass(frozen=True)
class Field:
    """One field of an example: its `name` (the spec's), `role` ("input" or "observed"), `kind` (KINDS),
    `seq` (has a time axis), `dims` (the shape of one step or of the value, () for ids), `classes`
    (the number of ids the model takes, for tokens and labels; else None) and `previous` (an observed
    output the model reads at t-1)."""

    name: str
    role: str
    kind: str
    seq: bool
    dims: tuple
    classes: int | None
    previous: bool = False

    @property
    def ids(self) -> bool:
        """Whether the values are ids (tokens or a label), not numbers."""
        return self.kind in ("tokens", "label")

    def describe(self) -> str:
        """How the spec types it, for messages: "seq<int>", "label (2 classes)", "seq[2]", "[128]"."""
        dims = "[" + ", ".join(str(d) for d in self.dims) + "]" if self.dims else ""
        if self.kind == "tokens":
            return "seq<int>"
        if self.kind == "label":
            return f"a label ({self.classes} classes)" if self.classes else "a label"
        if self.kind == "value":
            return "a number"
        return f"seq{dims or '<float>'}" if self.seq else dims


def _kind(is_int: bool, seq: bool, dims: tuple) -> str:
    if is_int:
        return "tokens" if seq else "label"
    if seq:
        return "vectors"
    return "vector" if dims else "value"


def spec_fields(exe) -> dict:
    """{name: Field} for the executable `exe` (a NumPy executable or a torch module from
    `seqdsl.compile`): its inputs, then its predicted outputs."""
    ns = exe._ns
    inputs, predicted = ns.get("INPUTS", {}), ns.get("PREDICTED", {})
    out = {}
    for name, (_text, dims, dtype, seq, vocab) in inputs.items():
        if name in predicted:
            continue
        is_int = dtype == "int"
        out[name] = Field(name, "input", _kind(is_int, bool(seq), tuple(dims)), bool(seq),
                          () if is_int else tuple(dims), vocab if is_int else None)
    for name, p in predicted.items():
        categorical = p["dist"] == "categorical"
        dims = () if categorical else tuple(p.get("dims") or ())
        out[name] = Field(name, "observed", _kind(categorical, bool(p["per_step"]), dims), bool(p["per_step"]),
                          dims, p.get("classes") if categorical else None, bool(p.get("previous")))
    return out
