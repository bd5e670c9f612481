"""The lengths property, for any definition: a padded batch with `lengths=` gives, at every real
position, what each sample gives alone; padded positions are zero with zero gradient.

`check_lengths(source, name, ...)` compiles the definition (float64) on NumPy and torch (fused and
not), pads a batch of B samples to T steps, draws lengths for every sequence input and memory
(the first sample full, the last of length 1), fills the padding with NaN and inf, and checks
against each sample run alone on its real positions: outputs, final states, NumPy gradients of
parameters, inputs and initial states (BPTT through the masked module), and torch's autograd
gradients of the padded batch against NumPy's (1e-10).
"""

from __future__ import annotations

import numpy as np

import seqdsl
from seqdsl.program import Program

TOL = (1e-10, 1e-12)  # float64: absolute, and relative for large values (as tests/differential.py)


def jitter(exe, rng) -> None:
    """A little noise on every parameter (as tests/differential.py): a constant initialiser
    (`W = 0.1`) times a layernorm of two features (always ±1) puts relu, min or max exactly on
    its kink, where two correct implementations may round to different sides."""
    exe.params = {k: v + 0.01 * rng.standard_normal(v.shape) for k, v in exe.params.items()}


def draw_lengths(exe, rng, batch: int, steps: int) -> dict:
    """Lengths for every sequence input and memory (a cell's inputs share one)."""
    out = {}
    step_done = False
    for p in exe.boundary.inputs:
        if not p.seq or (exe.kind == "cell" and p.role == "input" and step_done):
            continue
        step_done |= p.role == "input"
        lens = rng.integers(1, steps + 1, size=batch)
        lens[0], lens[-1] = steps, 1
        out[p.name] = lens
    return out


def poison_padding(exe, inputs: dict, lengths: dict) -> None:
    """NaN past each sample's end in every real-valued sequence (inf in every other sample): what
    the padding holds must reach no value and no gradient (0 * NaN in a derivative is NaN)."""
    step_inputs = [p.name for p in exe.boundary.inputs if p.role == "input"]
    for p in exe.boundary.inputs:
        key = step_inputs[0] if exe.kind == "cell" and p.role == "input" else p.name
        a = inputs[p.name]
        if not p.seq or key not in lengths or np.asarray(a).dtype.kind != "f":
            continue
        for b, n in enumerate(lengths[key]):
            a[b, n:] = np.inf if b % 2 else np.nan


def alone(exe, inputs: dict, lengths: dict, b: int) -> dict:
    """Sample b of the batch, cut to its own lengths."""
    step_inputs = [p.name for p in exe.boundary.inputs if p.role == "input"]
    out = {}
    for p in exe.boundary.inputs:
        a = inputs[p.name][b:b + 1]
        key = step_inputs[0] if exe.kind == "cell" and p.role == "input" else p.name
        if p.seq and key in lengths:
            a = a[:, :lengths[key][b]]
        out[p.name] = a
    return out


def axis_lengths(exe, lengths: dict) -> dict:
    """output name → the lengths of each of its axes after the batch (None: that axis not padded)."""
    ns = exe.variants.namespace(True, False)
    return {name: tuple(lengths.get(a) for a in axes) for name, axes in ns["OUTPUT_AXES"].items()}


def real(a, lens: tuple, b: int):
    """Sample b's real positions of an output (batch axis kept), and whether the rest is zero."""
    a = np.asarray(a)[b:b + 1]
    rest_zero = True
    for i, n in enumerate(lens):
        if n is None:
            continue
        cut = [slice(None)] * a.ndim
        cut[i + 1] = slice(n[b], None)
        rest_zero &= not np.any(a[tuple(cut)])
        cut[i + 1] = slice(0, n[b])
        a = a[tuple(cut)]
    return a, rest_zero


def close(what, got, want, tol=TOL):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    assert not np.isnan(got).any() and not np.isnan(want).any(), f"{what}: NaN"
    bad = np.abs(got - want) > tol[0] + tol[1] * np.abs(want)
    assert not bad.any(), f"{what}: max error {np.max(np.abs(got - want)):.3g}"


def check_forward(exe, inputs, lengths, run, batch: int, label: str = "") -> None:
    outs, final = run(inputs, lengths)
    axes = axis_lengths(exe, lengths)
    for b in range(batch):
        outs_b, final_b = run(alone(exe, inputs, lengths, b), None)
        for k, v in outs_b.items():
            got, rest_zero = real(outs[k], axes[k], b)
            close(f"{label}output {k}[{b}]", got, v)
            assert rest_zero, f"{label}output {k}[{b}] is not zero at padding"
        for k, v in final_b.items():
            close(f"{label}final {k}[{b}]", final[k][b:b + 1], v)


