"""Every error class: message, line and column, through the API and through the CLI."""

from __future__ import annotations

import pytest
from bad_cases import CASES
from conftest import ROOT, run_cli

import seqdsl
from seqdsl.errors import SpecError


@pytest.fixture
def spec_dir(tmp_path):
    d = tmp_path / "specs"
    d.mkdir()
    (tmp_path / "outside.seq").write_text("cell O() {\n    in x: [1]\n    out y = x\n}\n")
    (d / "data.txt").write_text("x")
    return d


@pytest.mark.parametrize("cid,src,line,col,frag", CASES, ids=[c[0] for c in CASES])
def test_bad_spec(spec_dir, cid, src, line, col, frag):
    path = spec_dir / f"{cid}.seq"
    path.write_text(src, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        seqdsl.load(path)
    e = info.value
    assert (e.line, e.col) == (line, col), str(e)
    assert frag in e.message + " " + (e.hint or ""), str(e)
    text = str(e)
    first = text.splitlines()[0]
    assert first.startswith(f"{path}:{line}:{col}: error: ")
    lines = text.splitlines()
    assert len(lines) >= 3 and lines[2].strip().startswith("^"), text
    if lines[1].startswith("    ..."):  # a long line is shown as a window: the caret is on the same text
        source = src.splitlines()[line - 1] if isinstance(src, str) else None
        if source is not None:
            assert lines[1][lines[2].index("^")] == source.expandtabs(1)[col - 1], text
    else:
        assert lines[2].index("^") - 4 == col - 1


def test_at_least_forty_cases():
    assert len(CASES) >= 40


def test_import_cycle(tmp_path):
    (tmp_path / "a.seq").write_text('use "b.seq"\ncell CellA() {\n    in x: [1]\n    out y = x\n}\n')
    (tmp_path / "b.seq").write_text('use "a.seq"\ncell CellB() {\n    in x: [1]\n    out y = x\n}\n')
    with pytest.raises(SpecError, match=r"import cycle: a.seq -> b.seq -> a.seq") as info:
        seqdsl.load(tmp_path / "a.seq")
    assert (info.value.line, info.value.col) == (1, 5)
    assert info.value.file.endswith("b.seq")


def test_invalid_utf8(tmp_path):
    p = tmp_path / "bad.seq"
    p.write_bytes(b"cell C() {\n    # caf\xe9\n}\n")
    with pytest.raises(SpecError, match="not valid UTF-8") as info:
        seqdsl.load(p)
    assert (info.value.line, info.value.col) == (2, 10)


def test_file_too_large(tmp_path):
    p = tmp_path / "big.seq"
    p.write_bytes(b"#" * (1 << 20) + b"\n" * 10)
    with pytest.raises(SpecError, match="larger than 1 MiB"):
        seqdsl.load(p)


def test_unused_parameter_is_a_warning():
    p = seqdsl.load("cell C(H = 2) {\n    in x: [H]\n    param W, U: [H, H]\n    out y = W @ x\n}\n")
    assert [str(w).splitlines()[0] for w in p.warnings] == [
        "<string>:3:14: warning: parameter 'U' is never used"]


def test_delay_in_model_is_reported_before_lowering_anything_else():
    with pytest.raises(SpecError, match="steps only exist inside cells"):
        seqdsl.load("model M() {\n    in w: seq<int>\n    out y = embed(w, 5, 4)[t-1]\n}\n")


def _cli(capsys, *args, cwd=None):
    """`seqdsl ARGS` in this process (the hostile suite's c-proc-* cases run `python -m seqdsl` itself)."""
    return run_cli(capsys, *args, cwd=cwd)


@pytest.mark.parametrize("cid", ["syntax-bad-char", "algebraic-loop", "matmul-mismatch", "import-escape", "bidi"])
def test_cli_reports_without_traceback(spec_dir, cid, capsys):
    src, line, col, frag = next((s, li, co, f) for c, s, li, co, f in CASES if c == cid)
    path = spec_dir / f"{cid}.seq"
    path.write_text(src, encoding="utf-8")
    r = _cli(capsys, "check", str(path))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith(f"{path}:{line}:{col}: error: ")
    assert frag in r.stderr


@pytest.mark.parametrize("args,msg", [
    (["check", "missing.seq"], "seqdsl: error: no such file: missing.seq"),
    (["check"], "seqdsl: error: the following arguments are required: files"),
    (["check", "specs/rnn.seq", "--set", "H"], "--set expects NAME=VALUE, got 'H'"),
    (["check", "specs/rnn.seq", "--set", "H=0"], "--set H=0: sizes must be between 1 and"),
    (["check", "specs/rnn.seq", "--set", "Q=3"], "no definition has a size 'Q'"),
    (["check", "specs/rnn.seq", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["chek", "specs/rnn.seq"], "invalid choice: 'chek'"),
    (["ir", "specs/rnn.seq", "--def", "LSMT"], "no definition named 'LSMT'"),
    (["check", "specs"], "is a folder, not a .seq file"),
])
def test_cli_bad_usage(args, msg, capsys):
    r = _cli(capsys, *args, cwd=ROOT)
    assert r.returncode == 1, r.stderr
    assert msg in r.stderr
    assert "Traceback" not in r.stderr


def test_a_long_source_line_is_shown_as_a_window_round_the_caret():
    text = "cell C() {\n    in x: [3]\n    out y = " + " + ".join(["x"] * 150) + " + q\n}\n"
    with pytest.raises(SpecError) as e:
        seqdsl.load(text)
    lines = str(e.value).splitlines()
    assert lines[0].endswith("error: unknown name 'q'")
    shown, caret = lines[1], lines[2]
    assert len(shown) < 200 and shown.lstrip().startswith("...") and shown.endswith("+ q")
    assert shown[caret.index("^")] == "q"
