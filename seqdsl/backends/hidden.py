"""Hidden inputs of the variant modules (lengths, dropout), and zeroing outputs at padding.

In:  a generated module's namespace (`MASKS`, `DROPOUTS`, `UNZEROED`, `OUTPUT_AXES`), the checked
     inputs of a call, its lengths, and a mask drawer.
Out: `hidden_inputs(...)` → the masks a variant module takes besides the inputs;
     `clean_padding(...)` → the inputs zeroed past each sample's end; `unused_lengths(...)`
     refuses lengths that no mask uses;
     `zero_padding(...)` → outputs (or cotangents) zeroed past each sample's end;
     `numpy_keep(rng, dtype)` → a NumPy dropout-mask drawer.
"""

from __future__ import annotations

import numpy as np


def hidden_inputs(boundary, ns: dict, cast: dict, lengths, draw) -> dict:
    """The hidden inputs of a variant module: the length masks (`MASKS`, from `lengths`, already
    checked) and the dropout masks (`DROPOUTS`, each drawn by `draw(shape, p)` → 0 or 1/(1-p);
    a variational one once per sample, repeated along its axis)."""
    out = boundary.masks(ns["MASKS"], lengths or {}, cast)
    batch = int(next(iter(cast.values())).shape[0])
    for name, (p, variational, axis, dims) in ns["DROPOUTS"].items():
        steps = () if axis is None else (int(cast[axis].shape[1]),)
        shape = (batch,) + steps + tuple(dims)
        if not (steps and variational):
            out[name] = draw(shape, p)
            continue
        once = draw((batch, 1) + tuple(dims), p)  # one mask per sample, the same along the axis
        out[name] = once.expand(shape) if hasattr(once, "expand") else np.broadcast_to(once, shape)
    return out


def clean_padding(ns: dict, inputs: dict, where) -> dict:
    """Real-valued sequence inputs zeroed past each sample's end (`inputs` holds the step masks; a
    cell's per-step inputs all follow its one step mask): whatever a batch holds there (NaN, inf)
    is never computed with, so it cannot reach a gradient through a derivative that the mask
    multiplies by zero (0 * NaN is NaN)."""
    out = dict(inputs)
    masks = {key: inputs[n] for n, (kind, key) in ns["MASKS"].items() if kind == "steps"}
    steps = [k for k in ns["INPUTS"] if k not in ns["MEMORIES"]] if ns["KIND"] == "cell" else []
    follows = {k: (steps[0] if k in steps else k) for k in ns["INPUTS"]}
    # an observed output read as an input (teacher forcing, `y[t-1]`) follows its output's axis, and
    # an input a run reads at another's steps follows that one (unless it has steps of its own)
    follows.update({k: axes[0] for k, axes in ns["OUTPUT_AXES"].items() if axes and k in out})
    follows.update({k: lead for k, lead in ns.get("FOLLOWS", {}).items() if k not in masks})
    for name, key in follows.items():
        v, mask = out.get(name), masks.get(key)
        if v is not None and mask is not None and _real(v) and v.ndim >= 2:
            out[name] = _zeroed(where, mask, v)
    return out


def unused_lengths(name: str, ns: dict, lengths) -> None:
    """Lengths given for a sequence whose steps follow another's (a model's input read by a run
    together with another input, which sets the steps): an error unless they are those lengths."""
    lengths = lengths or {}
    for k, lead in ns.get("FOLLOWS", {}).items():
        if k in lengths and (lead not in lengths or not np.array_equal(lengths[k], lengths[lead])):
            from .validate import InputError

            raise InputError(f"{name}: lengths for '{k}' differ from those of '{lead}': a run reads '{k}' at the "
                             f"steps of '{lead}', so it follows its lengths; give the lengths of '{lead}' alone")
    used = {key for _, key in ns["MASKS"].values()}
    for k in lengths:
        if k not in used and not any(np.array_equal(lengths[k], lengths[u]) for u in used if u in lengths):
            from .validate import InputError

            raise InputError(f"{name}: lengths for '{k}' are not used: its steps are read together with another "
                             "sequence's, whose lengths they follow; give the lengths of that one")


def _real(v) -> bool:
    dtype = v.dtype  # a NumPy or a torch dtype
    return dtype.is_floating_point if hasattr(dtype, "is_floating_point") else dtype.kind == "f"


def zero_padding(ns: dict, values: dict, inputs: dict, where) -> dict:
    """A cell's per-step outputs its module leaves unzeroed (`UNZEROED`: past a sample's end they
    hold its last values) zeroed at padding with its step mask, one `where(mask, v, 0)` each;
    `values` are outputs, or their cotangents."""
    out = dict(values)
    for k in ns["UNZEROED"]:
        if k not in out:
            continue
        axis = ns["OUTPUT_AXES"][k][0]
        mask = next(inputs[n] for n, (kind, key) in ns["MASKS"].items() if kind == "steps" and key == axis)
        out[k] = _zeroed(where, mask, out[k])
    return out


def _zeroed(where, mask, v):
    """v, zero where the mask ((B, T), or a step's (B,)) is false: `where(mask, v, 0)` aligned to v."""
    return where(mask.reshape(tuple(mask.shape) + (1,) * (v.ndim - mask.ndim)), v, 0)


def numpy_keep(rng, dtype):
    """draw(shape, p) for `hidden_inputs`: NumPy dropout masks from a Generator."""
    return lambda shape, p: ((rng.random(shape) >= p) / (1.0 - p)).astype(dtype)
