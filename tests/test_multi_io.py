"""Cells with several inputs, several memories, and outputs that read a state's earlier value.

Every spec here runs through the reference interpreter, the NumPy backend and the torch backend
(fused and unfused) in float64, and the NumPy gradients (BPTT) are compared with torch autograd.
"""

from __future__ import annotations

import numpy as np
import pytest

import seqdsl
from seqdsl.errors import SpecError
from seqdsl.interpret import run

torch = pytest.importorskip("torch")

# ---- specs --------------------------------------------------------------------------------

# an output that is a delayed state read, in a cell that is otherwise torch's RNN step
PREV_RNN = """cell PrevRNN(I = 3, H = 4) {
    in x: [I]
    state h: [H]
    param W_ih: [H, I]
    param W_hh: [H, H]
    param b_ih, b_hh: [H]
    h = tanh(W_ih @ x + b_ih + W_hh @ h[t-1] + b_hh)
    out y = h
    out prev = h[t-1]
}
"""

# earlier values read through equations declared before the state (`p` names c's delayed buffer,
# which an in-place update of `c` would overwrite), a two-step delay, and an expression of them
PREV_LSTM = """cell PrevLSTM(I = 3, H = 4) {
    in x: [I]
    state h: [H] = 0.5
    state c: [H]
    param W: [4*H, I]
    param U: [4*H, H]
    param b: [4*H]
    p = c[t-1]
    older = h[t-2]
    i, f, g, o = split(W @ x + U @ h[t-1] + b, 4)
    c = sigmoid(f) * c[t-1] + sigmoid(i) * tanh(g)
    h = sigmoid(o) * tanh(c)
    out y = h
    out c_prev = p
    out h_older = older
    out both = tanh(h[t-1]) + c[t-1]
}
model PrevModel(V = 7, E = 3, H = 4) {
    in src: seq<int>
    r = PrevLSTM(E, H) over embed(src, V, E) reversed
    out y = linear(r.c_prev, 2)
    out older = r.h_older
    out hs = r.h
}
"""

# two per-step inputs: a mask as a scalar per step, and one as a [1] vector
MASKED = """cell Masked(I = 3, H = 4) {
    in x: [I]
    in mask: []
    state h: [H]
    param W: [H, I]
    param U: [H, H]
    param b: [H]
    n = tanh(W @ x + U @ h[t-1] + b)
    h = mask * n + (1 - mask) * h[t-1]
    out y = h
}
cell Gate(I = 3, H = 4) {
    in x: [I]
    in mask: [1]
    state h: [H]
    param W: [H, I + 1]
    param U: [H, H]
    h = tanh(W @ concat(x, mask) + U @ h[t-1])
    out y = h
    out held = h[t-1]
}
model Tagger(V = 7, E = 3, H = 4) {
    in src: seq<int>
    in m: seq[]
    in g: seq[1]
    fwd = Masked(E, H) over (x = embed(src, V, E), mask = m)
    bi = Masked(E, H) over (mask = m, x = embed(src, V, E)) bidirectional
    rev = Gate(E, H) over (x = embed(src, V, E), mask = g) reversed from fwd.final
    out y = linear(concat(fwd.y, bi.y, rev.y), 2)
    out hs = bi.h
    out held = rev.held
}
"""

# two memories, attended by name, of different lengths
TWO_MEMORIES = """cell Enc(E = 3, H = 4) {
    in x: [E]
    state h: [H]
    param W: [H, E]
    param U: [H, H]
    h = tanh(W @ x + U @ h[t-1])
    out y = h
}
cell TwoMem(E = 3, H = 4) {
    in x: [E]
    memory a: seq[H]
    memory b: seq[H]
    state h: [H]
    param W: [H, E]
    param U: [H, H]
    wa = softmax(a @ h[t-1])
    wb = softmax(b @ h[t-1])
    h = tanh(W @ x + U @ h[t-1] + sum(wa * a) + sum(wb * b))
    out y = h
    out attn_a = wa
}
model Fuse(V = 7, E = 3, H = 4) {
    in s1: seq<int>
    in s2: seq<int>
    in tgt: seq<int>
    e1 = Enc(E, H) over embed(s1, V, E)
    e2 = Enc(E, H) over embed(s2, V, E)
    d = TwoMem(E, H) over embed(tgt, V, E) from e1.final attend (a = e1.y, b = e2.y)
    out y = linear(d.y, 2)
    out attn = d.attn_a
}
"""


# ---- the comparison -----------------------------------------------------------------------

def _torch(x):
    return torch.from_numpy(x).requires_grad_(x.dtype.kind == "f")


