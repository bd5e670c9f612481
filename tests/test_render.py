"""Rendering: golden DOT, graph structure as a function of N, escaping, SVG, the CLI."""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import networkx as nx
import pytest
from conftest import ROOT, SPEC_FILES, all_definitions, golden

import seqdsl
from seqdsl.dot import Dot, esc
from seqdsl.ir import verify
from seqdsl.passes import unroll
from seqdsl.render import COLORS, to_dot

HAS_DOT = shutil.which("dot") is not None
ATTN = 'color="#e69138"'


def load(name):
    return seqdsl.load(ROOT / "specs" / name)


def boxes(text, label):
    return len(re.findall(rf'label="{re.escape(label)}\\nt=\d+"', text))


@pytest.mark.parametrize("path,name", all_definitions(), ids=[f"{p.stem}-{n}" for p, n in all_definitions()])
@pytest.mark.parametrize("view", ["rolled", "unrolled"])
def test_golden_dot(path, name, view):
    golden(f"dot/{path.stem}.{name}.{view}.dot", to_dot(seqdsl.load(path), name, view, 4))


def test_golden_gates_unrolled():
    golden("dot/lstm.LSTM.unrolled-gates.dot", to_dot(load("lstm.seq"), "LSTM", "unrolled", 3, "gates"))


@pytest.mark.parametrize("spec,name", [("lstm", "LSTM"), ("gru", "GRU")])
def test_golden_gates_rolled(spec, name):
    golden(f"dot/{spec}.{name}.rolled-gates.dot", to_dot(load(f"{spec}.seq"), name, "rolled", 4, "gates"))


# ---- the unroll pass -------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 3, 7])
def test_unroll_counts(n):
    g = load("lstm.seq").main.graph
    u = unroll(g, n)
    verify(u)
    shared = sum(1 for _, d in g.nodes(data=True) if d["op"].value in ("param", "const", "memory"))
    per_step = g.number_of_nodes() - shared
    assert u.number_of_nodes() == shared + n * per_step + 2  # + h@-1, c@-1
    assert u.number_of_edges() == n * g.number_of_edges()
    assert nx.is_directed_acyclic_graph(u)
    assert all(d["delay"] == 0 for _, _, d in u.edges(data=True))
    # h[t-1] feeds step t from step t-1; step 0 from the initial state
    assert u.has_edge("h@-1", "_i3@0") and u.has_edge(f"h@{n - 2}", f"_i3@{n - 1}") if n > 1 else True


def test_unroll_two_step_delay():
    u = unroll(load("delay2.seq").main.graph, 4)
    initial = {d["step"] for _, d in u.nodes(data=True) if d.get("initial_of") == "h"}
    assert initial == {-1, -2}
    steps = {(u.nodes[a]["step"], u.nodes[b]["step"]) for a, b in u.edges()
             if (u.nodes[a].get("origin") == "h" or u.nodes[a].get("initial_of") == "h")
             and u.nodes[a]["step"] != u.nodes[b]["step"]}
    assert steps == {(-2, 0), (-1, 0), (-1, 1)} | {(t - k, t) for t in range(4) for k in (1, 2) if t >= k}


def test_unroll_neighbourhood():
    """The steps next to those drawn through a delayed edge, so the edges into and out of them are kept."""
    from seqdsl.passes.unroll import neighbourhood

    g = load("delay2.seq").main.graph
    assert neighbourhood(g, 10, {0, 1, 2, 7, 8, 9}) == set(range(10))
    assert neighbourhood(g, 20, {0, 1, 2, 17, 18, 19}) == {0, 1, 2, 3, 4, 15, 16, 17, 18, 19}
    assert neighbourhood(load("lstm.seq").main.graph, 20, {0, 19}) == {0, 1, 18, 19}


# ---- unrolled diagrams -------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 4, 8])
def test_cell_steps(n):
    text = to_dot(load("lstm.seq"), "LSTM", "unrolled", n)
    assert boxes(text, "LSTM") == n
    assert text.count('label="x_') == n and text.count('label="y_') == n
    # h and c each: init -> step 1, step t -> t+1, last -> final
    assert text.count('color="#3d85c6", penwidth="2"') == n + 1
    assert text.count('color="#674ea7", penwidth="2"') == n + 1
    assert 'label="h_0"' in text and f'label="c_{n}"' in text


