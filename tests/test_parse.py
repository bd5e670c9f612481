"""Parsing: what the grammar accepts, spans, UTF-8, and the limits checked before parsing."""

from __future__ import annotations

import pytest

from seqdsl import ast as A
from seqdsl.errors import SpecError
from seqdsl.parse import MAX_EXPR_DEPTH, parse


def test_spans_and_structure():
    m = parse("cell C(I = 2) {\n    in x: [I]\n    out y = tanh(x)\n}\n", "c.seq")
    (d,) = m.definitions
    assert (d.kind, d.name, d.span.line, d.span.col) == ("cell", "C", 1, 6)
    out = d.body[1]
    assert isinstance(out, A.Out) and isinstance(out.value, A.Call)
    assert (out.value.span.line, out.value.span.col) == (3, 13)


def test_chinese_comments_and_one_line_bodies():
    src = "# 长短期记忆网络\ncell C(H = 2) { in x: [H]; out y = x }  # 一行\n"
    (d,) = parse(src).definitions
    assert [type(s).__name__ for s in d.body] == ["InDecl", "Out"]


def test_delays_last_attr_and_run_options():
    src = ("model M() {\n    in w: seq<int>\n"
           "    d = C(1) over e from (h = zeros, c = x) attend enc.y reversed\n    out y = d.h[last]\n}\n")
    (d,) = parse(src).definitions
    run = d.body[1].value
    assert isinstance(run, A.Run) and run.reversed and not run.bidirectional
    assert [k.name for k in run.from_] == ["h", "c"]
    assert isinstance(run.attend, A.Attr)
    assert isinstance(d.body[2].value, A.Last)


def test_multistep_delay():
    (d,) = parse("cell C() {\n    h = h[t-2] + h[t]\n}\n").definitions
    e = d.body[0].value
    assert (e.left.k, e.right.k) == (2, 0)


def test_left_deep_chain_is_capped():
    src = "cell C() {\n    y = x" + " + x" * (MAX_EXPR_DEPTH + 5) + "\n}\n"
    with pytest.raises(SpecError, match="expression nests deeper"):
        parse(src)


def test_long_but_shallow_file_parses():
    body = "\n".join(f"    y{i} = x" for i in range(5000))
    (d,) = parse("cell C() {\n" + body + "\n}\n").definitions
    assert len(d.body) == 5000


def test_bom_is_accepted():
    assert parse("\ufeffcell C() {\n}\n").definitions[0].name == "C"


def test_reversed_and_bidirectional_conflict():
    with pytest.raises(SpecError, match="either 'reversed' or 'bidirectional'"):
        parse("model M() {\n    r = C() over x reversed bidirectional\n}\n")


def test_positional_after_keyword():
    with pytest.raises(SpecError, match="positional argument after a keyword"):
        parse("block B() {\n    y = attention(q, k, heads = 2, v)\n}\n")


def test_grammar_has_no_cache_option():
    from seqdsl.parse import _grammar_path, parser

    assert not parser().options.cache
    assert _grammar_path().name == "seq.lark"


def test_vertical_tab_is_rejected_with_position():
    with pytest.raises(SpecError, match="control character U\\+000B") as info:
        parse("cell C() {\n  \x0b\n}\n")
    assert (info.value.line, info.value.col) == (2, 3)


@pytest.mark.parametrize("make", [
    lambda n: "x" + " + x" * n,                     # a left-deep sum
    lambda n: "-" * n + "x",                        # unary minus
    lambda n: "tanh(" * 60 + "x" + ")" * 60,        # calls, within the bracket limit
])
def test_deepest_allowed_expressions_load(make):
    import seqdsl

    src = "cell C(H = 2) {\n    in x: [H]\n    out y = " + make(MAX_EXPR_DEPTH - 2) + "\n}\n"
    assert seqdsl.load(src).main.graph.number_of_nodes() > 60


def test_language_doc_examples_load():
    import re

    from conftest import ROOT

    import seqdsl

    doc = (ROOT / "docs/language.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```\n(.*?)```", doc, re.S) if re.match(r"(cell|block|model) ", b)]
    assert len(blocks) >= 2
    for b in blocks:
        seqdsl.load(b)


