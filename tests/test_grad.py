"""Gradients of the NumPy backend (generated BPTT): finite differences and torch autograd."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from conftest import ROOT, all_definitions

import seqdsl

DEFS = all_definitions()
IDS = [f"{p.stem}-{n}" for p, n in DEFS]


@functools.cache
def _compiled(path, name):
    """The NumPy float64 executable of a definition, compiled once for both gradient tests: each
    sets its parameters (init_params) and changes nothing else."""
    return seqdsl.compile(path, name=name, dtype="float64")


def _setup(path, name, steps=4, batch=2, seed=1):
    exe = _compiled(path, name)
    exe.init_params(seed)
    inputs = exe.example_inputs(batch=batch, steps=steps, seed=seed)
    outs, final = exe(**inputs)
    rng = np.random.default_rng(seed + 10)
    cot = {k: rng.standard_normal(v.shape) for k, v in outs.items()}
    fcot = {k: rng.standard_normal(v.shape) for k, v in final.items()}
    return exe, inputs, cot, fcot


def _loss(exe, params, inputs, cot, fcot, state=None):
    saved = exe.params
    exe.params = params
    try:
        o, f = exe(**inputs, state=state)
    finally:
        exe.params = saved
    return sum((o[k] * cot[k]).sum() for k in o) + sum((f[k] * fcot[k]).sum() for k in f if k in fcot)


def _directional(f, x, v, eps=1e-4):
    """Five-point central difference of f along the unit vector v/|v| (error O(eps^4)), times |v|."""
    norm = float(np.sqrt((v * v).sum()))
    v = v / norm
    return norm * (-f(x + 2 * eps * v) + 8 * f(x + eps * v) - 8 * f(x - eps * v) + f(x - 2 * eps * v)) / (12 * eps)


@pytest.mark.parametrize("path,name", DEFS, ids=IDS)
def test_gradients_match_finite_differences(path, name):
    exe, inputs, cot, fcot = _setup(path, name)
    _, _, grads = exe.value_and_grad(inputs, cot, fcot)
    rng = np.random.default_rng(0)
    for k, p in exe.params.items():
        v = rng.standard_normal(p.shape)

        def f(x, k=k):
            return _loss(exe, {**exe.params, k: x}, inputs, cot, fcot)

        fd = _directional(f, p, v)
        an = float((grads["params"][k] * v).sum())
        assert abs(fd - an) <= 1e-6 * max(abs(fd), abs(an), 1e-8), (k, fd, an)
    for k, x in inputs.items():
        if x.dtype.kind != "f":
            continue
        v = rng.standard_normal(x.shape)
        fd = _directional(lambda z, k=k: _loss(exe, exe.params, {**inputs, k: z}, cot, fcot), x, v)
        an = float((grads["inputs"][k] * v).sum())
        assert abs(fd - an) <= 1e-6 * max(abs(fd), abs(an), 1e-8), (k, fd, an)


@pytest.mark.parametrize("spec", ["lstm", "gru", "delay2", "peephole_lstm"])
def test_initial_state_gradients(spec):
    exe = seqdsl.compile(ROOT / f"specs/{spec}.seq", dtype="float64")
    inputs = exe.example_inputs(batch=3, steps=6)
    rng = np.random.default_rng(2)
    state = {s: rng.standard_normal((3,) + shape) for s, shape in exe._ns["STATE_SHAPES"].items()}
    outs, final = exe(**inputs, state=state)
    cot = {k: rng.standard_normal(v.shape) for k, v in outs.items()}
    _, _, grads = exe.value_and_grad(inputs, cot, state=state)
    for s, x in state.items():
        v = rng.standard_normal(x.shape)
        fd = _directional(lambda z, s=s: _loss(exe, exe.params, inputs, cot, {}, {**state, s: z}), x, v)
        an = float((grads["state"][s] * v).sum())
        assert abs(fd - an) <= 1e-6 * max(abs(fd), abs(an)), (s, fd, an)


torch = pytest.importorskip("torch")


@pytest.mark.parametrize("path,name", DEFS, ids=IDS)
def test_gradients_match_torch_autograd(path, name):
    exe, inputs, cot, fcot = _setup(path, name, steps=5, batch=3)
    mod = seqdsl.compile(path, name=name, backend="torch", dtype="float64").eval()  # NumPy's default: no dropout
    mod.init_params(1)
    tin = {k: torch.from_numpy(v).requires_grad_(v.dtype.kind == "f") for k, v in inputs.items()}
    o, f = mod(**tin)
    loss = sum((o[k] * torch.from_numpy(cot[k])).sum() for k in o) + \
        sum((f[k] * torch.from_numpy(fcot[k])).sum() for k in f)
    loss.backward()
    _, _, grads = exe.value_and_grad(inputs, cot, fcot)
    for k, p in mod.params.items():
        ref = p.grad.numpy() if p.grad is not None else np.zeros(tuple(p.shape))
        np.testing.assert_allclose(grads["params"][k], ref, rtol=1e-9, atol=1e-10, err_msg=k)
    for k, t in tin.items():
        if t.requires_grad:
            np.testing.assert_allclose(grads["inputs"][k], t.grad.numpy(), rtol=1e-9, atol=1e-10, err_msg=k)


def test_inference_keeps_no_tape():
    exe = seqdsl.compile(ROOT / "specs/lstm.seq")
    src = exe.source
    fwd = src[src.index("def cell_LSTM__I_8__H_16("):src.index("def cell_LSTM__I_8__H_16__grad(")]
    assert "__tape" not in fwd and "backward" not in fwd
    grad = src[src.index("def cell_LSTM__I_8__H_16__grad("):]
    assert "__tape.append" in grad


def test_weight_gradient_of_the_loop_is_one_matmul():
    src = seqdsl.compile(ROOT / "specs/lstm.seq").source
    assert "_i_f_o_g_matmul_2__gB.reshape(-1, 64).T @ np.stack(h__H[0:0 + T]).reshape(-1, 16)" in src


def test_value_and_grad_rejects_unknown_output():
    exe = seqdsl.compile(ROOT / "specs/rnn.seq")
    with pytest.raises(TypeError, match="has no output"):
        exe.value_and_grad(exe.example_inputs(), {"z": np.zeros(1)})


def test_dead_gate_partial_slice_gradient():
    """A gate nothing reads leaves a fused matmul only partly sliced (regression: its gradient
    buffer was shaped after a forward value that was never kept)."""
    src = (ROOT / "specs/lstm.seq").read_text().replace("c = f * c[t-1] + i * g", "c = f * c[t-1] * g")
    exe = seqdsl.compile(src, dtype="float64")
    mod = seqdsl.compile(src, backend="torch", dtype="float64", fused=False)
    inputs = exe.example_inputs(batch=2, steps=4)
    out, _ = exe(**inputs)
    cot = {"y": np.random.default_rng(0).standard_normal(out["y"].shape)}
    _, _, grads = exe.value_and_grad(inputs, cot)
    x = torch.from_numpy(inputs["x"]).requires_grad_(True)
    (mod(x=x)[0]["y"] * torch.from_numpy(cot["y"])).sum().backward()
    np.testing.assert_allclose(grads["inputs"]["x"], x.grad.numpy(), atol=1e-10)
    for k, p in mod.params.items():
        ref = p.grad.numpy() if p.grad is not None else np.zeros(tuple(p.shape))
        np.testing.assert_allclose(grads["params"][k], ref, atol=1e-10, err_msg=k)