def check(src: str, name: str, inputs: dict | None = None, state: dict | None = None, seed: int = 3):
    """Interpreter = NumPy = torch (fused and unfused) forward; NumPy BPTT = torch autograd."""
    exe = seqdsl.compile(src, name=name, dtype="float64")
    exe.init_params(seed)
    if inputs is None:
        inputs = exe.example_inputs(batch=2, steps=5, seed=seed)
    want, want_final = run(seqdsl.load(src), name, None, exe.params, inputs, state)
    got, final = exe(**inputs, state=state)
    assert set(got) == set(want) and set(final) == set(want_final)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=0, atol=1e-10, err_msg=f"numpy {k}")
    for k in want_final:
        np.testing.assert_allclose(final[k], want_final[k], rtol=0, atol=1e-10, err_msg=f"numpy final {k}")
    rng = np.random.default_rng(seed + 10)
    cot = {k: rng.standard_normal(v.shape) for k, v in want.items()}
    fcot = {k: rng.standard_normal(v.shape) for k, v in want_final.items()}
    _, _, grads = exe.value_and_grad(inputs, cot, fcot, state=state)
    for fused in (True, False):
        mod = seqdsl.compile(src, name=name, backend="torch", dtype="float64", fused=fused)
        mod.init_params(seed)
        tin = {k: _torch(v) for k, v in inputs.items()}
        tstate = {k: _torch(v) for k, v in state.items()} if state else None
        o, f = mod(**tin, state=tstate)
        tag = "fused" if fused else "unfused"
        for k in want:
            np.testing.assert_allclose(o[k].detach().numpy(), want[k], rtol=0, atol=1e-10, err_msg=f"{tag} {k}")
        for k in want_final:
            np.testing.assert_allclose(f[k].detach().numpy(), want_final[k], rtol=0, atol=1e-10,
                                       err_msg=f"{tag} final {k}")
        loss = sum((o[k] * torch.from_numpy(cot[k])).sum() for k in o) + \
            sum((f[k] * torch.from_numpy(fcot[k])).sum() for k in f)
        loss.backward()
        for k, p in mod.params.items():
            ref = p.grad.numpy() if p.grad is not None else np.zeros(tuple(p.shape))
            np.testing.assert_allclose(grads["params"][k], ref, rtol=1e-9, atol=1e-10, err_msg=f"{tag} d{k}")
        for k, t in tin.items():
            if t.requires_grad:
                ref = t.grad.numpy() if t.grad is not None else np.zeros(t.shape)
                np.testing.assert_allclose(grads["inputs"][k], ref, rtol=1e-9, atol=1e-10, err_msg=f"{tag} d{k}")
        for k, t in (tstate or {}).items():
            np.testing.assert_allclose(grads["state"][k], t.grad.numpy(), rtol=1e-9, atol=1e-10,
                                       err_msg=f"{tag} d{k}0")
    return exe, want, want_final


# ---- 1. an output that reads a state at t-1 -----------------------------------------------

def test_prev_output_is_the_state_one_step_earlier():
    exe, want, _ = check(PREV_RNN, "PrevRNN")
    np.testing.assert_array_equal(want["prev"][:, 0], 0.0)
    np.testing.assert_allclose(want["prev"][:, 1:], want["y"][:, :-1], rtol=0, atol=0)


def test_prev_output_with_initial_state():
    rng = np.random.default_rng(5)
    state = {"h": rng.standard_normal((2, 4))}
    _, want, _ = check(PREV_RNN, "PrevRNN", state=state)
    np.testing.assert_array_equal(want["prev"][:, 0], state["h"])


def test_prev_output_keeps_the_generated_loop():
    """Without `prev` the cell is torch's RNN step; with it, no fused kernel can return prev."""
    plain = PREV_RNN.replace("    out prev = h[t-1]\n", "")
    assert "torch._VF.rnn_tanh(" in seqdsl.compile(plain, backend="torch").source
    assert "torch._VF" not in seqdsl.compile(PREV_RNN, backend="torch").source


def test_earlier_values_through_equations_and_two_step_delays():
    rng = np.random.default_rng(1)
    state = {"h": rng.standard_normal((2, 4)), "c": rng.standard_normal((2, 4))}
    _, want, _ = check(PREV_LSTM, "PrevLSTM", state=state)
    np.testing.assert_array_equal(want["c_prev"][:, 0], state["c"])
    np.testing.assert_array_equal(want["h_older"][:, :2], np.stack([state["h"]] * 2, 1))


