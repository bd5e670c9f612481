"""`seqdsl check` and `seqdsl ir` output."""

from __future__ import annotations

import json

from conftest import run_cli

from seqdsl.cli import main


def test_check_prints_interface(capsys):
    assert main(["check", "specs/lstm.seq", "--set", "H=32"]) == 0
    out = capsys.readouterr().out
    assert "cell LSTM(I=8, H=32)" in out
    assert "inputs:  x: [8]" in out and "states:  h: [32], c: [32]" in out
    assert "W_ii [32, 8]" in out
    assert f"parameters: {4 * 32 * (8 + 32 + 2)}" in out


def test_check_many_files(capsys):
    assert main(["check", "specs/rnn.seq", "specs/tasks.seq"]) == 0
    out = capsys.readouterr().out
    assert "specs/rnn.seq: ok" in out and "model Translate(" in out and "run:     enc = LSTM" in out


def test_ir_text_and_json(capsys):
    assert main(["ir", "specs/rnn.seq"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("cell RNN(I=8, H=16)\n")
    assert "h: [16] state(init=0.0) = tanh(" in text
    assert main(["ir", "specs/rnn.seq", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["graph"]["name"] == "RNN"


def test_warnings_go_to_stderr(tmp_path, capsys):
    p = tmp_path / "w.seq"
    p.write_text("cell C(H = 2) {\n    in x: [H]\n    param W: [H, H]\n    out y = x\n}\n")
    assert main(["check", str(p)]) == 0
    err = capsys.readouterr().err
    assert f"{p}:3:11: warning: parameter 'W' is never used" in err


def test_version_and_bare_invocation(capsys):
    import pytest

    from seqdsl import __version__

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"seqdsl {__version__}"
    assert main([]) == 1
    assert "check,ir,compile,render" in capsys.readouterr().out


def test_readme_error_example_is_real(tmp_path, capsys, monkeypatch):
    import re

    from conftest import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = re.search(r"```\n(lstm\.seq:15:5: error: .*?)\n```", readme, re.S).group(1)
    spec = (ROOT / "specs/lstm.seq").read_text().replace("c = f * c[t-1] + i * g   ", "c = f * c + i * g        ")
    (tmp_path / "lstm.seq").write_text(spec)
    monkeypatch.chdir(tmp_path)
    assert main(["check", "lstm.seq"]) == 1
    err = capsys.readouterr().err.strip()
    assert [line.split("#")[0].rstrip() for line in err.splitlines()] == shown.splitlines()


def test_compile_writes_the_lengths_and_training_modules(tmp_path, capsys):
    """`--lengths` / `--training` write the variant modules, whose MASKS / DROPOUTS name the hidden
    inputs their forward takes; without them neither."""
    import runpy

    spec = tmp_path / "d.seq"
    spec.write_text('use "lstm.seq"\nmodel M(V = 9, E = 4, H = 5) {\n    in w: seq<int>\n'
                    "    r = LSTM(E, H) over dropout(embed(w, V, E), 0.1)\n    out y = linear(r.y, V)\n}\n")
    for flags, masks, drops in (([], False, False), (["--lengths"], True, False), (["--training"], False, True),
                                (["--lengths", "--training"], True, True)):
        out = tmp_path / f"m{len(flags)}{masks}.py"
        r = run_cli(capsys, "compile", spec, "-o", out, *flags)
        assert r.returncode == 0, r.stderr
        ns = runpy.run_path(str(out))
        assert bool(ns["MASKS"]) == masks and bool(ns["DROPOUTS"]) == drops and ns["HAS_DROPOUT"]
