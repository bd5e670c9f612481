"""`select(mask, a, b)` and attention's key-padding mask: the IR building blocks of variable lengths.

There is no surface syntax for either (the length-masking pass makes them), so each graph here is
written as IR text (`seqdsl.ir_parse`) and compiled through `driver.plan` and `Codegen` by a
stand-in for `Program` (`Graphs`: `specialize` returns the graph). Each is checked on the
reference interpreter, the generated NumPy module (forward, and its BPTT gradients against
finite differences of the interpreter) and the generated torch module (forward, and autograd
against the NumPy gradients), all in float64.
"""

from __future__ import annotations

import numpy as np
import pytest

from seqdsl import interpret
from seqdsl.backends import emitter_for
from seqdsl.backends.codegen import Codegen
from seqdsl.driver import plan
from seqdsl.errors import SpecError
from seqdsl.ir import to_text
from seqdsl.ir_parse import IRTextError, from_text
from seqdsl.ops import OPS, Op, ops_where
from seqdsl.types import VType

torch = pytest.importorskip("torch")

TOL = 1e-10

# a cell that stops changing on the steps where `active` is 0: h = select(active, tanh(...), h[t-1])
CELL = """cell Masked(I=3, H=4)
  x: [3] = input()  # line 1
  active: [] = input()  # line 2
  W: shared[4, 3] = param(init=uniform(0.5))  # line 3
  U: shared[4, 4] = param(init=uniform(0.5))  # line 4
  _h1: [4] = matmul(W, x)  # line 5
  _h2: [4] = matmul(U, h[t-1])  # line 5
  _h3: [4] = add(_h1, _h2)  # line 5
  _h4: [4] = tanh(_h3)  # line 5
  h: [4] state(init=0.0) = select(active, _h4, h[t-1])  # line 5
  _zero: shared[] = const(value=0.0)  # line 6
  _y1: [4] = select(active, h, _zero)  # line 6
  out_y: [4] = output(_y1, output=y)  # line 6
  _z1: [4] = select(active, _h1, _zero)  # line 7
  out_z: [4] = output(_z1, output=z)  # line 7
"""

# an LSTM whose two states hold on inactive steps: c[t-1] is read by the select and by f * c[t-1],
# which the NumPy memory plan may compute in place
LSTM = """cell MaskedLSTM(I=3, H=4)
  x: [3] = input()  # line 1
  active: [] = input()  # line 2
  W: shared[16, 3] = param(init=uniform(0.5))  # line 3
  U: shared[16, 4] = param(init=uniform(0.5))  # line 3
  b: shared[16] = param(init=uniform(0.5))  # line 3
  _z1: [16] = matmul(W, x)  # line 4
  _z2: [16] = matmul(U, h[t-1])  # line 4
  _z3: [16] = add(_z1, _z2)  # line 4
  z: [16] = add(_z3, b)  # line 4
  _i1: [4] = slice(z, start=0, stop=4)  # line 5
  i: [4] = sigmoid(_i1)  # line 5
  _f1: [4] = slice(z, start=4, stop=8)  # line 5
  f: [4] = sigmoid(_f1)  # line 5
  _o1: [4] = slice(z, start=8, stop=12)  # line 5
  o: [4] = sigmoid(_o1)  # line 5
  _g1: [4] = slice(z, start=12, stop=16)  # line 5
  g: [4] = tanh(_g1)  # line 5
  _c1: [4] = mul(f, c[t-1])  # line 6
  _c2: [4] = mul(i, g)  # line 6
  _c3: [4] = add(_c1, _c2)  # line 6
  c: [4] state(init=0.0) = select(active, _c3, c[t-1])  # line 6
  _h1: [4] = tanh(c)  # line 7
  _h2: [4] = mul(o, _h1)  # line 7
  h: [4] state(init=0.0) = select(active, _h2, h[t-1])  # line 7
  out_y: [4] = output(h, output=y)  # line 8
"""

