"""Property tests: whatever the input, loading ends in a Program or a SpecError."""

from __future__ import annotations

import functools
import random

from conftest import SPEC_FILES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seqdsl
from seqdsl.errors import SpecError

SPEC_TEXTS = [p.read_text(encoding="utf-8") for p in SPEC_FILES]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


def _load_ends_well(text) -> None:
    try:
        seqdsl.load(text)
    except SpecError as e:
        assert str(e)  # formats without failing
        assert e.line >= 0


@SETTINGS
@given(st.binary(max_size=400))
def test_random_bytes(data):
    try:
        seqdsl.load(data)
    except SpecError:
        pass


@SETTINGS
@given(st.sampled_from(SPEC_TEXTS), st.integers(0, 10**6), st.integers(0, 3),
       st.sampled_from(["", "(", ")", "[t-1]", "@", "+", "{", "}", "\n", "x", "H", "0", "-", ",", "over", "#"]))
def test_mutated_specs(text, pos, op, token):
    text = text.replace('use "lstm.seq"', "").replace('use "gru.seq"', "")
    i = pos % (len(text) + 1)
    if op == 0:
        text = text[:i] + token + text[i:]
    elif op == 1:
        text = text[:i] + text[i + len(token) + 1:]
    elif op == 2:
        j = random.Random(pos).randrange(len(text) + 1)
        text = text[:min(i, j)] + text[max(i, j):]
    else:
        text = text[:i] + token + text[i + 1:]
    _load_ends_well(text)


@functools.cache
def _grammar_strategy():
    """Built once: from_lark analyses the whole grammar (~0.3 s) each time it is made."""
    from hypothesis.extra.lark import from_lark

    from seqdsl.parse import parser

    return from_lark(parser(), start="start", explicit={
        "NAME": st.sampled_from(["x", "h", "W", "H", "I", "c", "y", "LSTM", "m", "tanh", "enc"]),
        "_NL": st.just("\n"), "STRING": st.just('"x.seq"'), "NUMBER": st.sampled_from(["0", "1", "2.5", "64"]),
        "INT": st.sampled_from(["1", "2"]), "COMMENT": st.just("# c"),
    })


@settings(SETTINGS, max_examples=60)  # from_lark draws slowly (half of the examples are invalid)
@given(st.data())
def test_grammar_generated(data):
    text = data.draw(_grammar_strategy())
    _load_ends_well(text)


def _mutate(text, pos, op, token):
    i = pos % (len(text) + 1)
    if op == 0:
        return text[:i] + token + text[i:]
    if op == 1:
        return text[:i] + text[i + len(token) + 1:]
    return text[:i] + token + text[i + 1:]


LSTM_TEXT = next(t for t in SPEC_TEXTS if "cell LSTM(" in t)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(SPEC_TEXTS), st.integers(0, 10**6), st.integers(0, 2),
       st.sampled_from(["", "(", ")", "[t-1]", "@", "+", "*", "-", "x", "h", "1", ",", "[last]", ".y", "tanh(",
                        "reversed", "2*"]))
def test_loaded_specs_render_compile_run_and_differentiate(text, pos, op, token):
    """After a successful load nothing may fail with anything but a SpecError."""
    import numpy as np

    from seqdsl.render import to_dot

    text = text.replace('use "lstm.seq"', LSTM_TEXT if "cell LSTM(" not in text else "")
    text = text.replace('use "gru.seq"', next(t for t in SPEC_TEXTS if "cell GRU(" in t))
    try:
        program = seqdsl.load(_mutate(text, pos, op, token))
    except SpecError:
        return
    name = list(program.definitions)[-1]
    try:
        for view in ("rolled", "unrolled"):
            to_dot(program, name, view, 3)
        exe = seqdsl.compile(program, name=name, dtype="float64")
        inputs = exe.example_inputs(batch=2, steps=3)
        out, _ = exe(**inputs)
        exe.value_and_grad(inputs, {k: np.ones_like(v) for k, v in out.items()})
    except SpecError:
        pass