def test_generated_parser_matches_the_grammar():
    """seqdsl/_seq_parser.py records the hash of the grammar it was generated from."""
    from seqdsl import _seq_parser
    from seqdsl.parse import grammar_sha256

    assert _seq_parser.GRAMMAR_SHA256 == grammar_sha256(), (
        "grammar/seq.lark changed: run `python -m seqdsl.parse --regenerate` and commit seqdsl/_seq_parser.py")


def test_generated_parser_is_fresh(capsys):
    """Regenerating gives the committed file byte for byte (the state numbering is canonical)."""
    import lark

    from seqdsl import _seq_parser
    from seqdsl.parse import GENERATED, _main, generate_parser_source

    if lark.__version__ != _seq_parser.__version__:
        pytest.skip(f"generated with lark {_seq_parser.__version__}, lark {lark.__version__} is installed")
    assert GENERATED.read_text(encoding="utf-8") == generate_parser_source(), (
        "seqdsl/_seq_parser.py is stale: run `python -m seqdsl.parse --regenerate` and commit it")
    assert _main(["--check"]) == 0 and "up to date" in capsys.readouterr().out


def _shape(t):
    """A parse tree (lark's or the generated module's classes) as tuples, positions included."""
    if hasattr(t, "children"):
        m = t.meta
        pos = None if getattr(m, "empty", True) else (m.line, m.column, m.end_line, m.end_column)
        return (str(t.data), pos, tuple(_shape(c) for c in t.children))
    return t if t is None else (t.type, str(t), t.line, t.column, t.end_line, t.end_column)


def _outcome(p, text):
    try:
        return _shape(p.parse(text))
    except Exception as e:  # lark's and the generated module's exception classes differ: compare fields
        return (type(e).__name__, e.line, e.column, str(getattr(e, "token", "")),
                sorted(getattr(e, "expected", None) or getattr(e, "allowed", None) or []))


def test_generated_parser_agrees_with_lark():
    """The same trees, positions and errors as a Lark built from the grammar (what test_fuzz draws from)."""
    from conftest import SPEC_FILES

    from seqdsl.parse import _standalone, parser

    texts = [f.read_text(encoding="utf-8") for f in SPEC_FILES]
    texts += [t[: len(t) // 2] for t in texts] + [t.replace("=", "", 1) for t in texts]
    texts += ["cell C() {\n    y = x $ 2\n}", "model M() {\n    d = C(1) over\n}", "use lstm.seq"]
    for text in texts:
        assert _outcome(_standalone(), text + "\n") == _outcome(parser(), text + "\n"), text


def test_parsing_does_not_build_or_import_lark():
    """The generated parser is used: lark is not even imported by loading a spec or reporting a syntax error."""
    import subprocess
    import sys

    from conftest import SPECS

    code = ("import sys, seqdsl\n"
            f"seqdsl.load({str(SPECS / 'tasks.seq')!r})\n"
            "try:\n    seqdsl.load('cell C() {\\n    y = x +\\n}\\n')\n"
            "except seqdsl.SpecError as e:\n    assert 'unexpected end of line' in str(e), e\n"
            "else:\n    raise AssertionError('no SpecError')\n"
            "assert 'lark' not in sys.modules, sorted(m for m in sys.modules if 'lark' in m)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


def test_parse_never_instantiates_lark(monkeypatch):
    import lark

    import seqdsl.parse as P

    def refuse(*args, **kwargs):
        raise AssertionError("seqdsl.parse built a lark.Lark")

    monkeypatch.setattr(lark.Lark, "__init__", refuse)
    monkeypatch.setattr(lark.Lark, "_load", refuse)
    P._standalone.cache_clear()
    assert parse("cell C(H = 2) {\n    in x: [H]\n    out y = tanh(x)\n}\n").definitions[0].name == "C"
    with pytest.raises(SpecError, match="unexpected"):
        parse("cell C() {\n    y = (x\n}\n")
