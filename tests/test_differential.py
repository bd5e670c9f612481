"""Random well-typed programs (tests/programs.py) through every path, against the interpreter.

CI runs a bounded number of examples per kind; `make fuzz` runs many more:
SEQDSL_FUZZ_EXAMPLES=N sets the number per test. A failure prints the spec text and
hypothesis's reproduction blob; the minimal spec it shrinks to becomes a regression test
in tests/test_regressions.py.
"""

from __future__ import annotations

import os

import pytest
from differential import PASSES, check_all_paths
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from programs import blocks, cells, models, near_standard

import seqdsl
from seqdsl.errors import SpecError

pytest.importorskip("torch")

N = int(os.environ.get("SEQDSL_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=N or 40, deadline=None, print_blob=True,
                suppress_health_check=list(HealthCheck), derandomize=not N)


def _run(spec, data):
    note(spec.text)
    try:
        seqdsl.load(spec.text)
    except SpecError as e:
        if spec.colliding and "reserved" in e.message:
            return  # refusing a name the generated code uses is a clean outcome
        raise AssertionError(f"the generator made a spec that does not load:\n{spec.text}\n{e}") from None
    pass_off = data.draw(st.sampled_from((None,) + PASSES), label="pass_off")
    steps = data.draw(st.integers(1, 6), label="steps")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    check_all_paths(spec.text, spec.name, seed=seed, steps=steps, pass_off=pass_off)


@FUZZ
@given(cells(), st.data())
def test_random_cells(spec, data):
    _run(spec, data)


@FUZZ
@given(near_standard(), st.data())
def test_near_standard_cells(spec, data):
    _run(spec, data)


@settings(FUZZ, max_examples=max(N // 2, 15))
@given(models(), st.data())
def test_random_models(spec, data):
    _run(spec, data)


@settings(FUZZ, max_examples=max(N // 4, 8))
@given(blocks(), st.data())
def test_random_blocks(spec, data):
    _run(spec, data)
