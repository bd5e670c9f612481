"""The IR: golden text for every spec, verify() invariants, JSON, structure of standard cells."""

from __future__ import annotations

import json

import networkx as nx
import pytest
from conftest import SPEC_FILES, golden

import seqdsl
from seqdsl.ir import IRError, to_json, to_text, verify
from seqdsl.ops import OPS, Op


@pytest.mark.parametrize("path", SPEC_FILES, ids=[p.stem for p in SPEC_FILES])
def test_golden_ir(path):
    program = seqdsl.load(path)
    text = "".join(to_text(d.graph) + "\n" for d in program.definitions.values() if d.file == str(path))
    golden(f"ir/{path.stem}.ir", text)


def test_ir_text_is_deterministic():
    a = to_text(seqdsl.load("specs/attention.seq").definitions["BahdanauDecoder"].graph)
    b = to_text(seqdsl.load("specs/attention.seq").definitions["BahdanauDecoder"].graph)
    assert a == b


def test_every_op_has_a_shape_rule():
    assert set(OPS) == set(Op)


def lstm():
    return seqdsl.load("specs/lstm.seq").main.graph


def test_lstm_structure():
    g = lstm()
    ops = [d["op"] for _, d in g.nodes(data=True)]
    assert ops.count(Op.MATMUL) == 8 and ops.count(Op.PARAM) == 16
    assert sorted(n for n, d in g.nodes(data=True) if d.get("state")) == ["c", "h"]
    delayed = sorted((u, v) for u, v, d in g.edges(data=True) if d["delay"])
    assert [u for u, _ in delayed] == ["c", "h", "h", "h", "h"]
    assert all(d["delay"] in (0, 1) for _, _, d in g.edges(data=True))


def test_two_step_delay_is_an_edge_attribute():
    g = seqdsl.load("specs/delay2.seq").main.graph
    assert sorted(d["delay"] for _, _, d in g.edges(data=True) if d["delay"]) == [1, 2]


def test_verify_catches_broken_invariants():
    g = lstm().copy()
    verify(g)
    g.add_edge("x", "_i1", port=5, delay=0)
    with pytest.raises(IRError, match="ports"):
        verify(g)
    g = lstm().copy()
    g.nodes["i"]["type"] = g.nodes["x"]["type"]
    with pytest.raises(IRError, match="its inputs give"):
        verify(g)
    g = lstm().copy()
    g.add_edge("i", "_f1", port=9, delay=1)
    with pytest.raises(IRError, match="does not start at a state"):
        verify(g)
    g = lstm().copy()
    for u, _v, _k, d in list(g.edges(keys=True, data=True)):
        if d["delay"] and u == "c":
            d["delay"] = 0
    with pytest.raises(IRError, match="cycle without delay"):
        verify(g)


def test_json_is_node_link():
    data = json.loads(to_json(lstm()))
    assert {n["id"] for n in data["nodes"]} >= {"x", "h", "c", "W_ii"}
    assert any(e["delay"] == 1 and e["source"] == "c" for e in data["edges"])


def test_models_have_calls_with_instances():
    g = seqdsl.load("specs/tasks.seq").definitions["Translate"].graph
    calls = {d["instance"]: d for _, d in g.nodes(data=True) if d["op"] == Op.CALL}
    assert set(calls) == {"enc", "dec"}
    ports = {d["port"] for _, _, d in g.in_edges(next(n for n, d in g.nodes(data=True)
                                                         if d.get("instance") == "dec"), data=True)}
    assert ports == {"x", "h", "c"}
    assert nx.is_directed_acyclic_graph(g)


def test_bidirectional_is_two_calls_concatenated():
    g = seqdsl.load("specs/stacked.seq").main.graph
    inst = sorted(d["instance"] for _, d in g.nodes(data=True) if d["op"] == Op.CALL)
    assert inst == ["back", "bi.bwd", "bi.fwd", "first", "layer0.x", "layer1.x"]
    out = next(d for _, d in g.nodes(data=True) if d["op"] == Op.OUTPUT)
    assert str(out["type"]) == "seq[5]"


