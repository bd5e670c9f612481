"""Rendering: golden DOT, graph structure as a function of N, escaping, SVG, the CLI."""

from __future__ import annotations

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
from seqdsl.render import to_dot

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
    assert {"h@-1", "h@-2"} <= set(u.nodes)
    assert u.has_edge("h@1", "_h5@3") or any(a == "h@1" and b.endswith("@3") for a, b in u.edges())


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
    text = to_dot(load("delay2.seq"), "Delay2RNN", "unrolled", 5)
    assert text.count('label="h t-2"') == 3  # steps 3, 4, 5


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
    assert 'label="C\\n(enc.final)"' in text
    assert boxes(text, "enc: LSTM") == 3 and boxes(text, "dec: LSTM") == 3
    enc = [float(m) for m in re.findall(r'label="enc: LSTM\\nt=\d+".*?pos="([\d.]+),', text)]
    dec = [float(m) for m in re.findall(r'label="dec: LSTM\\nt=\d+".*?pos="([\d.]+),', text)]
    ctx = float(re.search(r'label="C\\n\(enc.final\)".*?pos="([\d.]+),', text)[1])
    assert enc == sorted(enc) and dec == sorted(dec) and max(enc) < ctx < min(dec)


def test_states_on_straight_lines():
    text = to_dot(load("lstm.seq"), "LSTM", "unrolled", 4)
    ys = {float(y) for y in re.findall(r'label="LSTM\\nt=\d+".*?pos="[\d.]+,([\d.]+)!"', text)}
    assert len(ys) == 1


def test_rolled_view_loops_back_with_delay_labels():
    text = to_dot(load("lstm.seq"), "LSTM", "rolled")
    assert text.count('label="t-1", style="dashed"') == 2
    assert 'label="h[t-1]"' in text and 'label="c[t-1]"' in text
    assert 'label="f = σ"' in text and 'label="W_if @"' in text
    text2 = to_dot(load("delay2.seq"), "Delay2RNN", "rolled")
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
    sym = seqdsl.load("cell C(I, H) {\n    in x: [I]\n    param W: [H, I]\n    out y = tanh(W @ x)\n}\n")
    assert 'label="[H]"' in to_dot(sym, "C", "rolled", shapes=True)


def test_node_ids_are_generated():
    for view in ("rolled", "unrolled"):
        text = to_dot(load("attention.seq"), "BahdanauDecoder", view, 3)
        ids = re.findall(r"^\s*(\S+) \[label=", text, re.M)
        assert ids and all(re.fullmatch(r"n\d+", i) for i in ids)


NASTY = ['a "quoted" name', "back\\slash", "<html> & {braces}", "a:b|c", "line\nbreak", "中文"]


def test_escaping():
    assert esc('say "hi"\\') == 'say \\"hi\\"\\\\'
    assert esc("a\nb") == "a\\nb"


@pytest.mark.skipif(not HAS_DOT, reason="graphviz's dot is not installed")
def test_nasty_labels_render_to_svg():
    from seqdsl.render_cli import write

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

    assert main(["render", str(spec), "-o", str(tmp_path / "d.svg"), "--view", "both"]) == 0
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
    code = ("import sys; from seqdsl.cli import main; "
            f"main(['render', 'specs/attention.seq', '-o', {str(tmp_path / 'a.dot')!r}, '--view', 'both']); "
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