@pytest.mark.parametrize("n", [9, 50])
def test_elision_above_eight_steps(n):
    text = to_dot(load("gru.seq"), "GRU", "unrolled", n)
    assert boxes(text, "GRU") == 6
    assert text.count('label="…"') == 3  # the x, box and y rows
    assert f'label="x_{n}"' in text and 'label="x_4"' not in text


def test_two_step_delay_edges():
    """Steps 3, 4 and 5 read h from two steps back, step 2 reads h_0 and step 1 reads h_-1
    (tests/test_render_steps.py checks each edge's ends)."""
    text = to_dot(load("delay2.seq"), "Delay2RNN", "unrolled", 5)
    assert text.count('label="h t-2"') == 5
    assert text.count('label="h_0"') == text.count('label="h_-1"') == 1


@pytest.mark.parametrize("n,causal", [(4, True), (6, True), (5, False)])
def test_self_attention_edges(n, causal):
    src = ("block B(D = 8, heads = 2, causal = %s) {\n    in x: seq[D]\n"
           "    out y = attention(x, x, x, heads, causal)\n}\n" % ("true" if causal else "false"))
    text = to_dot(seqdsl.load(src), "B", "unrolled", n)
    assert text.count(ATTN) == (n * (n + 1) // 2 if causal else n * n)


def test_attention_edges_from_every_encoder_step():
    n = 5
    text = to_dot(load("attention.seq"), "AttnTranslate", "unrolled", n)
    assert text.count('label="C_') == n
    assert text.count(ATTN) == n * n  # every encoder step into every decoder step's context


def test_seq2seq_has_context_between_encoder_and_decoder():
    text = to_dot(load("tasks.seq"), "Translate", "unrolled", 3)
    assert 'label="context C\\n(enc.final)"' in text
    assert boxes(text, "enc: LSTM") == 3 and boxes(text, "dec: LSTM") == 3
    enc = [float(m) for m in re.findall(r'label="enc: LSTM\\nt=\d+".*?pos="([\d.]+),', text)]
    dec = [float(m) for m in re.findall(r'label="dec: LSTM\\nt=\d+".*?pos="([\d.]+),', text)]
    ctx = float(re.search(r'label="context C\\n\(enc.final\)".*?pos="([\d.]+),', text)[1])
    assert enc == sorted(enc) and dec == sorted(dec) and max(enc) < ctx < min(dec)


def test_states_on_straight_lines():
    text = to_dot(load("lstm.seq"), "LSTM", "unrolled", 4)
    ys = {float(y) for y in re.findall(r'label="LSTM\\nt=\d+".*?pos="[\d.]+,([\d.]+)!"', text)}
    assert len(ys) == 1


def test_rolled_gates_view_loops_back_with_delay_labels():
    text = to_dot(load("lstm.seq"), "LSTM", "rolled", detail="gates")
    assert text.count('label="t-1", style="dashed"') == 2
    assert 'label="h[t-1]"' in text and 'label="c[t-1]"' in text
    assert 'label="f = σ"' in text and 'label="W_if @"' in text
    text2 = to_dot(load("delay2.seq"), "Delay2RNN", "rolled", detail="gates")
    assert 'label="t-2"' in text2


def test_colours_follow_the_classic_picture():
    text = to_dot(load("lstm.seq"), "LSTM", "unrolled", 2)
    assert re.search(r'label="x_1".*fillcolor="#f4cccc"', text)  # input red
    assert re.search(r'label="h_0".*fillcolor="#cfe2f3"', text)  # short-term blue
    assert re.search(r'label="c_0".*fillcolor="#d9d2e9"', text)  # long-term purple
    assert re.search(r'label="y_1".*fillcolor="#d9ead3"', text)  # output green
    for legend in ("input x", "short-term memory h", "long-term memory c", "output y"):
        assert f'label="{legend}"' in text


def test_shapes_on_edges():
    p = seqdsl.load(ROOT / "specs/lstm.seq", sizes={"H": 12})
    assert 'label="[12]"' in to_dot(p, "LSTM", "rolled", shapes=True)
    assert 'label="[12]"' in to_dot(p, "LSTM", "rolled", detail="gates", shapes=True)
    sym = seqdsl.load("cell C(I, H) {\n    in x: [I]\n    param W: [H, I]\n    out y = tanh(W @ x)\n}\n")
    assert 'label="[H]"' in to_dot(sym, "C", "rolled", detail="gates", shapes=True)


def test_node_ids_are_generated():
    for name, view, detail in [("BahdanauDecoder", "rolled", None), ("BahdanauDecoder", "unrolled", None),
                               ("BahdanauDecoder", "rolled", "gates"), ("BahdanauDecoder", "unrolled", "gates"),
                               ("AttnTranslate", "rolled", None), ("AttnTranslate", "unrolled", None)]:
        text = to_dot(load("attention.seq"), name, view, 3, detail)
        ids = re.findall(r"^\s*(\S+) \[label=", text, re.M)
        assert ids and all(re.fullmatch(r"n\d+", i) for i in ids)
        edges = re.findall(r"^\s*(\S+) -> (\S+) ", text, re.M)
        assert edges and all(re.fullmatch(r"n\d+", i) for e in edges for i in e)


NASTY = ['a "quoted" name', "back\\slash", "<html> & {braces}", "a:b|c", "line\nbreak", "中文"]


def test_escaping():
    assert esc('say "hi"\\') == 'say \\"hi\\"\\\\'
    assert esc("a\nb") == "a\\nb"


@pytest.mark.skipif(not HAS_DOT, reason="graphviz's dot is not installed")
def test_nasty_labels_render_to_svg():
    from seqdsl.cli.cmd_render import write

    d = Dot("t")
    prev = None
    for label in NASTY:
        n = d.node(label, shape="box")
        if prev:
            d.edge(prev, n, label=label)
        prev = n
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        svg = write(d.text(), Path(tmp) / "x.svg").read_text(encoding="utf-8")
    texts = "".join(ET.fromstring(svg).itertext())
    for label in ['a "quoted" name', "back\\slash", "<html> & {braces}", "a:b|c", "中文"]:
        assert label in texts


@pytest.mark.skipif(not HAS_DOT, reason="graphviz's dot is not installed")
@pytest.mark.parametrize("spec", [p for p in SPEC_FILES], ids=[p.stem for p in SPEC_FILES])
def test_svg_parses_and_holds_labels(tmp_path, spec):
    from seqdsl.cli import main

    name = seqdsl.load(spec).main.name
    assert main(["render", str(spec), "--def", name, "-o", str(tmp_path / "d.svg"), "--view", "both"]) == 0
    for view in ("rolled", "unrolled"):
        root = ET.parse(tmp_path / f"d.{view}.svg").getroot()
        texts = set(root.itertext())
        assert "input x" in texts and "output y" in texts


@pytest.mark.skipif(not HAS_DOT, reason="graphviz's dot is not installed")
def test_render_formats_by_suffix(tmp_path):
    from seqdsl.cli import main

    for suffix, magic in ((".png", b"\x89PNG"), (".pdf", b"%PDF"), (".svg", b"<?xml"), (".dot", b"digraph")):
        out = tmp_path / f"r{suffix}"
        assert main(["render", "specs/rnn.seq", "--view", "unrolled", "-o", str(out)]) == 0
        assert out.read_bytes().startswith(magic)


def test_render_default_writes_both_views_to_out(tmp_path, monkeypatch):
    from seqdsl.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "rnn.seq").write_text((ROOT / "specs/rnn.seq").read_text())
    assert main(["render", "rnn.seq"]) == 0
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert names == {"rnn.RNN.rolled.svg", "rnn.RNN.unrolled.svg"} or not HAS_DOT