# a softmax over the real positions only: the padded ones are -inf before it (exactly 0 after)
SOFTMAX = """model Pooled(D=4)
  x: seq[4] = input()  # line 1
  keep: seq[] = input()  # line 2
  q: [4] = input()  # line 3
  W: shared[4, 4] = param(init=uniform(0.5))  # line 4
  _s1: seq[4] = matmul(W, x)  # line 5
  _s2: seq[4] = tanh(_s1)  # line 5
  s: seq[] = matmul(_s2, q)  # line 5
  _ninf: shared[] = const(value=-inf)  # line 6
  _s3: seq[] = select(keep, s, _ninf)  # line 6
  a: seq[] = softmax(_s3)  # line 6
  _c1: seq[4] = mul(a, x)  # line 7
  c: [4] = sum(_c1)  # line 7
  out_a: seq[] = output(a, output=a)  # line 8
  out_c: [4] = output(c, output=c)  # line 8
"""

# the mask against every kind of operand: per position, per sample, shared
BROADCASTS = """model Broadcasts(D=4)
  x: seq[4] = input()  # line 1
  keep: seq[] = input()  # line 2
  flag: [] = input()  # line 3
  p: [4] = input()  # line 4
  V: shared[4] = param(init=uniform(0.5))  # line 5
  _zero: shared[] = const(value=0.0)  # line 6
  _y1: seq[4] = select(keep, x, _zero)  # line 6
  _y2: seq[4] = select(flag, x, p)  # line 7
  _y3: seq[4] = select(keep, p, V)  # line 8
  _y4: seq[4] = select(flag, V, x)  # line 9
  _y5: [4] = select(flag, _zero, V)  # line 10
  _y6: [4] = select(flag, p, V)  # line 10
  out_y1: seq[4] = output(_y1, output=y1)  # line 11
  out_y2: seq[4] = output(_y2, output=y2)  # line 11
  out_y3: seq[4] = output(_y3, output=y3)  # line 11
  out_y4: seq[4] = output(_y4, output=y4)  # line 11
  out_y5: [4] = output(_y5, output=y5)  # line 11
  out_y6: [4] = output(_y6, output=y6)  # line 11
"""

# an attended memory with padding, in a cell: the scores over it are -inf at its padding
MEMORY_CELL = """cell Attend(I=3, H=4)
  x: [3] = input()  # line 1
  m: seq[4] = memory()  # line 2
  km: seq[] = memory()  # line 3
  W: shared[4, 3] = param(init=uniform(0.5))  # line 4
  _q1: [4] = matmul(W, x)  # line 5
  _q2: [4] = add(_q1, h[t-1])  # line 5
  s: seq[] = matmul(m, _q2)  # line 6
  _ninf: shared[] = const(value=-inf)  # line 7
  _s1: seq[] = select(km, s, _ninf)  # line 7
  a: seq[] = softmax(_s1)  # line 7
  _c1: seq[4] = mul(a, m)  # line 8
  _c2: [4] = sum(_c1)  # line 8
  h: [4] state(init=0.0) = tanh(_c2)  # line 8
  out_y: [4] = output(h, output=y)  # line 9
"""


def attention_block(causal: bool, masked: bool = True) -> str:
    mask = ", km" if masked else ""
    return f"""block Attn(D=4)
  q: seq[4] = input()  # line 1
  k: seq[4] = input()  # line 1
  v: seq[4] = input()  # line 1
  km: seq[] = input()  # line 2
  W: shared[4, 4] = param(init=uniform(0.5))  # line 3
  _v1: seq[4] = matmul(W, v)  # line 3
  y: seq[4] = attention(q, k, _v1{mask}, causal={str(causal).lower()}, heads=2)  # line 4
  _z: shared[] = const(value=0.0)  # line 5
  _y1: seq[4] = select(km, y, _z)  # line 5
  out_y: seq[4] = output(_y1, output=y)  # line 6
"""


class Graphs:
    """What `driver.plan` and the interpreter ask of a `Program`, for one hand-written graph."""

    def __init__(self, g):
        self.g = g

    def specialize(self, name, sizes):
        return self.g.copy()


def source(text: str, backend: str, dtype: str = "float64") -> str:
    g = from_text(text)
    em = emitter_for(backend)
    p = plan(Graphs(g), g.graph["name"], {}, em)
    return Codegen(Graphs(g), p, em, dtype).module("select.ir")


def module(text: str, backend: str, dtype: str = "float64") -> dict:
    ns: dict = {"__name__": "select_test"}
    exec(compile(source(text, backend, dtype), "<select>", "exec"), ns)
    if backend == "torch":
        ns["_CTX"].update(dtype=getattr(torch, dtype), device="cpu")
    return ns


