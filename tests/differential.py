"""Differential testing of every compile path against the reference interpreter.

In:  a `Spec` (tests/programs.py) or any spec text and a definition name.
Out: `check_all_paths(text, name, ...)` raises AssertionError naming the path, the value
     and the difference when any of these disagrees with `seqdsl.interpret.run`:
       - NumPy inference, float64 (1e-10 abs + 1e-12 rel: a value of 1e9 has no 1e-10 digits) and
         float32 (5e-5 abs + 1e-5 rel, plus 4 times what the interpreter itself, run in float32,
         differs from its float64 run: a program that float32 cannot compute to 5e-5, such as a
         layernorm of a nearly constant vector, is judged by how far float32 itself strays);
       - NumPy `value_and_grad` outputs; its gradients (parameters, float inputs, initial
         states) against torch autograd (1e-9 relative to the largest) and against central
         finite differences of the interpreter along a random direction (float64);
       - torch fused and unfused, float64 forward and autograd; float32 forward;
       - with the optimising passes all off, and with one pass off (`pass_off`).
     NaN never counts as equal. A `SpecError` from `load` is a failure unless the spec
     uses names drawn to collide with the generated code (then refusing is fine).
"""

from __future__ import annotations

import contextlib

import numpy as np

import seqdsl
from seqdsl import driver as _driver
from seqdsl import interpret
from seqdsl.program import Program

F64 = (1e-10, 1e-12)  # float64: absolute, and relative for values too large to hold 1e-10 digits
PASSES = ("reassociate", "fuse_matmuls", "lift_slices", "fuse_multiply_add", "sigmoid_via_tanh")


@contextlib.contextmanager
def passes_off(names):
    """Compile with the named passes skipped (`hoist` always runs: codegen needs its marks)."""
    real = _driver.optimize
    names = set(names)
    if not names:
        yield
        return
    from seqdsl.passes import PIPELINE

    def optimize(g, passes=PIPELINE, extra=(), early=()):
        keep = tuple(p for p in passes if p.__name__ not in names)
        extra = tuple(p for p in extra if p.__name__ not in names)
        early = tuple(p for p in early if p.__name__ not in names)
        return real(g, keep, extra, early)

    _driver.optimize = optimize
    try:
        yield
    finally:
        _driver.optimize = real


@contextlib.contextmanager
def plans_once(program):
    """Plan each variant of `program` once: `driver.plan` takes no dtype, so the float32 compiles
    (and the modules made for given states) reuse what the float64 ones planned with the same
    options and passes; every other call plans as usual. Codegen only reads a plan."""
    real, memo = _driver.plan, {}

    def plan(prog, name, sizes, em, *args, **kw):
        if prog is not program:
            return real(prog, name, sizes, em, *args, **kw)
        key = (_driver._key(name, sizes), id(em), args, tuple(sorted(kw.items())), _driver.optimize)
        if key not in memo:
            memo[key] = real(prog, name, sizes, em, *args, **kw)
        return memo[key]

    _driver.plan = plan
    try:
        yield
    finally:
        _driver.plan = real


def _close(what, got, want, atol, rtol=0.0, slack=0.0):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    assert not np.isnan(want).any(), f"{what}: the reference is NaN (generator bug)"
    assert not np.isnan(got).any(), f"{what}: NaN where the reference is {want}"
    err = np.abs(got - want)
    bound = atol + rtol * np.abs(want) + slack
    if (err > bound).any():
        i = np.unravel_index(np.argmax(err - bound), err.shape)
        raise AssertionError(f"{what}: differs by {err[i]:.3g} at {i} (got {got[i]!r}, expected {want[i]!r}; "
                             f"max |err| {err.max():.3g})")


def _close_dicts(what, got, want, atol, rtol=0.0, slack=None):
    assert set(got) == set(want), f"{what}: keys {sorted(got)}, expected {sorted(want)}"
    for k in want:
        _close(f"{what}[{k!r}]", got[k], want[k], atol, rtol, 0.0 if slack is None else slack[k])