@pytest.mark.parametrize("args,msg", [
    (["--steps", "0"], "--steps must be between 1 and 1000"),
    (["-o", "x.jpg"], "cannot render to 'x.jpg'"),
    (["--view", "sideways"], "invalid choice: 'sideways'"),
    (["--def", "Nope"], "no definition named 'Nope'"),
])
def test_render_bad_flags(capsys, args, msg):
    from seqdsl.cli import main

    assert main(["render", "specs/rnn.seq", *args]) == 1
    assert msg in capsys.readouterr().err


def test_missing_dot_is_one_line_with_hint(tmp_path):
    code = ("import graphviz, sys\n"
            "def boom(*a, **k):\n    raise graphviz.ExecutableNotFound(('dot',))\n"
            "graphviz.Source.pipe = boom\n"
            "from seqdsl.cli import main\n"
            f"sys.exit(main(['render', 'specs/rnn.seq', '--view', 'rolled', '-o', {str(tmp_path / 'r.svg')!r}]))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1
    assert "graphviz's 'dot' program is not installed" in r.stderr and "apt-get install graphviz" in r.stderr
    assert "Traceback" not in r.stderr
    assert (tmp_path / "r.dot").read_text().startswith("digraph")


def test_render_does_not_import_torch(tmp_path):
    a, b = str(tmp_path / "a.dot"), str(tmp_path / "b.dot")
    code = ("import sys; from seqdsl.cli import main; "
            f"assert main(['render', 'specs/attention.seq', '--def', 'AttnTranslate', '-o', {a!r}, "
            "'--view', 'both']) == 0; "
            f"assert main(['render', 'specs/attention.seq', '--def', 'BahdanauDecoder', '-o', {b!r}, "
            "'--view', 'both', '--detail', 'gates']) == 0; "
            "assert 'torch' not in sys.modules")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("view", ["rolled", "unrolled"])
def test_models_with_symbolic_sizes_render(view):
    src = (ROOT / "specs/lstm.seq").read_text() + (
        "model Sym(V, E, H) {\n    in w: seq<int>\n    enc = LSTM(E, H) over embed(w, V, E)\n"
        "    out y = linear(enc.y, V)\n}\n")
    p = seqdsl.load(src)
    assert p.main.param_count is None
    text = to_dot(p, "Sym", view, 3, shapes=True)
    assert "enc" in text and ("seq[V]" in text or view == "unrolled")


def test_shapes_in_unrolled_models():
    text = to_dot(load("tasks.seq"), "Translate", "unrolled", 3, shapes=True)
    assert 'label="embed [32]"' in text


def test_gates_detail_needs_a_cell(capsys):
    from seqdsl.cli import main

    assert main(["render", "specs/tasks.seq", "--def", "Translate", "--view", "unrolled", "--detail", "gates",
                 "-o", "x.dot"]) == 1
    assert "--detail gates draws the gates inside a cell's steps; Translate is a model" in capsys.readouterr().err


# ---- pictures a student trusts -----------------------------------------------------------

def nodes(text) -> dict:
    """node id -> its attributes (label included, DOT escapes kept) in DOT text written by seqdsl.dot."""
    return {m[1]: dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m[2]))
            for m in re.finditer(r"^\s*(n\d+) \[(.*)\];$", text, re.M)}


