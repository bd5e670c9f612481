"""The unrolled views draw the IR's own unrolling (passes/unroll, read by seqdsl.render_steps):
which state values reach which step (delays >= 2, initial states s_0, s_-1), per-step inputs and
outputs, in a cell's view and inside a model's runs; and every view of every spec is one that
graphviz draws without a warning."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess

import networkx as nx
import pytest
from conftest import ROOT, all_definitions
from test_render import edges, nodes

import seqdsl
from seqdsl.ops import Op
from seqdsl.render import COLORS, to_dot
from seqdsl.render_steps import step_flow

HAS_DOT = shutil.which("dot") is not None
unroll_module = importlib.import_module("seqdsl.passes.unroll")  # seqdsl.passes.unroll is the function

D2 = """cell D2(I = 4, H = 4) {
    in    x: [I]
    state h: [H] = zeros
    param W: [H, I]
    param U, V: [H, H]
    h = tanh(W @ x + U @ h[t-1] + V @ h[t-2])
    out y = h
}
model M(V = 7, E = 4, H = 4) {
    in w: seq<int>
    r = D2(E, H) over embed(w, V, E)
    b = D2(H, H) over r.y reversed
    s = D2(H, H) over b.y from (h = r.h[last])
    out y = linear(s.y, V)
}
"""
BLUE = COLORS["short"][1]


def carried(text) -> set:
    """(from label, to label, "solid" | "t-k") of every state edge, in the direction the value
    flows (an edge drawn backwards, dir=both with the arrow at its tail, flows head to tail)."""
    ns, out = nodes(text), set()
    for a, b, e in edges(text):
        if e.get("color") != BLUE:
            continue
        if e.get("arrowtail") == "normal":
            a, b = b, a
        kind = e["label"].split()[-1] if e.get("style") == "dashed" else "solid"
        out.add((ns[a]["label"], ns[b]["label"], kind))
    return out


def box(prefix, t) -> str:
    return f"{prefix}D2\\nt={t}"


def expected_delay_two(n, prefix="", init=None, reverse=False) -> set:
    """What a D2 run over n steps draws: h_0 into step 1, each step into the next, h_-1 into step 1
    and h_0 into step 2 two steps on, each step into the one two later, the last into h_n.
    `init` is the node a model's `from` starts it from; a reversed run goes right to left."""
    at = (lambda t: n + 1 - t) if reverse else (lambda t: t)  # the box of the t-th step it runs
    h0 = init or f"{prefix.replace(': ', '.')}h_0"
    hm1 = init or f"{prefix.replace(': ', '.')}h_-1"
    want = {(h0, box(prefix, at(1)), "solid"), (hm1, box(prefix, at(1)), "t-2"), (h0, box(prefix, at(2)), "t-2")}
    want |= {(box(prefix, at(t)), box(prefix, at(t + 1)), "solid") for t in range(1, n)}
    want |= {(box(prefix, at(t)), box(prefix, at(t + 2)), "t-2") for t in range(1, n - 1)}
    return want


def test_delay_two_in_the_cell_view():
    n = 5
    text = to_dot(seqdsl.load(D2), "D2", "unrolled", n)
    ns = [a["label"] for a in nodes(text).values()]
    assert ns.count("h_0") == ns.count("h_-1") == 1
    assert carried(text) == expected_delay_two(n) | {(box("", n), f"h_{n}", "solid")}


def test_delay_two_inside_a_model_run():
    """The same edges inside a model, for a run forward (r), reversed (b) and one started from
    another's final h (s: that node stands for both of its initial states)."""
    n = 4
    got = carried(to_dot(seqdsl.load(D2), "M", "unrolled", n))
    want = expected_delay_two(n, "r: ") | {(box("r: ", n), f"r.h_{n}", "solid")}
    want |= expected_delay_two(n, "b: ", reverse=True) | {(box("b: ", 1), "b.h_final", "solid")}
    want |= expected_delay_two(n, "s: ", init=f"r.h_{n}") | {(box("s: ", n), f"s.h_{n}", "solid")}
    assert got == want