def test_aliases_are_never_overwritten_in_place():
    """`b = a` names a step value, `k = k[t-1]` a state's earlier value: the NumPy memory plan
    must not overwrite the buffer they share while they are still read (regression: it did)."""
    src = """cell Alias(I = 3, H = 4) {
    in x: [I]
    state h: [H]
    param W: [H, I]
    param U: [H, H]
    a = W @ x + U @ h[t-1]
    b = a
    c = tanh(a)
    h = c + b
    out y = h
}
"""
    check(src, "Alias")


def test_output_is_copied_before_a_later_node_overwrites_it():
    """Regression: an output copied at the end of the step saw a value overwritten in place."""
    src = """cell Pre(I = 3, H = 4) {
    in x: [I]
    state h: [H]
    param W: [H, I]
    param U: [H, H]
    a = W @ x + U @ h[t-1]
    b = tanh(a)
    h = b * b
    out before = a
    out y = h
}
"""
    check(src, "Pre")


def test_earlier_values_in_a_reversed_model_run():
    check(PREV_LSTM, "PrevModel")


def test_delayed_state_as_an_equation_and_an_argument():
    src = """cell Hold(I = 2) {
    in x: [I]
    state h: [I]
    state k: [I]
    k = k[t-1]
    h = x + tanh(k[t-1]) + h[t-1]
    out y = h
    out z = linear(h[t-1], 3)
}
"""
    rng = np.random.default_rng(0)
    check(src, "Hold", state={"h": rng.standard_normal((2, 2)), "k": rng.standard_normal((2, 2))})


# ---- 2. several per-step inputs -------------------------------------------------------------

@pytest.mark.parametrize("name", ["Masked", "Gate"])
def test_cell_with_two_inputs_compiles_directly(name):
    exe = seqdsl.compile(MASKED, name=name)
    assert set(exe._ns["INPUTS"]) == {"x", "mask"}
    inputs = exe.example_inputs(batch=2, steps=5)
    assert inputs["x"].shape == (2, 5, 3) and inputs["mask"].shape[:2] == (2, 5)
    check(MASKED, name)


def test_a_zero_one_mask_holds_the_state():
    exe = seqdsl.compile(MASKED, name="Masked", dtype="float64")
    inputs = exe.example_inputs(batch=2, steps=6, seed=1)
    inputs["mask"] = np.array([[1, 1, 0, 0, 1, 0], [0, 1, 1, 0, 0, 0]], dtype=np.float64)
    _, want, _ = check(MASKED, "Masked", inputs=inputs)
    y = want["y"]
    np.testing.assert_array_equal(y[0, 2], y[0, 1])
    np.testing.assert_array_equal(y[1, 0], 0.0)
    np.testing.assert_array_equal(y[1, 5], y[1, 2])


def test_model_runs_cells_with_named_inputs():
    """over (x = .., mask = ..) in either order, bidirectional, reversed, and from another run."""
    check(MASKED, "Tagger")


def test_reversed_run_reverses_every_input():
    models = """model {name}(V = 7, E = 3, H = 4) {{
    in src: seq<int>
    in m: seq[]
    r = Masked(E, H) over (x = embed(src, V, E), mask = m){opt}
    out y = r.y
}}
"""
    src = MASKED + models.format(name="Fwd", opt="") + models.format(name="Rev", opt=" reversed")
    fwd = seqdsl.compile(src, name="Fwd", dtype="float64")
    rev = seqdsl.compile(src, name="Rev", dtype="float64")
    rev.params = fwd.params
    inputs = fwd.example_inputs(batch=2, steps=5, seed=2)
    got = rev(**inputs)[0]["y"]
    flipped = fwd(src=inputs["src"][:, ::-1].copy(), m=inputs["m"][:, ::-1].copy())[0]["y"]
    np.testing.assert_allclose(got, flipped[:, ::-1], rtol=0, atol=1e-12)
    check(src, "Rev")


def test_inputs_must_agree_in_batch_and_steps():
    exe = seqdsl.compile(MASKED, name="Masked", dtype="float64")
    inputs = exe.example_inputs(batch=2, steps=5)
    inputs["mask"] = inputs["mask"][:, :4]
    with pytest.raises(ValueError, match="mask"):
        exe(**inputs)
    with pytest.raises(ValueError, match="per-step inputs differ"):
        run(seqdsl.load(MASKED), "Masked", None, exe.params, inputs)


def test_one_input_may_be_named():
    src = MASKED.replace("model Tagger", "model Unused") + """model Named(V = 7, E = 3, H = 4) {
    in src: seq<int>
    r = Enc(E, H) over (x = embed(src, V, E))
    out y = r.y
}
""" + TWO_MEMORIES.split("cell TwoMem")[0]
    check(src, "Named")