def check_numpy_grads(exe, inputs, lengths, rng, batch: int):
    """NumPy BPTT of the padded batch against the sum of each sample's; returns the cotangents
    and gradients for the torch comparison."""
    outs, final, _ = exe.value_and_grad(inputs, {}, lengths=lengths)
    d_outs = {k: rng.normal(size=np.shape(v)) for k, v in outs.items()}
    d_final = {k: rng.normal(size=np.shape(v)) for k, v in final.items()}
    _, _, grads = exe.value_and_grad(inputs, d_outs, d_final, lengths=lengths)
    axes = axis_lengths(exe, lengths)
    total = {k: np.zeros_like(v) for k, v in exe.params.items()}
    for b in range(batch):
        one = alone(exe, inputs, lengths, b)
        ob, fb, _ = exe.value_and_grad(one, {})
        d_ob = {k: real(d_outs[k], axes[k], b)[0] for k in ob}
        _, _, gb = exe.value_and_grad(one, d_ob, {k: d_final[k][b:b + 1] for k in fb})
        for k, v in gb["params"].items():
            total[k] += v
        for k, v in gb["inputs"].items():
            got = np.asarray(grads["inputs"][k])[b:b + 1]
            if got.ndim >= 2 and np.shape(v)[1] < got.shape[1]:
                assert not np.any(got[:, np.shape(v)[1]:]), f"input gradient {k}[{b}] is not zero at padding"
                got = got[:, :np.shape(v)[1]]
            close(f"input gradient {k}[{b}]", got, v)
        for k, v in gb["state"].items():
            close(f"initial-state gradient {k}[{b}]", grads["state"][k][b:b + 1], v)
    for k, v in total.items():
        close(f"parameter gradient {k}", grads["params"][k], v)
    return d_outs, d_final, grads


def check_torch(source, name, inputs, lengths, params, d_outs, d_final, grads, batch: int, fused: bool):
    import torch

    mod = seqdsl.compile(source, name=name, backend="torch", dtype="float64", fused=fused).eval()
    with torch.no_grad():
        for k, v in mod.params.items():
            v.copy_(torch.from_numpy(np.asarray(params[k])))
    tin = {k: torch.from_numpy(np.asarray(v)) for k, v in inputs.items()}

    def run(i, n):
        with torch.no_grad():
            outs, final = mod(lengths=n, **{k: torch.as_tensor(np.asarray(v)) for k, v in i.items()})
        return {k: v.numpy() for k, v in outs.items()}, {k: v.numpy() for k, v in final.items()}

    label = f"torch {'fused' if fused else 'loop'}: "
    check_forward(mod, inputs, lengths, run, batch, label)
    for v in tin.values():
        v.requires_grad_(v.dtype.is_floating_point)
    outs, final = mod(lengths=lengths, **tin)
    loss = sum((outs[k] * torch.from_numpy(d)).sum() for k, d in d_outs.items())
    loss = loss + sum((final[k] * torch.from_numpy(d)).sum() for k, d in d_final.items())
    if not torch.is_tensor(loss) or not loss.requires_grad:
        return
    loss.backward()
    for k, v in mod.params.items():
        got = np.zeros(v.shape) if v.grad is None else v.grad.numpy()
        close(f"{label}parameter gradient {k}", got, grads["params"][k])
    for k, v in tin.items():
        if v.requires_grad and k in grads["inputs"]:
            close(f"{label}input gradient {k}", np.zeros(v.shape) if v.grad is None else v.grad.numpy(),
                  grads["inputs"][k])


def check_lengths(source, name=None, batch: int = 3, steps: int = 6, seed: int = 0, torch_paths: bool = True):
    if not isinstance(source, Program):
        source = seqdsl.load(source)  # loaded once, compiled three times
    exe = seqdsl.compile(source, name=name, dtype="float64")
    rng = np.random.default_rng(seed)
    exe.init_params(seed)
    jitter(exe, rng)
    inputs = exe.example_inputs(batch=batch, steps=steps, seed=seed + 1)
    lengths = draw_lengths(exe, rng, batch, steps)
    poison_padding(exe, inputs, lengths)
    check_forward(exe, inputs, lengths, lambda i, n: exe(lengths=n, **i), batch, "numpy: ")
    d_outs, d_final, grads = check_numpy_grads(exe, inputs, lengths, rng, batch)
    if torch_paths:
        for fused in (True, False):
            check_torch(source, name, inputs, lengths, exe.params, d_outs, d_final, grads, batch, fused)