def edges(text) -> list:
    """(tail id, head id, attributes) of every edge."""
    return [(a, b, dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', rest)))
            for a, b, rest in re.findall(r"^\s*(n\d+) -> (n\d+)(?: \[(.*)\])?;$", text, re.M)]


def pos(attrs) -> tuple:
    x, y = attrs["pos"].rstrip("!").split(",")
    return float(x), float(y)


def labelled(ns, pattern) -> dict:
    return {i: a for i, a in ns.items() if re.fullmatch(pattern, a["label"])}


MASKED = """cell Masked(D = 3, H = 4) {
    in x: [D]
    in mask: [H]
    state h: [H] = zeros
    param W: [H, D]
    param U: [H, H]
    n = tanh(W @ x + U @ h[t-1])
    h = mask * n + (1 - mask) * h[t-1]
    out y = h
}
model Tagger(V = 7, E = 3, H = 4) {
    in src: seq<int>
    in m: seq[H]
    fwd = Masked(E, H) over (x = embed(src, V, E), mask = m)
    out y = linear(fwd.y, 2)
}
"""


@pytest.mark.parametrize("view", ["rolled", "unrolled"])
def test_one_minus_z_is_drawn_as_written(view):
    """(1) `1 - z` is the node "1 − z", never "− 1" (which reads as z − 1)."""
    labels = [a["label"] for a in nodes(to_dot(load("gru.seq"), "GRU", view, 2, "gates")).values()]
    assert "1 − z" in labels and "− 1" not in labels
    labels = [a["label"] for a in nodes(to_dot(seqdsl.load(MASKED), "Masked", view, 2, "gates")).values()]
    assert "1 − mask" in labels


@pytest.mark.parametrize("view", ["rolled", "unrolled"])
def test_operands_of_a_difference_or_quotient_keep_their_order(view):
    """(1) Named operands are written out (h[t-1] when delayed); unnamed ones are lettered a, b,
    and the edge that carries each one says which."""
    src = ("cell D(H = 4) {\n    in x: [H]\n    state h: [H] = zeros\n    d = x - h[t-1]\n"
           "    h = tanh(x) / sigmoid(d)\n    out y = h\n}\n")
    text = to_dot(seqdsl.load(src), "D", view, 2, "gates")
    ns, es = nodes(text), edges(text)
    assert labelled(ns, r"d = x − h\[t-1\]") and labelled(ns, "h = a ÷ b")
    for div in labelled(ns, "h = a ÷ b"):
        into = {ns[a]["label"]: e.get("label") for a, b, e in es if b == div}
        assert into == {"tanh": "a", "σ": "b"}


def test_sentiment_classifier_sits_right_of_the_last_step():
    """(2) The classifier's `linear` and `label` are right of the final state, not on the last box,
    and enc.h[last] is that final h (one box, not two)."""
    ns = nodes(to_dot(load("tasks.seq"), "Sentiment", "unrolled", 4))
    at = {a["label"]: pos(a) for a in ns.values()}
    at["label"] = at.pop("label\\n~ categorical")  # a prediction: `out label ~ categorical(...)`
    steps = [pos(a)[0] for a in labelled(ns, r"enc: LSTM\\nt=\d").values()]
    assert at["label"][0] > at["linear"][0] > at["enc.h_4"][0] > max(steps)
    assert at["linear"][1] == at["enc.h_4"][1] == at["label"][1]
    assert "enc.h[last]" not in at and "h_4" not in at
    positions = [pos(a) for a in ns.values()]
    assert len(positions) == len(set(positions))


UNROLLED = all_definitions() + [("masked", "Masked"), ("masked", "Tagger")]


@pytest.mark.skipif(not HAS_DOT, reason="graphviz's dot is not installed")
@pytest.mark.parametrize("path,name", UNROLLED, ids=[f"{getattr(p, 'stem', p)}-{n}" for p, n in UNROLLED])
def test_unrolled_nodes_do_not_touch(path, name):
    """(2) graphviz lays out every unrolled view without nodes that touch (it warns, and draws
    straight edges through boxes, when they do)."""
    program = seqdsl.load(MASKED) if path == "masked" else seqdsl.load(path)
    text = to_dot(program, name, "unrolled", 4)
    r = subprocess.run(["dot", "-Tsvg", "-o", os.devnull], input=text, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "touch" not in r.stderr, r.stderr


@pytest.mark.parametrize("n", [4, 9])
def test_attention_contexts_fan_out_above_the_decoder(n):
    """(3) Each C_t sits above everything, by its own decoder step, with one edge from every
    encoder step (a fan, not a bundle through the embed labels); no state box is drawn twice."""
    text = to_dot(load("attention.seq"), "AttnTranslate", "unrolled", n)
    ns, es = nodes(text), edges(text)
    ctx = labelled(ns, r"C_\d+")
    dec = labelled(ns, r"dec: BahdanauDecoder\\nt=\d+")
    enc = labelled(ns, r"enc: LSTM\\nt=\d+")
    shown = len(dec)
    assert len(ctx) == shown == len(enc) == min(n, 6)
    rest = [pos(a)[1] for i, a in ns.items() if i not in ctx]
    assert min(pos(a)[1] for a in ctx.values()) > max(rest)
    width = sorted(pos(a)[0] for a in dec.values())
    width = width[1] - width[0]
    for c, d in zip(sorted(pos(a)[0] for a in ctx.values()), sorted(pos(a)[0] for a in dec.values())):
        assert d - width < c < d  # between its step and the one before
    fan = [(a, b) for a, b, e in es if e.get("color") == "#e69138"]
    assert len(set(fan)) == len(fan) == shown * shown
    assert {a for a, _ in fan} == set(enc) and {b for _, b in fan} == set(ctx)
    assert all(b in dec for a, b, e in es if a in ctx and e.get("color") != "#e69138")
    counts = collections.Counter(a["label"] for a in ns.values())
    state_boxes = [label for label in counts if re.fullmatch(r"(enc|dec)\.[hc]_(\d+|final)", label)]
    assert {"enc.h_0", "enc.c_0", "dec.c_0", f"dec.h_{n}", f"dec.c_{n}", f"enc.h_{n}"} <= set(state_boxes)
    assert all(counts[label] == 1 for label in state_boxes)
    assert not [label for label in counts if re.fullmatch(r"[hc]_\d+", label)]


def test_context_vector_and_cell_state_are_told_apart():
    """(4) The seq2seq context is "context C" (yellow, with its own legend entry); the LSTM's cell
    state c is purple and carried as c_1, c_2, ..."""
    for view in ("rolled", "unrolled"):
        text = to_dot(load("tasks.seq"), "Translate", view, 3)
        ns = nodes(text)
        ctx = labelled(ns, r"context C\\n\(enc\.final\)")
        assert len(ctx) == 1 and next(iter(ctx.values()))["fillcolor"] == COLORS["context"][0]
        assert not labelled(ns, r"C(\\n.*)?")
        assert labelled(ns, "context vector C") and labelled(ns, "long-term memory c")
    es = edges(to_dot(load("tasks.seq"), "Translate", "unrolled", 3))
    carried = {e["label"] for _, _, e in es if e.get("color") == COLORS["long"][1] and "label" in e}
    assert {"c_1", "c_2"} <= carried
    ns = nodes(to_dot(load("attention.seq"), "AttnTranslate", "unrolled", 3))
    assert all(a["fillcolor"] == COLORS["context"][0] for a in labelled(ns, r"C_\d").values())


@pytest.mark.skipif(not HAS_DOT, reason="graphviz's dot is not installed")
def test_render_draws_every_definition(tmp_path, monkeypatch, capsys):
    """(5) Without --def, every definition of the file is drawn, and each file is named on stdout;
    -o writes one drawing, so with several definitions it asks for --def."""
    from seqdsl.cli import main

    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    assert main(["render", "specs/tasks.seq"]) == 0
    names = ["Sentiment", "CharLM", "Caption", "Translate"]
    want = [f"out/tasks.{d}.{v}.svg" for d in names for v in ("rolled", "unrolled")]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(w[4:] for w in want)
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" (")[0] for line in out] == [f"wrote {w}" for w in want]
    assert out[0] == "wrote out/tasks.Sentiment.rolled.svg (model Sentiment, rolled view)"
    assert main(["render", "specs/tasks.seq", "-o", "x.dot"]) == 1
    err = capsys.readouterr().err
    assert "has 4 definitions (Sentiment, CharLM, Caption, Translate) and -o writes one drawing" in err
    assert "choose one with --def" in err and not (tmp_path / "x.dot").exists()