def test_elided_steps_pass_their_values_through_the_dots():
    """Above 8 steps a value carried into or out of a hidden step enters or leaves the '…'."""
    text = to_dot(seqdsl.load(D2), "D2", "unrolled", 10)
    got = carried(text)
    assert {(box("", 3), "…", "solid"), ("…", box("", 8), "solid"), (box("", 2), "…", "t-2"),
            (box("", 3), "…", "t-2"), ("…", box("", 8), "t-2"), ("…", box("", 9), "t-2")} <= got
    assert not [e for e in got if e[0] == e[1]]


def test_a_state_never_read_delayed_has_no_initial_state():
    src = "cell C(H = 2) {\n    in x: [H]\n    state h: [H] = zeros\n    h = tanh(x)\n    out y = h\n}\n"
    text = to_dot(seqdsl.load(src), "C", "unrolled", 3)
    assert carried(text) == {(box("", 3).replace("D2", "C"), "h_3", "solid")}


def tampered(change):
    """A stand-in for passes.unroll.unroll that edits the unrolled graph it returns."""
    real = unroll_module.unroll

    def fake(*args, **kw):
        u = real(*args, **kw)
        change(u)
        return u
    return fake


def by_step(u, origin, step):
    return [n for n, d in u.nodes(data=True) if d.get("origin") == origin and d.get("step") == step]


def cut_two_steps(u):
    """Drop what step 2 reads from step 0 (h[t-2] at t = 2)."""
    u.remove_edges_from([(a, b) for a, b in list(u.edges()) if u.nodes[a].get("step") == 0
                         and u.nodes[b].get("step") == 2])


def add_three_steps(u):
    """Let step 3 read h from step 0 as well (as if the cell read h[t-3])."""
    (src,) = by_step(u, "h", 0)
    dst = next(n for n, d in u.nodes(data=True) if d.get("step") == 3 and d["op"] == Op.ADD)
    u.add_edge(src, dst, port=0, delay=0)


@pytest.mark.parametrize("name,prefix", [("D2", ""), ("M", "r: ")])
def test_views_draw_the_unrolled_graph_they_are_given(name, prefix, monkeypatch):
    """Cut an edge of the unrolled graph and the picture loses it; add one and it gains it:
    the views read the unroll pass's result, not the cell's delays."""
    p = seqdsl.load(D2)
    edge = (box(prefix, 1), box(prefix, 3), "t-2")
    assert edge in carried(to_dot(p, name, "unrolled", 5))
    monkeypatch.setattr(unroll_module, "unroll", tampered(cut_two_steps))
    assert edge not in carried(to_dot(p, name, "unrolled", 5))
    monkeypatch.setattr(unroll_module, "unroll", tampered(add_three_steps))
    assert (box(prefix, 1), box(prefix, 4), "t-3") in carried(to_dot(p, name, "unrolled", 5))


@pytest.mark.parametrize("spec,name", [(D2, "D2"), (D2, "M"), ("lstm.seq", "LSTM"), ("tasks.seq", "Translate"),
                                       ("attention.seq", "AttnTranslate"), ("stacked.seq", "StackedTagger")])
@pytest.mark.parametrize("steps", [3, 10])
def test_unrolled_node_names_mean_nothing(spec, name, steps, monkeypatch):
    """Every node of the unrolled graph renamed v0, v1, ... (no `h@2`, no `_h3`): same picture."""
    p = seqdsl.load(D2) if spec == D2 else seqdsl.load(ROOT / "specs" / spec)
    before = to_dot(p, name, "unrolled", steps)

    def opaque(u):
        nx.relabel_nodes(u, {n: f"v{i}" for i, n in enumerate(list(u))}, copy=False)
        for n in u:
            u.nodes[n]["name"] = n

    monkeypatch.setattr(unroll_module, "unroll", tampered(opaque))
    assert to_dot(p, name, "unrolled", steps) == before