def _float32_slack(program, name, params, inputs, state, want: dict) -> dict:
    """4 times how far the interpreter, run on the same values in float32, strays from its float64
    run (0 where it is not finite: a float32 overflow widens nothing)."""
    low = lambda d: None if d is None else {k: v.astype(np.float32) if v.dtype.kind == "f" else v  # noqa: E731
                                            for k, v in d.items()}
    try:
        outs, final = interpret.run(program, name, None, low(params), low(inputs), low(state))
    except (FloatingPointError, OverflowError, ValueError):  # float32 itself cannot: no slack
        return {k: 0.0 for k in want}
    slack = {}
    for k, v in {**outs, **final}.items():
        d = np.abs(np.asarray(v, dtype=np.float64) - np.asarray(want[k], dtype=np.float64))
        slack[k] = np.where(np.isfinite(d), 4 * d, 0.0)
    return slack


def _states(exe, rng, batch):
    """Random initial states for half of a cell's states, or of a model's run states (`enc.h`)."""
    shapes = exe._ns["STATE_SHAPES"]
    names = sorted(shapes)
    classes = {f"{k}.last": p["classes"] for k, p in exe._ns["PREDICTED"].items()}
    return {s: rng.integers(0, classes[s], (batch,)) if s in exe._ns["STATE_TOKENS"] else
            rng.uniform(-0.5, 0.5, (batch,) + tuple(shapes[s])) for s in names[: (len(names) + 1) // 2]}


def _loss(outs, final, d_out, d_fin):
    total = 0.0
    for k, v in d_out.items():
        total += float((np.asarray(outs[k], dtype=np.float64) * v).sum())
    for k, v in d_fin.items():
        total += float((np.asarray(final[k], dtype=np.float64) * v).sum())
    return total


def check_all_paths(text, name, seed=0, steps=5, batch=2, pass_off=None, torch_paths=True, fd=True):
    """`text`: spec text, or the Program seqdsl.load made of it."""
    program = text if isinstance(text, Program) else seqdsl.load(text)
    with plans_once(program):
        return _check_all_paths(program, name, seed, steps, batch, pass_off, torch_paths, fd)


def _check_all_paths(program, name, seed, steps, batch, pass_off, torch_paths, fd):
    rng = np.random.default_rng(seed)
    exe = seqdsl.compile(program, backend="numpy", name=name, dtype="float64")
    exe.init_params(seed)
    # a little noise on every parameter: a constant initialiser (`W = 0.1`) times a layernorm's output
    # (which sums to zero) would put relu exactly on its kink, where no derivative exists
    params = {k: v + 0.01 * rng.standard_normal(v.shape) for k, v in exe.params.items()}
    exe.params = params
    inputs = exe.example_inputs(batch=batch, steps=steps, seed=seed)
    state = _states(exe, rng, batch)
    want_out, want_fin = interpret.run(program, name, None, params, inputs, state)
    for k, v in {**want_out, **want_fin}.items():
        assert np.isfinite(v).all(), f"the reference gives non-finite {k} (generator bug)"
    # NumPy inference and value_and_grad
    got_out, got_fin = exe(**inputs, state=state)
    _close_dicts("numpy outputs", got_out, want_out, *F64)
    _close_dicts("numpy final", got_fin, want_fin, *F64)
    d_out = {k: rng.standard_normal(v.shape) for k, v in want_out.items()}
    d_fin = {k: rng.standard_normal(v.shape) for k, v in want_fin.items()}
    g_out, g_fin, grads = exe.value_and_grad(inputs, d_out, d_fin, state=state)
    _close_dicts("numpy value_and_grad outputs", g_out, want_out, *F64)
    _close_dicts("numpy value_and_grad final", g_fin, want_fin, *F64)
    if fd:
        _check_fd(program, name, params, inputs, state, d_out, d_fin, grads, rng)
    variants = [()] + ([tuple(PASSES)] + ([(pass_off,)] if pass_off else []))
    ref_grads = grads
    for off in variants:
        with passes_off(off):
            label = f" (passes off: {', '.join(off)})" if off else ""
            if off:
                n2 = seqdsl.compile(program, backend="numpy", name=name, dtype="float64")
                n2.params = params
                o2, f2 = n2(**inputs, state=state)
                _close_dicts("numpy outputs" + label, o2, want_out, *F64)
                _close_dicts("numpy final" + label, f2, want_fin, *F64)
                _, _, gr2 = n2.value_and_grad(inputs, d_out, d_fin, state=state)
                _close_grads("numpy grads" + label, gr2, ref_grads)
            if torch_paths:
                for fused in (True, False):
                    _check_torch(program, name, params, inputs, state, want_out, want_fin, d_out, d_fin, ref_grads,
                                 fused, label)
    # float32: the same program, the same values, documented tolerance
    e32 = seqdsl.compile(program, backend="numpy", name=name, dtype="float32")
    e32.params = {k: v.astype(np.float32) for k, v in params.items()}
    i32 = {k: (v.astype(np.float32) if v.dtype.kind == "f" else v) for k, v in inputs.items()}
    s32 = None if state is None else {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in state.items()}
    o32, f32 = e32(**i32, state=s32)
    slack = _float32_slack(program, name, params, inputs, state, {**want_out, **want_fin})
    _close_dicts("numpy float32 outputs", o32, want_out, 5e-5, 1e-5, slack)
    _close_dicts("numpy float32 final", f32, want_fin, 5e-5, 1e-5, slack)
    if torch_paths:
        import torch

        m32 = seqdsl.compile(program, backend="torch", name=name, dtype="float32").eval()
        with torch.no_grad():
            for k, p in m32.params.items():
                p.copy_(torch.from_numpy(params[k].astype(np.float32)))
        o, f = m32(**{k: torch.from_numpy(v) for k, v in i32.items()},
                   state=None if s32 is None else {k: torch.from_numpy(v) for k, v in s32.items()})
        _close_dicts("torch float32 outputs", {k: v.detach().numpy() for k, v in o.items()}, want_out, 5e-5, 1e-5,
                     slack)
        _close_dicts("torch float32 final", {k: v.detach().numpy() for k, v in f.items()}, want_fin, 5e-5, 1e-5,
                     slack)
    return grads


def _close_grads(what, got, want, given_states=None):
    for part in ("params", "inputs", "state"):
        a, b = got.get(part, {}), want.get(part, {})
        if part == "state" and given_states is not None:  # torch: only the states passed in have a leaf
            b = {k: v for k, v in b.items() if k in given_states}
        assert set(a) == set(b), f"{what} {part}: keys {sorted(a)}, expected {sorted(b)}"
        for k in b:
            scale = max(1.0, float(np.abs(b[k]).max(initial=0)))
            _close(f"{what} {part}[{k!r}]", a[k], b[k], 1e-9 * scale)


def _check_fd(program, name, params, inputs, state, d_out, d_fin, grads, rng):
    """Central differences of the interpreter along one random direction of every float input."""
    dirs = {("params", k): rng.standard_normal(v.shape) for k, v in params.items()}
    for k, v in inputs.items():
        if v.dtype.kind == "f":
            dirs[("inputs", k)] = rng.standard_normal(v.shape)
    for k, v in (state or {}).items():
        if v.dtype.kind == "f":  # (a prediction's last token `<y>.last` is data)
            dirs[("state", k)] = rng.standard_normal(v.shape)
    analytic = 0.0
    for (part, k), d in dirs.items():
        g = grads[part].get(k)
        assert g is not None, f"numpy grads: no gradient for {part} {k!r}"
        analytic += float((np.asarray(g) * d).sum())

    def at(eps, only=None):
        move = lambda key: eps * dirs[key] if key in dirs and only in (None, key) else 0.0
        p = {k: v + move(("params", k)) for k, v in params.items()}
        i = {k: v + move(("inputs", k)) if ("inputs", k) in dirs else v for k, v in inputs.items()}
        s = None if state is None else {k: v + move(("state", k)) if ("state", k) in dirs else v
                                        for k, v in state.items()}
        o, f = interpret.run(program, name, None, p, i, s)
        return _loss(o, f, d_out, d_fin)

    def numeric(h, only=None):
        return (-at(2 * h, only) + 8 * at(h, only) - 8 * at(-h, only) + at(-2 * h, only)) / (12 * h)

    tried = []
    for h in (1e-5, 1e-4, 1e-6, 1e-7):  # a steep spot can defeat one step size, never all of them
        fd = numeric(h)
        if abs(fd - analytic) <= 1e-6 * max(1.0, abs(fd)):
            return
        tried.append(fd)
    # relu's kink within a step of the point (a pre-activation ~1e-6 from zero) breaks central
    # differences; the side that does not cross it still gives the derivative (a wrong gradient
    # fails on both sides)
    h, base = 1e-7, at(0.0)
    for side in ((at(h) - base) / h, (base - at(-h)) / h):
        if abs(side - analytic) <= 1e-5 * max(1.0, abs(side)):
            return
        tried.append(side)
    # name the culprits: the same comparison along each direction alone
    wrong = []
    for (part, k), d in dirs.items():
        a, n = float((np.asarray(grads[part][k]) * d).sum()), numeric(1e-5, (part, k))
        if abs(a - n) > 1e-6 * max(1.0, abs(n)):
            wrong.append(f"{part}[{k!r}] analytic {a:.6g} numeric {n:.6g}")
    raise AssertionError(f"gradient vs finite differences: analytic {analytic!r}, numeric {tried!r} "
                         f"(central, steps 1e-5, 1e-4, 1e-6, 1e-7; one-sided 1e-7); "
                         f"along each alone: {'; '.join(wrong) or 'all agree'}")


def _check_torch(program, name, params, inputs, state, want_out, want_fin, d_out, d_fin, ref_grads, fused, label):
    import torch

    what = f"torch {'fused' if fused else 'unfused'}{label}"
    m = seqdsl.compile(program, backend="torch", name=name, dtype="float64", fused=fused).eval()
    with torch.no_grad():
        for k, p in m.params.items():
            p.copy_(torch.from_numpy(params[k]))
    ti = {k: torch.from_numpy(v) for k, v in inputs.items()}
    for v in ti.values():
        if v.dtype == torch.float64:
            v.requires_grad_(True)
    ts = None if state is None else {k: torch.from_numpy(v).requires_grad_(v.dtype.kind == "f")
                                     for k, v in state.items()}
    o, f = m(**ti, state=ts)
    _close_dicts(f"{what} outputs", {k: v.detach().numpy() for k, v in o.items()}, want_out, *F64)
    _close_dicts(f"{what} final", {k: v.detach().numpy() for k, v in f.items()}, want_fin, *F64)
    loss = sum((o[k] * torch.from_numpy(v)).sum() for k, v in d_out.items())
    loss = loss + sum((f[k] * torch.from_numpy(v)).sum() for k, v in d_fin.items() if f[k].is_floating_point())
    leaves = {("params", k): p for k, p in m.params.items()}
    leaves.update({("inputs", k): v for k, v in ti.items() if v.requires_grad})
    leaves.update({("state", k): v for k, v in (ts or {}).items() if v.requires_grad})
    keys = list(leaves)
    if torch.is_tensor(loss) and loss.requires_grad:
        gs = torch.autograd.grad(loss, [leaves[k] for k in keys], allow_unused=True)
    else:  # nothing the loss reads depends on a leaf (e.g. y = s[t-1], s started at zeros): all zero
        gs = [None] * len(keys)
    got = {"params": {}, "inputs": {}, "state": {}}
    for (part, k), g in zip(keys, gs):
        got[part][k] = np.zeros(leaves[(part, k)].shape) if g is None else g.numpy()
    _close_grads(f"{what} autograd vs numpy BPTT", got, ref_grads, given_states=set(state or {}))