def steps_mask(rng, B: int, T: int) -> np.ndarray:
    """1 on each sample's first `length` positions (length >= 1), 0 after; sample 0 has them all."""
    lengths = rng.integers(1, T + 1, B)
    lengths[0] = T
    return (np.arange(T)[None, :] < lengths[:, None]).astype(np.float64)


def params_of(ns, rng) -> dict:
    return {k: rng.uniform(-0.8, 0.8, shape) for k, (shape, _) in ns["PARAMS"].items()}


def close(what, got, want, tol=TOL):
    got = got.detach().numpy() if hasattr(got, "detach") else np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    assert not np.isnan(got).any(), what
    np.testing.assert_allclose(got, want, rtol=0, atol=tol, err_msg=what)


def loss(outs, final, d_out, d_fin) -> float:
    return float(sum((outs[k] * d_out[k]).sum() for k in d_out) + sum((final[k] * d_fin[k]).sum() for k in d_fin))


def check_all(text: str, inputs: dict, fixed: set, state: dict | None = None, seed: int = 0):
    """Interpreter, NumPy and torch agree on `text` (outputs, final states, every gradient);
    `fixed`: the inputs (masks) nothing is differentiated along. Returns the NumPy results."""
    rng = np.random.default_rng(seed)
    g = from_text(text)
    name = g.graph["name"]
    nps = module(text, "numpy")
    params = params_of(nps, rng)
    want_out, want_fin = interpret.run(Graphs(g), name, {}, params, inputs, state)
    outs, final, backward = nps["forward_grad"](params, dict(inputs), state)
    for k in want_out:
        close(f"numpy {k}", outs[k], want_out[k])
    for k in want_fin:
        close(f"numpy final {k}", final[k], want_fin[k])
    d_out = {k: rng.standard_normal(v.shape) for k, v in want_out.items()}
    d_fin = {k: rng.standard_normal(v.shape) for k, v in want_fin.items()}
    grads = backward(d_out, d_fin)
    for part in ("params", "inputs", "state"):
        for k, v in grads[part].items():
            assert np.isfinite(v).all(), (part, k)
    check_fd(Graphs(g), name, params, inputs, state, fixed, grads, loss_of=lambda o, f: loss(o, f, d_out, d_fin))
    check_torch(text, params, inputs, state, fixed, want_out, want_fin, d_out, d_fin, grads)
    return outs, final, grads


def check_fd(program, name, params, inputs, state, fixed, grads, loss_of):
    """The NumPy gradients along a random direction against central differences of the interpreter."""
    rng = np.random.default_rng(1)
    dirs = {("params", k): rng.standard_normal(v.shape) for k, v in params.items()}
    dirs.update({("inputs", k): rng.standard_normal(v.shape) for k, v in inputs.items() if k not in fixed})
    dirs.update({("state", k): rng.standard_normal(v.shape) for k, v in (state or {}).items()})
    analytic = sum(float((grads[part][k] * d).sum()) for (part, k), d in dirs.items())

    def at(eps):
        p = {k: v + eps * dirs[("params", k)] for k, v in params.items()}
        i = {k: v + eps * dirs[("inputs", k)] if ("inputs", k) in dirs else v for k, v in inputs.items()}
        s = None if state is None else {k: v + eps * dirs[("state", k)] for k, v in state.items()}
        return loss_of(*interpret.run(program, name, {}, p, i, s))

    h = 1e-4
    numeric = (-at(2 * h) + 8 * at(h) - 8 * at(-h) + at(-2 * h)) / (12 * h)
    assert abs(numeric - analytic) <= 1e-7 * max(1.0, abs(numeric)), (numeric, analytic)


