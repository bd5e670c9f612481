"""Passes must be right for every reader of what they rewrite (regressions for silent miscompiles).

Each case is a small valid spec that once compiled to wrong values or crashed: a weight that a
sigmoid's halving also changed for another reader, a sigmoid that is a state, a standard cell
that was only almost standard, a number as torch.addcmul's operand, a state slice dropped by
lift_slices, a scalar partial sum typed as a vector, a dead run losing its final state. Every
case is checked end to end in float64 against the reference interpreter: NumPy inference,
NumPy gradients against torch autograd, and torch with and without fused kernels.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT

import seqdsl
from seqdsl.analysis.recognize import recognize
from seqdsl.interpret import run
from seqdsl.ops import Op
from seqdsl.passes import fuse_matmuls, lift_slices, optimize, reassociate
from seqdsl.passes.sigmoid_via_tanh import sigmoid_via_tanh

torch = pytest.importorskip("torch")

ATOL = 1e-10


def _close(got, want, what):
    np.testing.assert_allclose(got, want, rtol=0, atol=ATOL, err_msg=what)


def _check(src, fused_kernel=False):
    """NumPy and torch (fused and not) against the interpreter; NumPy gradients against autograd.
    `fused_kernel`: whether the fused torch module must call a vendor kernel."""
    exe = seqdsl.compile(src, dtype="float64")
    exe.init_params(5)
    inputs = exe.example_inputs(batch=2, steps=5, seed=1)
    want, want_final = run(seqdsl.load(src), exe.name, None, exe.params, inputs)
    got, final = exe(**inputs)
    assert set(got) == set(want) and set(final) == set(want_final)
    for k in want:
        _close(got[k], want[k], f"numpy output {k}")
    for k in want_final:
        _close(final[k], want_final[k], f"numpy final {k}")
    rng = np.random.default_rng(2)
    cot = {k: rng.standard_normal(v.shape) for k, v in want.items()}
    fcot = {k: rng.standard_normal(v.shape) for k, v in want_final.items()}
    _, _, grads = exe.value_and_grad(inputs, cot, fcot)
    for fused in (True, False):
        mod = seqdsl.compile(src, backend="torch", dtype="float64", fused=fused)
        assert ("torch._VF." in mod.source) == (fused and fused_kernel)
        with torch.no_grad():
            for k, p in mod.params.items():
                p.copy_(torch.from_numpy(exe.params[k]))
        tin = {k: torch.from_numpy(v).requires_grad_(v.dtype.kind == "f") for k, v in inputs.items()}
        out, fin = mod(**tin)
        assert set(out) == set(want) and set(fin) == set(want_final)
        for k in want:
            _close(out[k].detach().numpy(), want[k], f"torch fused={fused} output {k}")
        for k in want_final:
            _close(fin[k].detach().numpy(), want_final[k], f"torch fused={fused} final {k}")
        loss = sum((out[k] * torch.from_numpy(cot[k])).sum() for k in out) + \
            sum((fin[k] * torch.from_numpy(fcot[k])).sum() for k in fin)
        loss.backward()
        for k, p in mod.params.items():
            ref = p.grad.numpy() if p.grad is not None else np.zeros(tuple(p.shape))
            np.testing.assert_allclose(grads["params"][k], ref, rtol=1e-9, atol=ATOL, err_msg=f"fused={fused} d{k}")
        for k, t in tin.items():
            if t.requires_grad:
                np.testing.assert_allclose(grads["inputs"][k], t.grad.numpy(), rtol=1e-9, atol=ATOL,
                                           err_msg=f"fused={fused} d{k}")


def _cell(body, sizes="I = 4, H = 4", params=""):
    return (f"cell C({sizes}) {{\n    in    x: [I]\n    state h: [H] = zeros\n{params}"
            + "".join(f"    {line}\n" for line in body.strip().splitlines()) + "}\n")


def _numpy_graph(src):
    g = seqdsl.load(src).main.graph
    return optimize(g, extra=(sigmoid_via_tanh,))


# ---- 1. sigmoid_via_tanh halves only what the sigmoid alone reads -------------------------

HALVE = {
    # the same W under a sigmoid (W @ h[t-1]) and under a tanh (W @ x)
    "shared_weight": _cell("""
        param W: [H, H]
        param b: [H]
        z = sigmoid(W @ h[t-1] + b)
        h = tanh(W @ x) * z
        out y = h"""),
    # the same bias in both
    "shared_bias": _cell("""
        param W: [H, I]
        param U: [H, H]
        param b: [H]
        z = sigmoid(U @ h[t-1] + b)
        h = tanh(W @ x + b) * z
        out y = h"""),
    # a sum under the sigmoid that is also an output and read by a tanh
    "exposed_sum": _cell("""
        param W: [H, I]
        param U: [H, H]
        param b: [H]
        a = W @ x + U @ h[t-1] + b
        h = sigmoid(a) * tanh(a)
        out y = h
        out pre = a"""),
    # an LSTM whose tanh gate reuses the input gate's weights (one fused concat reads W_ii twice)
    # and that exposes a gate and its memory
    "lstm_shared_rows": (ROOT / "specs/lstm.seq").read_text()
    .replace("g = tanh(W_ig @ x + b_ig", "g = tanh(W_ii @ x + b_ii")
    .replace("out y = h", "out y = h\n    out gate = i\n    out mem = c"),
}


@pytest.mark.parametrize("name", HALVE)
def test_sigmoid_halving_leaves_other_readers_alone(name):
    _check(HALVE[name])


def test_sigmoid_halving_still_folds_through_a_copy():
    g = _numpy_graph(HALVE["shared_weight"])
    assert not [n for n in g if g.nodes[n]["op"] == Op.SIGMOID]  # folded, into a halved copy of W
    (w_half,) = [v for v in g.successors("W") if g.nodes[v]["op"] == Op.MUL]
    assert {g.nodes[v]["op"] for v in g.successors("W")} == {Op.MUL, Op.MATMUL}  # W @ x reads W itself
    assert g.nodes[w_half]["hoist"] == "once"


# ---- 2. a state (or an output) that is a sigmoid ---------------------------------------------

SIGMOID_STATE = {
    "plain": _cell("""
        param W: [H, I]
        param U: [H, H]
        h = sigmoid(W @ x + U @ h[t-1])
        out y = h"""),
    "bias_and_two_outputs": _cell("""
        param W: [H, I]
        param U: [H, H]
        param b: [H]
        h = sigmoid(W @ x + U @ h[t-1] + b)
        out y = h
        out z = h * 2"""),
    "two_steps_back": _cell("""
        param W: [H, I]
        param U1, U2: [H, H]
        h = sigmoid(W @ x + U1 @ h[t-1] + U2 @ h[t-2])
        out y = h"""),
}


@pytest.mark.parametrize("name", SIGMOID_STATE)
def test_sigmoid_state(name):
    g = _numpy_graph(SIGMOID_STATE[name])
    assert g.nodes["h"].get("state") and not [n for n in g if g.nodes[n]["op"] == Op.SIGMOID]
    _check(SIGMOID_STATE[name])


# ---- 3. recognize proves the whole cell is the standard one ---------------------------------

RNN = (ROOT / "specs/rnn.seq").read_text()
LSTM = (ROOT / "specs/lstm.seq").read_text()
GRU = (ROOT / "specs/gru.seq").read_text()


def _edit(text, *pairs):
    for old, new in zip(pairs[::2], pairs[1::2]):
        assert old in text, old
        text = text.replace(old, new)
    return text


NEAR_MISSES = {
    # one term added
    "rnn_extra_bias": _edit(RNN, "+ b_hh)", "+ b_hh + b_ih)"),
    "rnn_second_input_matmul": _edit(RNN, "W_ih @ x + b_ih", "W_ih @ x + W_ih @ x"),
    "gru_extra_candidate_bias": _edit(GRU, "b_in + r", "b_in + b_x + r",
                                      "param b_hr", "param b_x: [H]\n    param b_hr"),
    "gru_extra_reset_bias": _edit(GRU, "r * (W_hn @ h[t-1] + b_hn)", "r * (W_hn @ h[t-1] + b_hn + b_hr)"),
    "gru_extra_candidate_matmul": _edit(GRU, "W_in @ x + b_in", "W_in @ x + W_iz @ x + b_in"),
    "gru_extra_candidate_product": _edit(GRU, "b_in + r *", "r * b_in + r *"),
    "lstm_extra_bias": _edit(LSTM, "+ b_hi)", "+ b_hi + b_ii)"),
    "lstm_peephole": (ROOT / "specs/peephole_lstm.seq").read_text(),
    # one term removed
    "rnn_no_recurrence": _edit(RNN, " + W_hh @ h[t-1]", ""),
    "gru_no_reset": _edit(GRU, "r * (W_hn @ h[t-1] + b_hn)", "(W_hn @ h[t-1] + b_hn)"),
    "lstm_no_forget": _edit(LSTM, "c = f * c[t-1] + i * g", "c = c[t-1] + i * g"),
    "lstm_no_output_gate": _edit(LSTM, "h = o * tanh(c)", "h = tanh(c)"),
    # two swapped
    "rnn_sigmoid": _edit(RNN, "h = tanh(", "h = sigmoid("),
    "gru_update_swapped": _edit(GRU, "h = (1 - z) * n + z * h[t-1]", "h = z * n + (1 - z) * h[t-1]"),
    "gru_reset_tanh": _edit(GRU, "r = sigmoid(", "r = tanh("),
    "gru_candidate_sigmoid": _edit(GRU, "n = tanh(", "n = sigmoid("),
    "gru_update_in_candidate": _edit(GRU, "r * (W_hn", "z * (W_hn"),
    "lstm_forget_tanh": _edit(LSTM, "f = sigmoid(", "f = tanh("),
    "lstm_forget_reads_h": _edit(LSTM, "c = f * c[t-1]", "c = f * h[t-1]"),
    "lstm_memory_sigmoid": _edit(LSTM, "h = o * tanh(c)", "h = o * sigmoid(c)"),
    # extra outputs the kernel cannot give
    "rnn_output_of_last_step": _edit(RNN, "out y = h", "out y = h\n    out z = h[t-1]"),
    "gru_gate_output": _edit(GRU, "out y = h", "out y = h\n    out gate = z"),
    "lstm_memory_output": _edit(LSTM, "out y = h", "out y = h\n    out z = c"),
    # delay 2
    "rnn_delay2": _edit(RNN, "h[t-1]", "h[t-2]"),
    "gru_delay2": _edit(GRU, "z * h[t-1]", "z * h[t-2]"),
    "lstm_delay2": _edit(LSTM, "W_hf @ h[t-1]", "W_hf @ h[t-2]"),
    "lstm_memory_delayed": _edit(LSTM, "h = o * tanh(c)", "h = o * tanh(c[t-1])"),
    # non-zero initial state
    "rnn_init": _edit(RNN, "= zeros", "= ones"),
    "gru_init": _edit(GRU, "= zeros", "= ones"),
    "lstm_init": _edit(LSTM, "state c: [H] = zeros", "state c: [H] = ones"),
}

# still exactly the standard cell: only names, the order of terms and factors, or an absent
# bias differ. The packing follows the structure, not the names.
STANDARD = {
    "rnn": (RNN, "rnn_tanh", ["W_ih"], ["W_hh"]),
    "lstm": (LSTM, "lstm", ["W_ii", "W_if", "W_ig", "W_io"], ["W_hi", "W_hf", "W_hg", "W_ho"]),
    "gru": (GRU, "gru", ["W_ir", "W_iz", "W_in"], ["W_hr", "W_hz", "W_hn"]),
    "rnn_relu_one_bias": (_edit(RNN, "h = tanh(", "h = relu(", " + b_ih", ""), "rnn_relu", ["W_ih"], ["W_hh"]),
    "gru_reordered": (_edit(GRU, "h = (1 - z) * n + z * h[t-1]", "h = h[t-1] * z + n * (1 - z)",
                            "r * (W_hn @ h[t-1] + b_hn)", "(W_hn @ h[t-1]) * r"),
                      "gru", ["W_ir", "W_iz", "W_in"], ["W_hr", "W_hz", "W_hn"]),
    "gru_W_hr_W_hz_swapped": (_edit(GRU, "W_hr @ h[t-1] + b_hr", "W_hQ @ h[t-1] + b_hr",
                                    "W_hz @ h[t-1] + b_hz", "W_hr @ h[t-1] + b_hz", "W_hQ", "W_hz"),
                              "gru", ["W_ir", "W_iz", "W_in"], ["W_hz", "W_hr", "W_hn"]),
    "lstm_i_g_activations_swapped": (_edit(LSTM, "i = sigmoid(", "i = tanh(", "g = tanh(", "g = sigmoid("),
                                     "lstm", ["W_ig", "W_if", "W_ii", "W_io"], ["W_hg", "W_hf", "W_hi", "W_ho"]),
}


def test_recognize_rejects_near_misses():
    for name, src in NEAR_MISSES.items():
        assert recognize(seqdsl.load(src).main.graph) is None, name


def test_recognize_accepts_exactly_standard_cells():
    for name, (src, kind, w_ih, w_hh) in STANDARD.items():
        std = recognize(seqdsl.load(src).main.graph)
        assert std is not None and (std.kind, std.w_ih, std.w_hh) == (kind, w_ih, w_hh), name
    for spec in ("rnn", "lstm", "gru"):
        assert recognize(seqdsl.load(ROOT / f"specs/{spec}.seq").main.graph) is not None


@pytest.mark.parametrize("name", ["gru_extra_candidate_bias", "gru_extra_reset_bias", "rnn_output_of_last_step",
                                  "lstm_delay2", "gru_init"])
def test_near_miss_runs_the_loop(name):
    _check(NEAR_MISSES[name], fused_kernel=False)


@pytest.mark.parametrize("name", ["rnn_relu_one_bias", "gru_reordered", "gru_W_hr_W_hz_swapped",
                                  "lstm_i_g_activations_swapped"])
def test_standard_variant_runs_the_kernel(name):
    _check(STANDARD[name][0], fused_kernel=True)


# ---- 4. fuse_multiply_add never hands torch.addcmul a number ---------------------------------

FMA = {
    "const_first": _cell("""
        param W: [H, I]
        h = tanh(W @ x + 0.5 * h[t-1])
        out y = h"""),
    "const_second": _cell("""
        param W: [H, I]
        h = tanh(W @ x + h[t-1] * 2)
        out y = h"""),
    "const_of_consts": _cell("""
        param W: [H, I]
        param p: [H]
        h = tanh(W @ x + (0.5 * 3) * h[t-1] + p * h[t-1])
        out y = h"""),
    # a per-sample scalar factor: shape (B,) would broadcast against the features
    "per_sample_scalar": _cell("""
        param W: [H, I]
        param q: [H]
        h = tanh(W @ x + (q @ h[t-1]) * h[t-1])
        out y = h"""),
}


@pytest.mark.parametrize("name", FMA)
def test_multiply_add_with_a_number(name):
    _check(FMA[name])


# ---- 5. the shared passes: states, delayed reads, outputs, several readers --------------------

SHARED = {
    # reassociate: two scalar constants summed before the loop are a scalar, not an [H]
    "reassociate_scalar_terms": _cell("""
        param W: [H, I]
        param U: [H, H]
        param v: [I]
        param b: [H]
        h = tanh(0.5 + W @ x + (v @ x) + U @ h[t-1] + b + 0.25)
        out y = h"""),
    # fuse_matmuls makes state a a slice of one matmul; lift_slices must not merge a's delayed
    # sigmoid (of t-1) with the tanh of this step into one sigtanh, nor drop the state
    "lift_state_slice_read_delayed": _cell("""
        param W1, W2: [H, H]
        param V: [H, I]
        a = W1 @ h[t-1]
        h = tanh(W2 @ h[t-1]) * sigmoid(a[t-1]) + V @ x
        out y = h""", params="    state a: [H] = zeros\n"),
    # a gate read both as an activation input and as an output, sums with several readers
    "lift_exposed_slices": _cell("""
        param W_a, W_b: [H, H]
        param V: [H, I]
        a = W_a @ h[t-1]
        b = W_b @ h[t-1]
        h = tanh(a) * sigmoid(b) + V @ x
        out y = h
        out pa = a"""),
    # lift_slices prunes only what it left unread: a run whose results are unused keeps its
    # final state and parameters
    "dead_run_in_model": RNN + """
model M(V = 10, E = 8, H = 16) {
    in  words: seq<int>
    a = RNN(E, H) over embed(words, V, E)
    b = RNN(E, H) over embed(words, V, E)
    out y = a.y
}
""",
}


@pytest.mark.parametrize("name", SHARED)
def test_shared_passes_keep_every_reader(name):
    _check(SHARED[name], fused_kernel=name == "dead_run_in_model")  # its cell is rnn.seq


def test_lift_keeps_a_state_slice():
    g = lift_slices(fuse_matmuls(reassociate(seqdsl.load(SHARED["lift_state_slice_read_delayed"]).main.graph)))
    assert g.nodes["a"].get("state") and not [n for n in g if g.nodes[n]["op"] == Op.SIGTANH]
