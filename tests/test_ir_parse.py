"""The IR text parser (seqdsl.ir_parse): what reads back exactly, and errors at their line."""

from __future__ import annotations

import pytest
from conftest import SPECS

import seqdsl
from seqdsl.errors import SpecError
from seqdsl.ir import to_text
from seqdsl.ir_parse import MAX_TEXT, IRTextError, from_text, graphs_from_text
from seqdsl.ops import Op
from seqdsl.scalars import scalar_eval
from seqdsl.sizes import Size
from seqdsl.types import VType

SYMBOLIC = """
cell C(I, H, K) {
    in    x: [I]
    state h: [H] = 0.5
    param W: [H] ~ uniform((1 + 2) * 3 / -(1 - K))
    param V: [2*H, I + H] ~ normal(1.5e-3 - -0.5 + 1/(2*3)/4)
    param U: [H, H] ~ uniform(1/sqrt(H))
    h = tanh(W + U @ h[t-1])
    out y = h
}
"""


def attrs(d, exact=True) -> dict:
    """A node's attributes but its span and decl (not printed past the line); with exact=False,
    an initializer by its value (a concrete size in it reads back as a number)."""
    out = {k: v for k, v in d.items() if k not in ("span", "decl")}
    if not exact and isinstance(out.get("init"), tuple):
        out["init"] = (out["init"][0], scalar_eval(out["init"][1]))
    return out


def edges(g):
    return sorted((u, v, str(d["port"]), d["delay"]) for u, v, d in g.edges(data=True))


def test_symbolic_graph_reads_back_exactly():
    g = seqdsl.load(SYMBOLIC).main.graph
    back = from_text(to_text(g), file="c.ir")
    assert back.graph["sizes"] == g.graph["sizes"] == {"I": Size.name("I"), "H": Size.name("H"), "K": Size.name("K")}
    assert list(back.nodes) == [line.split(":")[0].strip() for line in to_text(g).splitlines()[1:]]
    for n, d in g.nodes(data=True):
        assert attrs(back.nodes[n]) == attrs(d), n
        assert back.nodes[n]["span"].line == d["span"].line
    assert edges(back) == edges(g)
    assert back.nodes["W"]["init"] == ("uniform", ("bin", "/", ("bin", "*", ("bin", "+", ("num", 1.0), ("num", 2.0)),
                                                               ("num", 3.0)),
                                                   ("neg", ("bin", "-", ("num", 1.0), ("size", Size.name("K"))))))
    assert back.nodes["U"]["init"] == ("uniform", ("bin", "/", ("num", 1.0), ("sqrt", ("size", Size.name("H")))))
    assert back.nodes["V"]["type"] == VType((Size.name("H") * Size.const(2), Size.name("H") + Size.name("I")),
                                            False, "float", False)
    assert back.nodes["h"]["init"] == 0.5 and back.nodes["h"]["state"] is True


def test_initializer_text_keeps_its_parentheses():
    text = to_text(seqdsl.load(SYMBOLIC, sizes={"I": 3, "H": 4, "K": 3}).main.graph)
    assert "uniform((1 + 2) * 3/-(1 - 3))" in text  # not 1 + 2 * 3/-1 - 3 (a bound >= 0: -(1 - 3) = 2)
    g = seqdsl.load(SYMBOLIC, sizes={"I": 3, "H": 4, "K": 3}).main.graph
    back = from_text(text)
    for n in ("W", "V", "U"):  # a concrete size reads back as a number: the same value and text
        assert scalar_eval(back.nodes[n]["init"][1]) == scalar_eval(g.nodes[n]["init"][1])
    assert to_text(back) == text


def test_models_ports_types_and_flags():
    p = seqdsl.load(SPECS / "attention.seq")
    for name in ("AttnTranslate", "BahdanauDecoder"):
        g = p.definitions[name].graph
        back = from_text(to_text(g))
        assert edges(back) == edges(g)
        for n, d in g.nodes(data=True):
            assert attrs(back.nodes[n], exact=False) == attrs(d, exact=False), n
    g = seqdsl.load(SPECS / "transformer.seq")
    for d in g.definitions.values():
        back = from_text(to_text(d.graph))
        att = [x for x, a in back.nodes(data=True) if a["op"] == Op.ATTENTION]
        for n in att:
            assert back.nodes[n]["heads"] == d.graph.nodes[n]["heads"]
            assert back.nodes[n]["causal"] is d.graph.nodes[n]["causal"]


def test_several_definitions_and_comments():
    text = (SPECS.parent / "tests" / "golden" / "ir" / "tasks.ir").read_text(encoding="utf-8")
    graphs = graphs_from_text("# a comment\n\n" + text)
    assert [g.graph["name"] for g in graphs] == ["Sentiment", "CharLM", "Caption", "Translate"]
    with pytest.raises(IRTextError, match="expected one IR definition, found 4"):
        from_text(text)


RNN = (SPECS.parent / "tests" / "golden" / "ir" / "rnn.ir").read_text(encoding="utf-8")


@pytest.mark.parametrize("old,new,line,message", [
    ("tanh(_h5)", "tahn(_h5)", 12, "unknown op 'tahn'"),
    ("matmul(W_ih, x)", "matmul(W_ih, y)", 7, "no node named 'y'"),
    ("_h5: [16]", "_h5: [1x6]", 11, "cannot read the size '1x6'"),
    ("_h1: [16]", "_h1: [8]", 7, r"has type \[8\], its inputs give \[16\]"),
    ("h[t-1]", "h", 10, "cycle without delay"),
    ("matmul(W_ih, x)", "matmul(W_ih, x[t-1])", 7, "does not start at a state"),
    ("uniform(1/sqrt(16))", "uniform(1/sqrt(16)", 3, "unbalanced"),
    ("uniform(1/sqrt(16))", "uniform(" + "(" * 200 + "1" + ")" * 200 + ")", 3, "nested more than"),
    ("tanh(_h5)", "slice(_h5)", 12, "lacks start, stop"),
    ("output=y)", "output=y, reverse=maybe)", 13, "expected true or false"),
    ("out_y: [16]", "out_y [16]", 13, "cannot read this node line"),
    ("cell RNN(I=8, H=16)", "cell RNN(I=8, H=16", 1, "expected a header"),
    ("  b_hh:", "  x:", 6, "defined twice"),
])
def test_malformed_text_is_reported_at_its_line(old, new, line, message):
    assert old in RNN
    with pytest.raises(IRTextError, match=message) as e:
        from_text(RNN.replace(old, new, 1), file="rnn.ir")
    assert isinstance(e.value, SpecError) and isinstance(e.value, ValueError)
    assert e.value.line == line and str(e.value).startswith(f"rnn.ir:{line}:")


def test_input_is_capped():
    with pytest.raises(IRTextError, match="over the limit"):
        from_text("x" * (MAX_TEXT + 1))
    with pytest.raises(IRTextError, match="no IR definition"):
        from_text("\n# only a comment\n")