def check_torch(text, params, inputs, state, fixed, want_out, want_fin, d_out, d_fin, grads):
    ns = module(text, "torch")
    P = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    ti = {k: torch.tensor(v, requires_grad=k not in fixed) for k, v in inputs.items()}
    ts = None if state is None else {k: torch.tensor(v, requires_grad=True) for k, v in state.items()}
    outs, final = ns["forward"](P, ti, ts)
    for k in want_out:
        close(f"torch {k}", outs[k], want_out[k])
    for k in want_fin:
        close(f"torch final {k}", final[k], want_fin[k])
    total = sum((outs[k] * torch.from_numpy(v)).sum() for k, v in d_out.items())
    total = total + sum((final[k] * torch.from_numpy(v)).sum() for k, v in d_fin.items())
    leaves = {("params", k): x for k, x in P.items()}
    leaves.update({("inputs", k): x for k, x in ti.items() if k not in fixed})
    leaves.update({("state", k): x for k, x in (ts or {}).items()})
    got = torch.autograd.grad(total, list(leaves.values()), allow_unused=True)
    for (part, k), gk in zip(leaves, got):
        want = grads[part][k]
        close(f"torch autograd {part} {k}", np.zeros(want.shape) if gk is None else gk, want, 1e-9)


# ---- the op ---------------------------------------------------------------------------------------

def test_select_is_in_the_op_table():
    info = OPS[Op.SELECT]
    assert info.arity == 3 and info.kind == "elementwise" and info.label == "select"
    assert info.positionwise and info.differentiable and info.grad_reads == ("in",)
    assert Op.SELECT not in ops_where(liftable=True) | ops_where(inplace=True) | ops_where(view=True)
    assert OPS[Op.ATTENTION].arity is None  # q, k, v and an optional key mask


def _type(text: str) -> VType:
    g = from_text(f"cell C(H=4)\n  x: [4] = input()\n  m: [] = input()\n{text}")
    return g.nodes["s"]["type"]


def test_select_shape_rule_broadcasts_the_mask_like_a_scalar_operand():
    from seqdsl.errors import Span
    from seqdsl.ops import infer
    from seqdsl.sizes import Size

    H = Size.const(4)
    vec, seqv, shared = VType((H,), False, "float", True), VType((H,), True, "float", True), VType((H,), False,
                                                                                                  "float", False)
    m, ms, mo = VType((), False, "float", True), VType((), True, "float", True), VType((), False, "float", False)
    span = Span("<t>", 1, 1)
    assert infer(Op.SELECT, {}, [m, vec, vec], span) == vec
    assert infer(Op.SELECT, {}, [ms, vec, vec], span) == seqv  # a per-position mask makes it per position
    assert infer(Op.SELECT, {}, [m, shared, mo], span) == vec  # a per-sample mask makes it per sample
    assert infer(Op.SELECT, {}, [mo, shared, shared], span) == shared
    assert infer(Op.SELECT, {}, [ms, ms, mo], span) == ms
    with pytest.raises(SpecError, match="mask of numbers with no feature axis"):
        infer(Op.SELECT, {}, [vec, vec, vec], span)
    with pytest.raises(SpecError, match="mask of numbers .* got seq<int>"):
        infer(Op.SELECT, {}, [VType((), True, "int", True), vec, vec], span)
    with pytest.raises(SpecError, match="shape mismatch in select"):
        infer(Op.SELECT, {}, [m, vec, VType((Size.const(3),), False, "float", True)], span)
    with pytest.raises(SpecError, match="takes 3 inputs"):
        infer(Op.SELECT, {}, [m, vec], span)


def test_attention_shape_rule_takes_an_optional_key_mask():
    from seqdsl.errors import Span
    from seqdsl.ops import infer
    from seqdsl.sizes import Size

    seqv = VType((Size.const(4),), True, "float", True)
    span, attrs = Span("<t>", 1, 1), {"heads": Size.const(2), "causal": False}
    assert infer(Op.ATTENTION, attrs, [seqv] * 3, span) == seqv
    assert infer(Op.ATTENTION, attrs, [seqv] * 3 + [VType((), True, "float", True)], span) == seqv
    for bad in (VType((), False, "float", True), seqv, VType((), True, "int", True)):
        with pytest.raises(SpecError, match="key mask is a seq"):
            infer(Op.ATTENTION, attrs, [seqv] * 3 + [bad], span)
    with pytest.raises(SpecError, match="optional key mask, got 2"):
        infer(Op.ATTENTION, attrs, [seqv] * 2, span)


@pytest.mark.parametrize("text", [CELL, LSTM, SOFTMAX, BROADCASTS, MEMORY_CELL, attention_block(True)])
def test_ir_text_round_trip(text):
    g = from_text(text)
    assert to_text(g) == text
    assert to_text(from_text(to_text(g))) == to_text(g)


