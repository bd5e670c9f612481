"""Loading: imports, the API, sizes, parameter counts, what is (not) imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

import seqdsl
from seqdsl.errors import SpecError


def test_load_path_and_text_agree():
    a = seqdsl.load("specs/rnn.seq")
    b = seqdsl.load(open("specs/rnn.seq", encoding="utf-8").read())
    assert a.main.name == b.main.name == "RNN"
    assert a.main.param_count == b.main.param_count == 416


def test_imports_are_relative_to_the_importing_file(tmp_path):
    sub = tmp_path / "cells"
    sub.mkdir()
    (sub / "r.seq").write_text("cell R(I = 2) {\n    in x: [I]\n    state h: [I]\n    h = x + h[t-1]\n"
                               "    out y = h\n}\n")
    (tmp_path / "m.seq").write_text('use "cells/r.seq"\nmodel M() {\n    in v: seq<int>\n'
                                    "    r = R(2) over onehot(v, 2)\n    out y = r.y\n}\n")
    p = seqdsl.load(tmp_path / "m.seq")
    assert list(p.definitions) == ["R", "M"] and p.main.name == "M"


def test_diamond_import_loads_once(tmp_path):
    (tmp_path / "base.seq").write_text("cell Base() {\n    in x: [1]\n    out y = x\n}\n")
    (tmp_path / "a.seq").write_text('use "base.seq"\n')
    (tmp_path / "b.seq").write_text('use "base.seq"\n')
    (tmp_path / "top.seq").write_text('use "a.seq"\nuse "b.seq"\n')
    assert list(seqdsl.load(tmp_path / "top.seq").definitions) == ["Base"]


def test_specerror_fields():
    with pytest.raises(SpecError) as info:
        seqdsl.load("cell C() {\n    out y = nope\n}\n")
    e = info.value
    assert (e.file, e.line, e.col, e.message) == ("<string>", 2, 13, "unknown name 'nope'")


def test_specialize_requires_concrete_sizes():
    p = seqdsl.load("cell C(I) {\n    in x: [I]\n    out y = x\n}\n")
    with pytest.raises(SpecError, match="size 'I' of C has no value"):
        p.specialize("C")
    assert str(p.specialize("C", {"I": 3}).nodes["x"]["type"]) == "[3]"


def test_load_does_not_import_torch():
    code = ("import sys, seqdsl; p = seqdsl.load('specs/attention.seq'); "
            "import seqdsl.cli; seqdsl.cli.main(['check', 'specs/transformer.seq']); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_python_dash_m_works():
    r = subprocess.run([sys.executable, "-m", "seqdsl", "check", "specs/gru.seq"], capture_output=True, text=True)
    assert r.returncode == 0 and "parameters: 1248" in r.stdout


def test_package_docstring_is_true():
    """The spec, IR and generated loop shown in seqdsl's docstring are what seqdsl produces."""
    import textwrap

    from seqdsl.driver import generate_source
    from seqdsl.ir import to_text

    doc = seqdsl.__doc__
    blocks = [textwrap.dedent(b.split("\n\n")[0]).strip() for b in doc.split("::\n\n")[1:]]
    spec, ir_text, loop = blocks[0], blocks[1], blocks[2]
    program = seqdsl.load(spec + "\n")
    assert to_text(program.main.graph).strip() == ir_text
    code = generate_source(program, "numpy")[2]
    assert textwrap.indent(loop, "    ") in code


def test_wheel_ships_the_grammar_and_the_library(tmp_path):
    """A non-editable install must parse specs and find the bundled cells: the grammar and
    seqdsl/lib/*.seq travel inside the wheel, and `use "lstm.seq"` finds the installed copy."""
    import os
    import zipfile

    from conftest import ROOT

    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = tmp_path.glob("seqdsl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "seqdsl/grammar/seq.lark" in names and "seqdsl/parse.py" in names
    assert not any(n.startswith(("tests/", "specs/")) for n in names)
    shipped = sorted(n.removeprefix("seqdsl/lib/") for n in names if n.startswith("seqdsl/lib/"))
    assert shipped == sorted(p.name for p in (ROOT / "seqdsl" / "lib").glob("*.seq")) and "lstm.seq" in shipped
    site, work = tmp_path / "site", tmp_path / "work"
    zipfile.ZipFile(wheel).extractall(site)
    work.mkdir()
    (work / "m.seq").write_text('use "lstm.seq"\nmodel M(V = 5, E = 2, H = 3) {\n    in w: seq<int>\n'
                                "    r = LSTM(E, H) over embed(w, V, E)\n    out y = r.y\n}\n")
    code = "import seqdsl, sys; p = seqdsl.load('m.seq'); print(seqdsl.__file__, p.imports[0].file)"
    env = {k: v for k, v in os.environ.items() if k != "SEQDSL_PATH"} | {"PYTHONPATH": str(site)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=work, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == [str(site / "seqdsl" / "__init__.py"), str(site / "seqdsl" / "lib" / "lstm.seq")]


def test_initializer_scales_print_with_their_brackets():
    from seqdsl.scalars import scalar_str

    assert scalar_str(("bin", "*", ("bin", "+", ("num", 1.0), ("num", 2.0)), ("num", 3.0))) == "(1 + 2) * 3"
    assert scalar_str(("bin", "/", ("num", 1.0), ("sqrt", ("num", 16.0)))) == "1/sqrt(16)"
    assert scalar_str(("neg", ("bin", "-", ("num", 1.0), ("num", 2.0)))) == "-(1 - 2)"


def test_imports_record_where_each_file_was_found(tmp_path):
    (tmp_path / "base.seq").write_text("cell Base() {\n    in x: [1]\n    out y = x\n}\n")
    (tmp_path / "a.seq").write_text('use "base.seq"\n')
    (tmp_path / "top.seq").write_text('use "a.seq"\nuse "base.seq"\n')
    p = seqdsl.load(tmp_path / "top.seq")
    assert [(i.name, i.importer, i.file, i.where) for i in p.imports] == [
        ("a.seq", str(tmp_path / "top.seq"), str(tmp_path / "a.seq"), "spec"),
        ("base.seq", str(tmp_path / "a.seq"), str(tmp_path / "base.seq"), "spec")]  # read once, listed once
    assert seqdsl.load(tmp_path / "base.seq").imports == []
