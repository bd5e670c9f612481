"""The NumPy memory plan: static buffers, hoisted views, and what must never be overwritten."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT

import seqdsl


def loop_of(src: str) -> str:
    start = src.index("    for t in")
    return src[start:src.index("\n    return", start)]


def test_lstm_loop_allocates_nothing_and_slices_nothing():
    src = seqdsl.compile(ROOT / "specs/lstm.seq").source
    fwd = src[src.index("def cell_LSTM__I_8__H_16("):src.index("def cell_LSTM__I_8__H_16__grad(")]
    loop = loop_of(fwd)
    assert "[..., " not in loop  # gate views are taken once, before the loop
    assert "np.empty" not in loop and "np.concatenate" not in loop
    assert fwd.count("__buf = np.empty") >= 2
    # every array operation in the step writes into an existing array (its last argument)
    calls = [line.strip() for line in loop.splitlines() if "= np." in line]
    assert len(calls) == 10 and all(c.endswith(")") and c.count(",") >= 1 for c in calls)
    assert "np.matmul(h__d1, _W_hi_W_hf_W_ho_W_hg_concat__T, _i_f_o_g_matmul_2__buf)" in loop
    assert "np.tanh(c, _h_tanh__buf)" in loop and "np.multiply(o, _h_tanh, h__d1)" in loop


def test_initial_states_are_not_mutated():
    exe = seqdsl.compile(ROOT / "specs/lstm.seq")
    inputs = exe.example_inputs(batch=2, steps=4)
    h0 = np.ones((2, 16), np.float32)
    c0 = np.full((2, 16), 0.5, np.float32)
    exe(**inputs, state={"h": h0, "c": c0})
    assert (h0 == 1).all() and (c0 == 0.5).all()


@pytest.mark.parametrize("spec", ["lstm", "gru", "peephole_lstm", "delay2"])
def test_results_survive_the_next_call(spec):
    exe = seqdsl.compile(ROOT / f"specs/{spec}.seq")
    first, final1 = exe(**exe.example_inputs(seed=1))
    keep = {k: v.copy() for k, v in first.items()}
    keepf = {k: v.copy() for k, v in final1.items()}
    exe(**exe.example_inputs(seed=2))
    for k in keep:
        np.testing.assert_array_equal(first[k], keep[k])
    for k in keepf:
        np.testing.assert_array_equal(final1[k], keepf[k])


def test_two_step_delay_buffers_rotate():
    """h[t-2] must still hold the value from two steps back after h is written in place."""
    exe = seqdsl.compile(ROOT / "specs/delay2.seq", dtype="float64")
    from seqdsl.interpret import run

    inputs = exe.example_inputs(batch=2, steps=9)
    h0 = np.random.default_rng(0).standard_normal((2, 16))
    want, _ = run(seqdsl.load(ROOT / "specs/delay2.seq"), "Delay2RNN", None, exe.params, inputs, {"h": h0})
    got, _ = exe(**inputs, state={"h": h0})
    np.testing.assert_allclose(got["y"], want["y"], atol=1e-12)