def test_sizes_bind_and_stay_symbolic():
    d = seqdsl.load("specs/tasks.seq", sizes={"H": 7}).definitions["Sentiment"]
    assert str(d.graph.nodes["label.W"]["type"]) == "shared[2, 7]"
    sym = seqdsl.load("cell C(I, H) {\n    in x: [I]\n    param W: [4*H, I + H]\n    out y = x\n}\n")
    assert str(sym.main.graph.nodes["W"]["type"]) == "shared[4*H, H + I]"
    assert sym.main.param_count is None


def test_op_table_covers_every_op_and_answers_queries():
    from seqdsl.ops import OPS, Op, ops_where

    assert set(OPS) == set(Op)
    assert {i.kind for i in OPS.values()} <= {"leaf", "elementwise", "reduction", "structural", "model"}
    assert ops_where(kind="leaf") == {Op.INPUT, Op.MEMORY, Op.PARAM, Op.CONST, Op.POSITIONS}
    assert ops_where(view=True) == {Op.SLICE, Op.IDENTITY, Op.LAST}
    assert Op.LOG in ops_where(liftable=True) and Op.LOG not in ops_where(inplace=True)
    assert ops_where(inplace=True) <= ops_where(kind="elementwise")
    assert not ops_where(differentiable=True) & ops_where(kind="leaf")
    assert ops_where(fed=True) == {Op.INPUT, Op.MEMORY}


def test_temporaries_are_marked_and_spec_names_are_not():
    """A temporary says so in `temp=True`, whoever made it (lowering or a pass); a name from the
    spec never has it. Nothing needs to read the `_` its name starts with."""
    from seqdsl.passes import optimize
    from seqdsl.passes.fuse_multiply_add import fuse_multiply_add
    from seqdsl.passes.sigmoid_via_tanh import sigmoid_via_tanh

    for path in SPEC_FILES:
        for defn in seqdsl.load(path).definitions.values():
            g = defn.graph
            temps = {n for n, d in g.nodes(data=True) if d.get("temp")}
            assert temps == {n for n in g if n.startswith("_")}, (path, defn.name)
            assert all(g.nodes[n]["temp"] is True for n in temps)
    g = lstm()
    assert {"x", "h", "c", "i", "f", "g", "o", "W_ii", "b_ho"}.isdisjoint(n for n, d in g.nodes(data=True)
                                                                            if d.get("temp"))
    for spec in ("lstm.seq", "gru.seq", "peephole_lstm.seq"):
        g = seqdsl.load(f"specs/{spec}").main.graph
        for extra in ((fuse_multiply_add,), (sigmoid_via_tanh,)):
            opt = optimize(g, extra=extra)
            made = set(opt) - set(g)
            assert made and all(opt.nodes[n].get("temp") for n in made), (spec, extra)
            assert {n for n, d in opt.nodes(data=True) if d.get("temp")} == {n for n in opt if n.startswith("_")}
    assert "temp" not in to_text(opt) and "temp" in to_json(opt)


def test_verify_checks_temp_and_origin():
    g = lstm().copy()
    g.nodes["_i1"]["temp"] = "yes"
    with pytest.raises(IRError, match="temp=True"):
        verify(g)
    g = lstm().copy()
    g.nodes["i"]["temp"] = True  # a spec name: a temporary could take it
    with pytest.raises(IRError, match="does not start with '_'"):
        verify(g)
    g = lstm().copy()
    g.nodes["i"]["origin"] = "i"
    with pytest.raises(IRError, match="outside an unrolled graph"):
        verify(g)


def test_unroll_says_what_each_copy_is_of():
    """Each copy names the cell node it copies (`origin`) beside its step; a temporary stays one."""
    from seqdsl.passes import unroll

    g = lstm()
    u = unroll(g, 3)
    verify(u)
    for n, d in u.nodes(data=True):
        if "initial_of" in d:
            assert "origin" not in d and d["initial_of"] in ("h", "c") and d["step"] < 0
            continue
        o = d["origin"]
        assert o in g and d["op"] == g.nodes[o]["op"] and d.get("temp") == g.nodes[o].get("temp")
        assert n == (o if d["step"] is None else f"{o}@{d['step']}")
    assert u.nodes["i@2"]["origin"] == "i" and u.nodes["W_ii"]["origin"] == "W_ii"
    assert u.nodes["_i1@0"]["temp"] is True