def test_step_flow_reads_inputs_outputs_memories():
    g = seqdsl.load(ROOT / "specs/attention.seq").definitions["BahdanauDecoder"].graph
    flow = step_flow(g, 10, {0, 1, 2, 7, 8, 9})
    assert flow.input_names == ["x"] and flow.output_names == ["y", "attn"]
    assert flow.states == ["h", "c"] and flow.initials("h") == flow.initials("c") == [-1]
    assert {0, 1, 2, 7, 8, 9} <= flow.memories["m"]
    assert ("h", -1, 0) in flow.carries and ("c", 8, 9) in flow.carries and ("h", 2, 3) in flow.carries
    d2 = step_flow(seqdsl.load(D2).definitions["D2"].graph, 4, {0, 1, 2, 3})
    assert d2.initials("h") == [-1, -2] and d2.depth == 2
    assert {c for c in d2.carries if c[1] < 0} == {("h", -1, 0), ("h", -2, 0), ("h", -1, 1)}


LAST = (ROOT / "specs/lstm.seq").read_text() + """
model S(V = 7, E = 4, H = 4) {
    in w: seq<int>
    enc = LSTM(E, H) over embed(w, V, E)
    out a = linear(tanh(enc.y)[last], 2)
    out c = linear((enc.y + embed(w, V, H))[last], 2)
}
"""


def test_a_temporary_is_never_drawn_by_its_name():
    labels = {a["label"] for a in nodes(to_dot(seqdsl.load(LAST), "S", "unrolled", 3)).values()}
    assert {"tanh(enc.y)[last]", "(enc.y + embed(w))[last]"} <= labels


VIEWS = [("rolled", "cell", 4), ("rolled", "gates", 4), ("unrolled", "cell", 4), ("unrolled", "cell", 10),
         ("unrolled", "gates", 10)]
CASES = all_definitions() + [("d2", "D2"), ("d2", "M")]


@pytest.mark.skipif(not HAS_DOT, reason="graphviz's dot is not installed")
@pytest.mark.parametrize("path,name", CASES, ids=[f"{getattr(p, 'stem', p)}-{n}" for p, n in CASES])
def test_every_view_renders_without_warnings(path, name):
    """Every definition of every bundled spec (and the delay-2 cell and model), in every view:
    `dot -Tsvg` draws it without a word on stderr, and no label shows a temporary's name."""
    program = seqdsl.load(D2) if path == "d2" else seqdsl.load(path)
    kind = program.definitions[name].graph.graph["kind"]
    for view, detail, steps in VIEWS:
        if detail == "gates" and kind != "cell":
            continue
        text = to_dot(program, name, view, steps, detail)
        assert not [a["label"] for a in nodes(text).values() if re.search(r"(^|[^\w.])_\w", a["label"])]
        r = subprocess.run(["dot", "-Tsvg", "-o", "/dev/null"], input=text, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0 and not r.stderr, (view, detail, steps, r.stderr)


def test_rolled_model_names_ports_by_structure_not_by_name():
    """An edge into a run names its port unless it is the callee's only input, whatever it is called."""
    one = ("cell A(H = 2) {\n    in inp: [H]\n    state h: [H] = zeros\n    h = tanh(inp + h[t-1])\n    out y = h\n}\n"
           "model P(H = 2) {\n    in s: seq[H]\n    a = A(H) over s\n    out y = a.y\n}\n")
    assert "→" not in to_dot(seqdsl.load(one), "P", "rolled")
    from test_render import MASKED

    labels = [e.get("label", "") for _, _, e in edges(to_dot(seqdsl.load(MASKED), "Tagger", "rolled"))]
    assert any(label.endswith("→ x") for label in labels) and any(label.endswith("→ mask") for label in labels)
