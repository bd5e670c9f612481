"""Property tests: whatever the input, loading ends in a Program or a SpecError."""

from __future__ import annotations

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


def _grammar_strategy():
    from hypothesis.extra.lark import from_lark

    from seqdsl.parse import parser

    return from_lark(parser(), start="start", explicit={
        "NAME": st.sampled_from(["x", "h", "W", "H", "I", "c", "y", "LSTM", "m", "tanh", "enc"]),
        "_NL": st.just("\n"), "STRING": st.just('"x.seq"'), "NUMBER": st.sampled_from(["0", "1", "2.5", "64"]),
        "INT": st.sampled_from(["1", "2"]), "COMMENT": st.just("# c"),
    })


@SETTINGS
@given(st.data())
def test_grammar_generated(data):
    text = data.draw(_grammar_strategy())
    _load_ends_well(text)