def test_render_o_says_what_it_wrote(tmp_path, capsys):
    """(6) -o without --view writes the rolled view and says so; --view both writes two files with
    derived names, each named on stdout."""
    from seqdsl.cli import main

    assert main(["render", "specs/rnn.seq", "-o", str(tmp_path / "x.dot")]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"wrote {tmp_path / 'x.dot'} (cell RNN, rolled view: one box, its states looping back)",
        "(-o writes one view, the rolled one: --view unrolled draws the other, --view both writes both)"]
    assert main(["render", "specs/rnn.seq", "-o", str(tmp_path / "y.dot"), "--view", "both"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"wrote {tmp_path / 'y.rolled.dot'} (cell RNN, rolled view: one box, its states looping back)",
        f"wrote {tmp_path / 'y.unrolled.dot'} (cell RNN, unrolled view)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.dot", "y.rolled.dot", "y.unrolled.dot"]
    assert "label=\"RNN\\nt=1\"" in (tmp_path / "y.unrolled.dot").read_text()


def test_render_help_describes_every_option(capsys):
    """(7) Every option of `seqdsl render` has a help text, and each is documented."""
    from seqdsl.cli import build_parser, main

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    options = [a for a in sub.choices["render"]._actions if not isinstance(a, argparse._HelpAction)]
    assert len(options) == 8 and all(a.help for a in options)
    with pytest.raises(SystemExit) as e:
        main(["render", "--help"])
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    docs = (ROOT / "docs" / "gallery.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for a in options:
        assert " ".join(a.help.split()[:4]) in out
        for flag in a.option_strings:
            assert f"`{flag}" in docs, flag
    assert "--detail gates" in readme and "--def" in readme and "--view both" in readme


def test_rolled_cell_is_the_textbook_loop():
    """(8) The default rolled view of a cell is one box, x_t in, y_t out, each state looping back
    (h blue, c purple); --detail gates draws the equations."""
    text = to_dot(load("lstm.seq"), "LSTM", "rolled")
    ns, es = nodes(text), edges(text)
    (box,) = labelled(ns, "LSTM")
    (x,) = labelled(ns, "x_t")
    (y,) = labelled(ns, "y_t")
    assert (x, box) in [(a, b) for a, b, _ in es] and (box, y) in [(a, b) for a, b, _ in es]
    loops = {e["label"]: e["color"] for a, b, e in es if a == b == box}
    assert loops == {"h (t-1)": COLORS["short"][1], "c (t-1)": COLORS["long"][1]}
    assert not labelled(ns, r".* = .*") and 'label="cell LSTM: rolled"' in text
    gates = to_dot(load("lstm.seq"), "LSTM", "rolled", detail="gates")
    assert 'label="f = σ"' in gates and 'label="cell LSTM: rolled, gates"' in gates
    delay2 = edges(to_dot(load("delay2.seq"), "Delay2RNN", "rolled"))
    assert [e["label"] for a, b, e in delay2 if a == b] == ["h (t-1, t-2)"]


def test_rolled_cell_detail_from_the_cli(tmp_path, capsys):
    """(8) `seqdsl render` draws the box by default and the equations with --detail gates."""
    from seqdsl.cli import main

    assert main(["render", "specs/lstm.seq", "--view", "rolled", "-o", str(tmp_path / "a.dot")]) == 0
    assert main(["render", "specs/lstm.seq", "--view", "rolled", "--detail", "gates",
                 "-o", str(tmp_path / "b.dot")]) == 0
    out = capsys.readouterr().out
    assert "(cell LSTM, rolled view: one box, its states looping back)" in out
    assert "(cell LSTM, rolled view: its equations)" in out
    assert 'label="f = σ"' not in (tmp_path / "a.dot").read_text()
    assert 'label="f = σ"' in (tmp_path / "b.dot").read_text()


def test_a_cell_with_two_inputs_shows_both():
    """(9) x and mask both go into every step: in the cell's views and in a model's, where the
    model's mask sits beside the tokens, in the same columns."""
    p, n = seqdsl.load(MASKED), 3
    ns, es = nodes(text := to_dot(p, "Masked", "unrolled", n)), edges(text)
    steps = labelled(ns, r"Masked\\nt=\d")
    for name in ("x", "mask"):
        ids = labelled(ns, rf"{name}_\d")
        assert len(ids) == n and len([1 for a, b, _ in es if a in ids and b in steps]) == n
    ns, es = nodes(text := to_dot(p, "Masked", "rolled")), edges(text)
    (box,) = labelled(ns, "Masked")
    assert {ns[a]["label"] for a, b, _ in es if b == box and a != box} == {"x_t", "mask_t"}
    ns, es = nodes(text := to_dot(p, "Tagger", "unrolled", n)), edges(text)
    steps = labelled(ns, r"fwd: Masked\\nt=\d")
    src, m = labelled(ns, r"src_\d"), labelled(ns, r"m_\d")
    into = [e.get("label", "") for a, b, e in es if a in m and b in steps]
    assert len(into) == n and all(label.endswith("→ mask") for label in into)
    assert len([1 for a, b, e in es if a in src and b in steps and e["label"].endswith("→ x")]) == n
    columns = sorted(pos(a)[0] for a in steps.values())
    for (sx, sy), (mx, my), c in zip(sorted(pos(a) for a in src.values()), sorted(pos(a) for a in m.values()), columns):
        assert sy == my and sx < c < mx and mx - sx < columns[1] - columns[0]


def test_a_state_that_is_its_previous_value_draws(tmp_path):
    """`h = h[t-1]` (an identity that reads itself through a delay) is drawn, in every view,
    instead of following the identity round forever."""
    spec = tmp_path / "loop.seq"
    spec.write_text("cell C(H = 2) {\n    in x: [H]\n    state h: [H] = zeros\n    h = h[t-1]\n    out y = h\n}\n")
    code = ("import sys, seqdsl; from seqdsl.render import to_dot; "
            "p = seqdsl.load(sys.argv[1]); "
            "[to_dot(p, 'C', v, 3, d) for v in ('rolled', 'unrolled') for d in ('cell', 'gates')]")
    r = subprocess.run([sys.executable, "-c", code, str(spec)], capture_output=True, text=True, cwd=ROOT,
                       timeout=60)
    assert r.returncode == 0, r.stderr


def picture(text) -> tuple:
    """What a drawing shows, whatever its node ids and order: its nodes' attributes and its edges'
    (with the attributes of both ends)."""
    ns = nodes(text)
    key = lambda attrs: tuple(sorted(attrs.items()))  # noqa: E731
    return (collections.Counter(key(a) for a in ns.values()),
            collections.Counter((key(ns[a]), key(ns[b]), key(e)) for a, b, e in edges(text)))


def renamed(g, new) -> nx.MultiDiGraph:
    """g with node n renamed new(n, attrs) (its `name` attribute too), attributes kept."""
    h = nx.relabel_nodes(g, {n: new(n, d) for n, d in g.nodes(data=True)}, copy=True)
    for n in h:
        h.nodes[n]["name"] = n
    return h


DIFF = ("cell D(H = 4) {\n    in x: [H]\n    state h: [H] = zeros\n    d = x - h[t-1]\n"
        "    h = tanh(x) / sigmoid(d)\n    out y = h\n}\n")


@pytest.mark.parametrize("spec", ["lstm.seq", "gru.seq", "peephole_lstm.seq", "delay2.seq", DIFF])
def test_labels_come_from_attributes_not_names(spec, monkeypatch):
    """A temporary is drawn unnamed because it has `temp=True`, and an unrolled copy is labelled
    by its `origin`: renaming the nodes (no `_`, no `@t`) changes nothing in the picture."""
    import importlib

    from seqdsl import render, unrolled

    unroll_module = importlib.import_module("seqdsl.passes.unroll")  # seqdsl.passes.unroll is the function

    g = (seqdsl.load(spec) if spec == DIFF else load(spec)).main.graph
    verify(g)
    plain = renamed(g, lambda n, d: f"tmp{list(g).index(n)}" if d.get("temp") else n)
    assert any(d.get("temp") for _, d in g.nodes(data=True)) and not any(n.startswith("_") for n in plain)
    for shapes in (False, True):
        assert picture(render.cell_rolled(plain, "gates", shapes)) == picture(render.cell_rolled(g, "gates", shapes))
    before = {s: unrolled.cell_gates_unrolled(g, s, False) for s in (2, 10)}
    real = unroll_module.unroll

    def opaque(*args, **kw):  # every node of the unrolled graph called v0, v1, ...
        u = real(*args, **kw)
        return renamed(u, lambda n, d: f"v{list(u).index(n)}")

    monkeypatch.setattr(unroll_module, "unroll", opaque)
    for s, text in before.items():
        after = unrolled.cell_gates_unrolled(g, s, False)
        assert picture(after) == picture(text)


def test_paper_functions_are_drawn_with_their_labels():
    """The functions papers use (clip, **, sqrt, min, max, abs, gelu, softplus, mean) are drawn
    with the op table's labels, and a size used as a number shows its value."""
    spec = ("cell F(I = 4, H = 3) {\n    in x: [I]\n    state h: [H] = zeros\n    param W: [H, I]\n"
            "    param U: [H, H]\n"
            "    h = clip(gelu(W @ x) + softplus(U @ h[t-1]) ** 2 / sqrt(H), -1, 1)"
            " + abs(min(h[t-1], max(h[t-1], 0.5)))\n"
            "    out y = mean(h)\n}\n")
    program = seqdsl.load(spec)
    text = to_dot(program, view="rolled", detail="gates")
    for shown in ("clip [-1, 1]", "^2", "√ 3", "min", "max 0.5", "abs", "gelu", "softplus", "mean"):
        assert f'label="{shown}"' in text, shown
    for view in ("rolled", "unrolled"):
        to_dot(program, view=view)
