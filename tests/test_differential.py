"""Random well-typed programs (tests/programs.py) through every path, against the interpreter.

CI runs a bounded number of examples per kind (derandomized: the same programs every run);
`make fuzz` runs many more, drawn afresh: SEQDSL_FUZZ_EXAMPLES=N programs per kind (cells,
near-standard cells, models; blocks get N/4), split over SEQDSL_FUZZ_SHARDS tests so that
`pytest -n` spreads them over cores; programs of every kind also run on padded batches with
lengths (N/4), and programs that use dropout in training (N/8). A failure prints the spec text and
hypothesis's reproduction blob; the minimal spec it shrinks to becomes a regression test
in tests/test_regressions.py.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from differential import PASSES, check_all_paths
from hypothesis import HealthCheck, Phase, assume, given, note, settings
from hypothesis import strategies as st
from lengths_check import check_lengths
from programs import blocks, cells, models, near_standard
from training_check import check_training

import seqdsl
from seqdsl.errors import SpecError

torch = pytest.importorskip("torch")

N = int(os.environ.get("SEQDSL_FUZZ_EXAMPLES", "0"))  # examples per kind of program, over all shards
SHARDS = range(int(os.environ.get("SEQDSL_FUZZ_SHARDS", "1")))  # one test per shard, so xdist spreads them
N = N // len(SHARDS)
# no explain phase: its line tracer makes shrinking a failing program ten times slower; in CI
# (derandomized) no shrinking either: a failure reports the program as drawn, at once, and
# `make fuzz` (or the reproduction blob) shrinks it
FUZZ = settings(max_examples=N or 20, deadline=None, print_blob=True, suppress_health_check=list(HealthCheck),
                derandomize=not N,
                phases=[Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if N else []))


def _run(spec, data):
    note(spec.text)
    try:
        program = seqdsl.load(spec.text)
    except SpecError as e:
        if spec.colliding and "reserved" in e.message:
            return  # refusing a name the generated code uses is a clean outcome
        raise AssertionError(f"the generator made a spec that does not load:\n{spec.text}\n{e}") from None
    pass_off = data.draw(st.sampled_from((None,) + PASSES), label="pass_off")
    steps = data.draw(st.integers(1, 6), label="steps")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    check_all_paths(program, spec.name, seed=seed, steps=steps, pass_off=pass_off)


@pytest.mark.parametrize("shard", SHARDS)
@FUZZ
@given(cells(), st.data())
def test_random_cells(shard, spec, data):
    _run(spec, data)


@pytest.mark.parametrize("shard", SHARDS)
@FUZZ
@given(near_standard(), st.data())
def test_near_standard_cells(shard, spec, data):
    _run(spec, data)


@pytest.mark.parametrize("shard", SHARDS)
@FUZZ
@given(near_standard(), st.sampled_from(["numpy", "torch"]))
def test_random_decoders_step_as_they_learn(shard, spec, backend):
    """A near-standard cell (an LSTM step written out in one z among them, with mutations) as the
    decoder of a model that reads its previous word: begin() + step() with the true words give the
    teacher-forced logits (float64, 1e-10), on torch's step module of one step's values (the LSTM
    step fused into one kernel where it matches) and on NumPy's; a cell reading a state at t-2
    cannot step, and says so."""
    note(spec.text)
    i, h = (int(re.search(rf"{k} = (\d+)", spec.text).group(1)) for k in ("I", "H"))
    text = spec.text + (f"model M(V = 6, I = {i}, H = {h}) {{\n    dec = Near(I, H) over embed(word[t-1], V, I)\n"
                        "    out word ~ categorical(linear(dec.y, V))\n}\n")
    exe = seqdsl.compile(text, name="M", backend=backend, dtype="float64")
    exe.init_params(3)
    words = np.array([[2, 5, 3, 4], [4, 4, 2, 5]])
    want, _ = exe(word=words if backend == "numpy" else torch.as_tensor(words))
    if "[t-2]" in spec.text:
        with pytest.raises(SpecError, match="cannot generate step by step: the run 'dec' reads"):
            exe.begin(batch=2)
        return
    if backend == "torch" and spec.features == {"near_lstm_split", "mutations0"}:  # the step runs as one kernel
        exe.variants.namespace(False, False, "step")
        assert "torch._VF.lstm_cell(" in exe.variants.sources[(False, False, "step", ())][0]
    state, prev, got = exe.begin(batch=2), np.full(2, 1), []
    for t in range(words.shape[1]):
        out, state = exe.step(state, word=prev)
        got.append(np.asarray(out["word"].detach() if backend == "torch" else out["word"]))
        prev = words[:, t]
    want = np.asarray(want["word"].detach() if backend == "torch" else want["word"])
    np.testing.assert_allclose(np.stack(got, 1), want, atol=1e-10, rtol=0)


@pytest.mark.parametrize("shard", SHARDS)
@settings(FUZZ, max_examples=N or 10)
@given(models(), st.data())
def test_random_models(shard, spec, data):
    _run(spec, data)


@pytest.mark.parametrize("shard", SHARDS)
@settings(FUZZ, max_examples=max(N // 4, 5))
@given(blocks(), st.data())
def test_random_blocks(shard, spec, data):
    _run(spec, data)


def _run_lengths(spec, data):
    """A padded batch with lengths against each sequence alone (tests/lengths_check.py)."""
    note(spec.text)
    try:
        program = seqdsl.load(spec.text)
    except SpecError:
        return  # test_random_* report specs that do not load
    steps = data.draw(st.integers(1, 6), label="steps")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    check_lengths(program, spec.name, steps=steps, seed=seed)


@pytest.mark.parametrize("shard", SHARDS)
@settings(FUZZ, max_examples=max(N // 4, 10))
@given(st.one_of(cells(), near_standard(), models(), blocks()), st.data())
def test_random_programs_with_lengths(shard, spec, data):
    _run_lengths(spec, data)


@pytest.mark.parametrize("shard", SHARDS)
@settings(FUZZ, max_examples=max(N // 8, 5))
@given(st.one_of(cells(), models(), blocks()), st.data())
def test_random_programs_with_dropout_in_training(shard, spec, data):
    """Programs that draw dropout, in training: NumPy and torch given the same masks
    (tests/training_check.py)."""
    assume("dropout" in spec.features)
    note(spec.text)
    try:
        program = seqdsl.load(spec.text)
    except SpecError:
        return  # test_random_* report specs that do not load
    check_training(program, spec.name, steps=data.draw(st.integers(1, 5), label="steps"),
                   seed=data.draw(st.integers(0, 2**16), label="seed"))


def test_the_float32_bound_widens_only_where_float32_itself_strays():
    """The float32 comparison adds 4 times how far the interpreter run in float32 strays from its
    float64 run: next to nothing for the standard LSTM (the bound stays 5e-5), 3e-4 for a layernorm
    of a nearly constant vector (tests/test_regressions.py, float32_ill_conditioned_layernorm)."""
    from differential import _float32_slack
    from test_regressions import EXACT

    from seqdsl import interpret

    def slack(text, name, seed, steps):
        program = seqdsl.load(text)
        exe = seqdsl.compile(program, name=name, dtype="float64")
        exe.init_params(seed)
        inputs = exe.example_inputs(batch=2, steps=steps, seed=seed)
        outs, final = interpret.run(program, name, None, exe.params, inputs, None)
        return max(float(np.max(v)) for v in _float32_slack(program, name, exe.params, inputs, None,
                                                             {**outs, **final}).values())

    lstm = (Path(__file__).resolve().parent.parent / "specs" / "lstm.seq").read_text(encoding="utf-8")
    assert slack(lstm, "LSTM", 0, 20) < 5e-6
    assert slack(*EXACT["float32_ill_conditioned_layernorm"]) > 1e-4