def test_plain_over_names_the_inputs_to_give():
    src = MASKED + "model Bad(V = 7) {\n    in src: seq<int>\n    r = Masked(3, 4) over embed(src, V, 3)\n" \
                   "    out y = r.y\n}\n"
    with pytest.raises(SpecError) as info:
        seqdsl.load(src)
    e = info.value
    assert "Masked has 2 inputs (x, mask)" in e.message and "over (x = ..., mask = ...)" in e.hint
    assert (e.line, e.col) == (src.splitlines().index("    r = Masked(3, 4) over embed(src, V, 3)") + 1, 27)


def test_a_cell_without_inputs_is_rejected():
    with pytest.raises(SpecError, match="has no input") as info:
        seqdsl.load("cell C(H = 2) {\n    state h: [H] = ones\n    h = h[t-1] * 2\n    out y = h\n}\n")
    assert "in x: [..]" in info.value.hint


def test_blocks_take_several_named_inputs():
    src = """block A(D = 4) {
    in q: seq[D]
    in kv: seq[D]
    out y = attention(q, kv, kv)
}
model M(V = 7) {
    in w: seq<int>
    x = embed(w, V, 4)
    out y = A(4) over (q = x, kv = tanh(x))
}
"""
    check(src, "M")


# ---- 3. several memories ----------------------------------------------------------------------

def test_cell_with_two_memories_compiles_directly():
    exe = seqdsl.compile(TWO_MEMORIES, name="TwoMem", dtype="float64")
    inputs = exe.example_inputs(batch=2, steps=4, seed=0)
    inputs["b"] = np.random.default_rng(1).standard_normal((2, 7, 4))  # memories of different lengths
    check(TWO_MEMORIES, "TwoMem", inputs=inputs)


def test_model_attends_to_two_memories_by_name():
    rng = np.random.default_rng(4)
    inputs = {"s1": rng.integers(0, 7, (2, 5)), "s2": rng.integers(0, 7, (2, 3)), "tgt": rng.integers(0, 7, (2, 4))}
    exe, want, _ = check(TWO_MEMORIES, "Fuse", inputs=inputs)
    assert want["attn"].shape == (2, 4, 5)
    np.testing.assert_allclose(want["attn"].sum(-1), 1.0, atol=1e-12)
    swapped = seqdsl.compile(TWO_MEMORIES.replace("attend (a = e1.y, b = e2.y)", "attend (b = e2.y, a = e1.y)"),
                             name="Fuse", dtype="float64")
    swapped.params = exe.params
    np.testing.assert_allclose(swapped(**inputs)[0]["attn"], want["attn"], rtol=0, atol=1e-12)


def test_ir_text_names_the_ports():
    from seqdsl.ir import to_text

    text = to_text(seqdsl.load(TWO_MEMORIES).definitions["Fuse"].graph)
    line = next(ln for ln in text.splitlines() if "= call(" in ln and "TwoMem" in ln)
    assert "x=" in line and "a=" in line and "b=" in line and "h=" in line


# ---- gradients of outputs and values the step loop does not carry ------------------------------

ODD = """cell Odd(I = 3, H = 4) {
    in x: [I]
    memory m: seq[H]
    state h: [H]
    param W: [H, I]
    param U: [H, H]
    param W7: [H, H]
    param v: [I]
    dead = W7 @ h[t-1]
    unused = layernorm(h[t-1])
    h = tanh(W @ x + U @ h[t-1])
    out y = h
    out proj = v @ x
    out scores = softmax(m @ h)
}
model UsesOdd(V = 7) {
    in w: seq<int>
    in mem: seq[4]
    r = Odd(3, 4) over embed(w, V, 3) attend mem
    out y = r.y
}
"""


@pytest.mark.parametrize("passes", [True, False])
@pytest.mark.parametrize("name", ["Odd", "UsesOdd"])
def test_gradients_of_hoisted_outputs_and_dead_values(name, passes, monkeypatch):
    """Regressions (NumPy BPTT): an output computed before the loop (`v @ x`) got no gradient;
    with the passes off, a matmul nothing reads added an uninitialised buffer to its weight's
    gradient and a layernorm nothing reads left its parameters' gradients a scalar 0; an output
    with a memory axis that got no cotangent (the model reads only r.y) had a zero cotangent of
    the wrong shape."""
    if not passes:
        from seqdsl import driver

        real = driver.optimize
        monkeypatch.setattr(driver, "optimize", lambda g, passes=(), extra=(), early=(): real(g, (), ()))
    check(ODD, name)
