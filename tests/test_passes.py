"""Each pass on its own: what it rewrites, what it must leave alone, and that the IR stays valid."""

from __future__ import annotations

from conftest import ROOT

import seqdsl
from seqdsl.analysis.recognize import recognize
from seqdsl.ir import in_edges, to_text, verify
from seqdsl.ops import Op
from seqdsl.passes import fuse_matmuls, hoist, lift_slices, optimize, reassociate
from seqdsl.passes.fuse_multiply_add import fuse_multiply_add
from seqdsl.passes.hoist import classify
from seqdsl.passes.sigmoid_via_tanh import sigmoid_via_tanh


def graph(spec, name=None):
    p = seqdsl.load(ROOT / "specs" / spec)
    return (p.definitions[name] if name else p.main).graph


def ops(g):
    return [d["op"] for _, d in g.nodes(data=True)]


def test_reassociate_moves_biases_out_of_the_step():
    g = reassociate(graph("rnn.seq"))
    verify(g)
    where = classify(g)
    step_adds = [n for n in g if g.nodes[n]["op"] == Op.ADD and where[n] == "step"]
    assert len(step_adds) == 1  # (W_ih x + b_ih + b_hh) + W_hh h[t-1]
    (root,) = step_adds
    kinds = sorted(where[u] for u, _, _ in in_edges(g, root))
    assert kinds == ["step", "time"]


def test_reassociate_leaves_named_sums_and_blocks_alone():
    g = graph("transformer.seq", "SelfAttention")
    assert to_text(reassociate(g)) == to_text(g)


def test_fuse_matmuls_orders_rows_by_activation():
    g = fuse_matmuls(graph("lstm.seq"))
    verify(g)
    fused = [n for n in g if g.nodes[n]["op"] == Op.CONCAT and g.nodes[n].get("axis") == 0]
    assert len(fused) == 2
    members = [[u for u, _, _ in in_edges(g, f)] for f in fused]
    assert members == [["W_ii", "W_if", "W_io", "W_ig"], ["W_hi", "W_hf", "W_ho", "W_hg"]]
    assert ops(g).count(Op.MATMUL) == 2


def test_fuse_keeps_different_operands_apart():
    g = fuse_matmuls(graph("delay2.seq"))  # U1 @ h[t-1] and U2 @ h[t-2]: same node, other delays
    assert ops(g).count(Op.MATMUL) == 3


def test_lift_slices_makes_one_gate_activation():
    g = lift_slices(fuse_matmuls(reassociate(graph("lstm.seq"))))
    verify(g)
    (act,) = [n for n in g if g.nodes[n]["op"] == Op.SIGTANH]
    assert g.nodes[act]["split"].value == 48
    assert ops(g).count(Op.SIGMOID) == 0 and ops(g).count(Op.TANH) == 1  # tanh(c) stays
    assert {g.nodes[n]["start"].value for n in ("i", "f", "o", "g")} == {0, 16, 32, 48}


def test_lift_slices_partial_for_gru():
    g = lift_slices(fuse_matmuls(reassociate(graph("gru.seq"))))
    verify(g)
    sig = [n for n in g if g.nodes[n]["op"] == Op.SIGMOID]
    assert len(sig) == 1 and g.nodes[sig[0]]["type"].dims[0].value == 32  # r and z together


def test_hoist_classes():
    g = hoist(graph("attention.seq", "BahdanauDecoder"))
    where = {n: d["hoist"] for n, d in g.nodes(data=True)}
    assert where["W_q"] == "once" and where["m"] == "once"
    assert where["x"] == "time"
    k_proj = next(n for n in g if g.nodes[n]["op"] == Op.MATMUL and in_edges(g, n)[0][0] == "W_k")
    assert where[k_proj] == "once"  # W_k @ m does not change over the steps
    assert where["a"] == "step" and where["h"] == "step"


def test_fuse_multiply_add():
    g = fuse_multiply_add(lift_slices(fuse_matmuls(reassociate(graph("peephole_lstm.seq")))))
    verify(g)
    assert ops(g).count(Op.ADDCMUL) >= 3  # the three peepholes
    # the recurrent matmul plus the hoisted projection, and the projection plus its bias (F.linear)
    assert ops(g).count(Op.ADDMM) == 2
    bias = [n for n in g if g.nodes[n]["op"] == Op.ADDMM and not g.nodes[in_edges(g, n)[0][0]]["type"].batched]
    assert len(bias) == 1 and not g.nodes[bias[0]]["type"].seq