def test_ir_text_refuses_a_mask_with_features():
    bad = CELL.replace("active: [] = input()", "active: [4] = input()")
    with pytest.raises(IRTextError, match="mask of numbers with no feature axis"):
        from_text(bad)


# ---- generated code ---------------------------------------------------------------------------------

def test_emitted_select_code():
    npy, tch = source(CELL, "numpy"), source(CELL, "torch")
    assert "h = np.where(active__t[..., None], _h_tanh, h__d1)" in npy
    assert "_out_y_select = np.where(active__t[..., None], h, _num(_zero))" in npy
    assert "h = torch.where(active__t[..., None].bool(), _h_tanh, h__d1)" in tch
    assert "_out_z_select = torch.where(active[..., None].bool(), _h1, _zero)" in tch
    # backward: the gradient goes to the chosen side, through np.where
    assert "np.where(active[t][..., None] != 0, 0, h__g)" in npy
    assert "_h_tanh__g = np.where(active[t][..., None] != 0, h__g, 0)" in npy
    # over all steps before the loop (time-major: the mask is (T, B))
    assert "_out_z_select = np.where(active[..., None], _h1, _num(_zero))" in npy


def test_minus_infinity_constant_is_emitted_as_a_float():
    for backend in ("numpy", "torch"):
        assert "_a_const = float('-inf')" in source(SOFTMAX, backend)


def test_masked_attention_calls_its_kernels_and_unmasked_code_is_unchanged():
    masked, plain = source(attention_block(True), "numpy"), source(attention_block(True, False), "numpy")
    assert "_masked_attention(q, k, _y_matmul, km, 2, True)" in masked
    assert "_masked_attention_bwd(y__g, q, k, _y_matmul, km, 2, True)[0]" in masked
    assert "_attention(q, k, _y_matmul, 2, True)" in plain and "_masked" not in plain
    assert "_attention_bwd(y__g, q, k, _y_matmul, 2, True)[0]" in plain
    assert "def _attention(" not in masked and "def _attention(" in plain
    assert "_masked_attention(q, k, _y_matmul, km, 2, True)" in source(attention_block(True), "torch")


# ---- values and gradients ------------------------------------------------------------------------------

def test_cell_state_holds_where_the_step_is_inactive():
    rng = np.random.default_rng(3)
    B, T = 3, 6
    active = steps_mask(rng, B, T)
    active[1, 2] = 0.0  # a hole inside a sequence: the state holds there too
    inputs = {"x": rng.standard_normal((B, T, 3)), "active": active}
    state = {"h": rng.standard_normal((B, 4))}
    outs, final, grads = check_all(CELL, inputs, {"active"}, state)
    last = active.shape[1] - 1 - np.argmax(active[:, ::-1], axis=1)
    np.testing.assert_array_equal(final["h"], outs["y"][np.arange(B), last])
    assert (outs["y"][active == 0] == 0).all()
    assert (grads["inputs"]["x"][active == 0] == 0).all()  # an inactive step's input changes nothing
    assert (grads["inputs"]["active"] == 0).all()


def test_lstm_states_hold_where_the_step_is_inactive():
    rng = np.random.default_rng(9)
    B, T = 3, 5
    active = steps_mask(rng, B, T)
    inputs = {"x": rng.standard_normal((B, T, 3)), "active": active}
    state = {"h": rng.standard_normal((B, 4)), "c": rng.standard_normal((B, 4))}
    outs, final, _ = check_all(LSTM, inputs, {"active"}, state)
    nps = module(LSTM, "numpy")  # inference: the memory plan (in-place updates, reused buffers)
    params = params_of(nps, np.random.default_rng(0))
    want, want_fin = interpret.run(Graphs(from_text(LSTM)), "MaskedLSTM", {}, params, inputs, state)
    got, got_fin = nps["forward"](params, dict(inputs), {k: v.copy() for k, v in state.items()})
    close("inference y", got["y"], want["y"])
    close("inference c", got_fin["c"], want_fin["c"])
    last = T - 1 - np.argmax(active[:, ::-1], axis=1)
    np.testing.assert_array_equal(final["h"], outs["y"][np.arange(B), last])


def test_cell_state_holds_its_initial_value_when_never_active():
    rng = np.random.default_rng(4)
    inputs = {"x": rng.standard_normal((2, 3, 3)), "active": np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])}
    state = {"h": rng.standard_normal((2, 4))}
    _, final, grads = check_all(CELL, inputs, {"active"}, state)
    np.testing.assert_array_equal(final["h"][1], state["h"][1])


def test_minus_infinity_then_softmax_gives_exact_zeros_and_finite_gradients():
    rng = np.random.default_rng(5)
    B, T = 3, 5
    keep = steps_mask(rng, B, T)
    keep[2, 1] = 0.0
    inputs = {"x": rng.standard_normal((B, T, 4)), "keep": keep, "q": rng.standard_normal((B, 4))}
    outs, _, grads = check_all(SOFTMAX, inputs, {"keep"})
    assert (outs["a"][keep == 0] == 0).all() and (outs["a"][keep != 0] > 0).all()
    np.testing.assert_allclose(outs["a"].sum(1), 1.0, rtol=0, atol=1e-12)
    assert (grads["inputs"]["x"][keep == 0] == 0).all()
    ns32 = module(SOFTMAX, "numpy", "float32")
    o32, _ = ns32["forward"]({"W": np.eye(4, dtype=np.float32)}, {k: v.astype(np.float32) for k, v in inputs.items()})
    assert o32["a"].dtype == np.float32 and (o32["a"][keep == 0] == 0).all()


def test_mask_broadcasts_against_every_kind_of_operand():
    rng = np.random.default_rng(6)
    B, T = 3, 4
    inputs = {"x": rng.standard_normal((B, T, 4)), "keep": steps_mask(rng, B, T),
              "flag": np.array([1.0, 0.0, 1.0]), "p": rng.standard_normal((B, 4))}
    outs, _, _ = check_all(BROADCASTS, inputs, {"keep", "flag"})
    np.testing.assert_array_equal(outs["y2"][1], np.broadcast_to(inputs["p"][1], (T, 4)))
    np.testing.assert_array_equal(outs["y2"][0], inputs["x"][0])


def test_padded_memory_in_a_cell():
    rng = np.random.default_rng(7)
    B, T, S = 3, 4, 5
    inputs = {"x": rng.standard_normal((B, T, 3)), "m": rng.standard_normal((B, S, 4)), "km": steps_mask(rng, B, S)}
    _, _, grads = check_all(MEMORY_CELL, inputs, {"km"}, {"h": rng.standard_normal((B, 4))})
    assert (grads["inputs"]["m"][inputs["km"] == 0] == 0).all()  # padding is never read


@pytest.mark.parametrize("causal", [False, True])
def test_attention_with_a_key_mask(causal):
    rng = np.random.default_rng(8)
    B, T = 3, 5
    km = steps_mask(rng, B, T)
    inputs = {"q": rng.standard_normal((B, T, 4)), "k": rng.standard_normal((B, T, 4)),
              "v": rng.standard_normal((B, T, 4)), "km": km}
    _, _, grads = check_all(attention_block(causal), inputs, {"km"})
    for name in ("k", "v"):  # a padding key is never attended to
        assert (grads["inputs"][name][km == 0] == 0).all()
    # the padded rows of the masked output are 0; its real rows equal attention over the real keys
    g = from_text(attention_block(causal))
    params = params_of(module(attention_block(causal), "numpy"), rng)
    out, _ = interpret.run(Graphs(g), "Attn", {}, params, inputs)
    for b in range(B):
        n = int(km[b].sum())
        one = {k: v[b:b + 1, :n] for k, v in inputs.items()}
        alone, _ = interpret.run(Graphs(g), "Attn", {}, params, one)
        np.testing.assert_allclose(out["y"][b, :n], alone["y"][0], rtol=0, atol=1e-12)
    ns32 = module(attention_block(causal), "numpy", "float32")  # the kernels keep the module's dtype
    o32, _, back32 = ns32["forward_grad"]({k: v.astype(np.float32) for k, v in params.items()},
                                          {k: v.astype(np.float32) for k, v in inputs.items()})
    assert o32["y"].dtype == np.float32
    np.testing.assert_allclose(o32["y"], out["y"], rtol=0, atol=1e-5)
    assert back32({"y": np.ones_like(o32["y"])})["inputs"]["q"].dtype == np.float32