def test_sigmoid_via_tanh_folds_the_half_into_weights():
    g = sigmoid_via_tanh(lift_slices(fuse_matmuls(reassociate(graph("lstm.seq")))))
    verify(g)
    assert Op.SIGTANH not in ops(g) and Op.SIGMOID not in ops(g)
    halved = sorted(n for n in g if n.endswith("_half") and g.nodes[n]["op"] == Op.MUL)
    weights = [f"_{w}_half" for w in ("W_ii", "W_if", "W_io", "W_hi", "W_hf", "W_ho")]
    assert set(weights) <= set(halved) and len(halved) == 9  # + the three gates' bias sums b_i* + b_h*
    assert not any(f"_W_{w}_half" in halved for w in ("ig", "hg"))  # the tanh gate keeps its scale


def test_sigmoid_via_tanh_leaves_unfoldable_sigmoids():
    g = sigmoid_via_tanh(graph("attention.seq", "LuongDecoder"))
    assert to_text(g) == to_text(graph("attention.seq", "LuongDecoder"))


def test_optimize_runs_backend_passes_before_hoist():
    g = optimize(graph("peephole_lstm.seq"), extra=(fuse_multiply_add,))
    assert all("hoist" in d for _, d in g.nodes(data=True))


def _lstm_variant(old, new):
    return seqdsl.load((ROOT / "specs/lstm.seq").read_text().replace(old, new)).main.graph


def test_recognize_standard_cells_and_variants():
    assert recognize(graph("rnn.seq")).kind == "rnn_tanh"
    assert recognize(graph("gru.seq")).kind == "gru"
    std = recognize(graph("lstm.seq"))
    assert std.kind == "lstm" and std.w_ih == ["W_ii", "W_if", "W_ig", "W_io"]
    swapped = _lstm_variant("c = f * c[t-1] + i * g", "c = g * i + c[t-1] * f")
    assert recognize(swapped).kind == "lstm"


def test_recognize_rejects_near_misses():
    assert recognize(graph("peephole_lstm.seq")) is None
    assert recognize(graph("delay2.seq")) is None
    assert recognize(_lstm_variant("h = o * tanh(c)", "h = o * sigmoid(c)")) is None
    assert recognize(_lstm_variant("state c: [H] = zeros", "state c: [H] = ones")) is None
    assert recognize(_lstm_variant("out y = h", "out y = h\n    out z = c")) is None
    assert recognize(graph("transformer.seq", "SelfAttention")) is None


def test_fuse_lstm_step_keeps_the_values():
    """The torch step module's LSTM fusion: the cell with its lstm_cell node means what it meant
    (the reference interpreter, which runs the node with the NumPy kernel), and torch's kernel
    computes that kernel's value (float64)."""
    import numpy as np
    import pytest

    from seqdsl.interpret import run_cell
    from seqdsl.kernels.numpy_kernels import _lstm_cell
    from seqdsl.passes.fuse_lstm_step import fuse_lstm_step

    torch = pytest.importorskip("torch")
    g = graph("attention.seq", "BahdanauDecoder")
    fused = fuse_lstm_step(g)
    verify(fused)
    assert ops(fused).count(Op.LSTM_CELL) == 1 and Op.SIGMOID not in ops(fused)
    rng = np.random.default_rng(0)
    params = {n: rng.normal(size=d["type"].concrete_dims()) * 0.3 for n, d in g.nodes(data=True) if d["op"] == Op.PARAM}
    xs = {"x": rng.normal(size=(3, 4, 32))}
    memory = {"m": rng.normal(size=(3, 5, 64))}
    init = {"h": rng.normal(size=(3, 64)), "c": rng.normal(size=(3, 64))}
    want, got = run_cell(g, params, xs, init, memory), run_cell(fused, params, xs, init, memory)
    for a, b in zip(want, got):
        for k in a:
            np.testing.assert_allclose(np.asarray(b[k]), np.asarray(a[k]), atol=1e-12, rtol=0)
    x, h, c = rng.normal(size=(3, 5)), rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    w_ih, w_hh, b = rng.normal(size=(8, 5)), rng.normal(size=(8, 2)), rng.normal(size=(8,))
    t = torch.as_tensor
    th, tc = torch._VF.lstm_cell(t(x), (t(h), t(c)), t(w_ih), t(w_hh), t(b), None)
    np.testing.assert_allclose(_lstm_cell(x, h, c, w_ih, w_hh, b), torch.cat([th, tc], -1).numpy(), atol=1e-12)
