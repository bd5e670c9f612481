"""The bundled library of standard cells (seqdsl/lib/) and where `use` looks: beside the importing
file, then each SEQDSL_PATH folder, then the bundled library; shadowing, missing imports, and the
safety rules inside every library folder."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from conftest import ROOT, SPECS, run_cli

import seqdsl
from seqdsl.errors import SpecError
from seqdsl.ir import to_text
from seqdsl.program import LIBRARY, library_modules, search_path

BUNDLED = {"rnn.seq": ["RNN"], "lstm.seq": ["LSTM"], "gru.seq": ["GRU"], "peephole_lstm.seq": ["PeepholeLSTM"],
           "bahdanau.seq": ["BahdanauDecoder"], "luong.seq": ["LuongDecoder"], "self_attention.seq": ["SelfAttention"]}
# the definition in specs/ each bundled one is a copy of, and its parameter count at the default sizes
TWINS = {"RNN": ("rnn.seq", 416), "LSTM": ("lstm.seq", 1664), "GRU": ("gru.seq", 1248),
         "PeepholeLSTM": ("peephole_lstm.seq", 1648), "BahdanauDecoder": ("attention.seq", 49472),
         "LuongDecoder": ("attention.seq", 18496), "SelfAttention": ("transformer.seq", 4224)}
LEAF = "cell {name}(I = 2) {{\n    in x: [I]\n    out y = x\n}}\n"


@pytest.fixture(autouse=True)
def no_user_path(monkeypatch):
    monkeypatch.delenv("SEQDSL_PATH", raising=False)


def model_using(cell: str) -> str:
    return (f'use "{cell.lower()}.seq"\nmodel M(V = 10, E = 4, H = 8) {{\n    in w: seq<int>\n'
            f"    r = {cell}(E, H) over embed(w, V, E)\n    out y = linear(r.y, 3)\n}}\n")


def error(path) -> SpecError:
    with pytest.raises(SpecError) as info:
        seqdsl.load(path)
    return info.value


# ---- the bundled files ----------------------------------------------------------------------
def test_the_bundled_library_holds_the_standard_cells():
    assert library_modules() == sorted(BUNDLED)
    assert LIBRARY == ROOT / "seqdsl" / "lib"
    assert search_path({})[0][-1].path == LIBRARY


@pytest.mark.parametrize("module", sorted(BUNDLED))
def test_each_bundled_file_loads_checks_and_runs(module):
    program = seqdsl.load(LIBRARY / module)
    assert list(program.definitions) == BUNDLED[module] and not program.warnings
    assert program.imports == []  # each file stands alone
    name = program.main.name
    assert program.main.param_count == TWINS[name][1]
    exe = seqdsl.compile(program, name=name)
    outputs, _ = exe(**exe.example_inputs(batch=2, steps=3))
    assert all(np.isfinite(v).all() for v in outputs.values())


@pytest.mark.parametrize("name", sorted(TWINS))
def test_bundled_cells_are_the_specs_cells(name):
    """specs/ keeps its own copies (its goldens and drawings are of those): they must not drift."""
    (module,) = [m for m, defs in BUNDLED.items() if name in defs]
    strip = lambda g: re.sub(r"  # line \d+", "", to_text(g))
    bundled = seqdsl.load(LIBRARY / module).definitions[name].graph
    spec = seqdsl.load(SPECS / TWINS[name][0]).definitions[name].graph
    assert strip(bundled) == strip(spec)


@pytest.mark.parametrize("module,kind", [("rnn.seq", "rnn_tanh"), ("lstm.seq", "lstm"), ("gru.seq", "gru"),
                                         ("peephole_lstm.seq", None)])
def test_bundled_standard_cells_run_on_torchs_kernels(module, kind):
    from seqdsl.analysis import recognize

    program = seqdsl.load(LIBRARY / module)
    found = recognize(program.specialize(program.main.name))
    assert (found.kind if found else None) == kind


# ---- use finds the library from anywhere ------------------------------------------------------
@pytest.mark.parametrize("cell", ["LSTM", "GRU", "RNN"])
def test_a_spec_elsewhere_uses_a_bundled_cell(tmp_path, cell):
    (tmp_path / "m.seq").write_text(model_using(cell))
    program = seqdsl.load(tmp_path / "m.seq")
    assert list(program.definitions) == [cell, "M"] and program.main.name == "M"
    (imp,) = program.imports
    assert (imp.name, imp.where, imp.shadows) == (f"{cell.lower()}.seq", "bundled", ())
    assert imp.file == program.definitions[cell].file == str(LIBRARY / f"{cell.lower()}.seq")
    exe = seqdsl.compile(program, name="M")
    outputs, _ = exe(**exe.example_inputs(batch=2, steps=4))
    assert outputs["y"].shape == (2, 4, 3)


def test_text_specs_use_the_library_too(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert seqdsl.load(text=model_using("GRU")).imports[0].where == "bundled"


def test_cli_check_from_another_folder(tmp_path, monkeypatch, capsys):
    (tmp_path / "m.seq").write_text(model_using("LSTM"))
    monkeypatch.delenv("SEQDSL_PATH", raising=False)
    r = run_cli(capsys, "check", "m.seq", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "model M(V=10, E=4, H=8)  [m.seq:2]" in r.stdout and "cell LSTM" not in r.stdout
    assert r.stdout.endswith("m.seq: ok\n") and r.stderr == ""


# ---- SEQDSL_PATH: order and shadowing ---------------------------------------------------------
def test_search_order_beside_then_seqdsl_path_in_order_then_bundled(tmp_path, monkeypatch):
    a, b, spec = tmp_path / "a", tmp_path / "b", tmp_path / "spec"
    for d in (a, b, spec):
        d.mkdir()
    (a / "mine.seq").write_text(LEAF.format(name="FromA"))
    (b / "mine.seq").write_text(LEAF.format(name="FromB"))
    (b / "only_b.seq").write_text(LEAF.format(name="OnlyB"))
    (b / "lstm.seq").write_text(LEAF.format(name="MyLSTM"))
    (spec / "m.seq").write_text('use "mine.seq"\nuse "only_b.seq"\nuse "lstm.seq"\nuse "gru.seq"\n')
    monkeypatch.setenv("SEQDSL_PATH", os.pathsep.join([str(a), str(b)]))
    program = seqdsl.load(spec / "m.seq")
    assert list(program.definitions) == ["FromA", "OnlyB", "MyLSTM", "GRU"]
    got = {i.name: (i.file, i.where, i.shadows) for i in program.imports}
    assert got["mine.seq"] == (str(a / "mine.seq"), "SEQDSL_PATH", (str(b / "mine.seq"),))
    assert got["only_b.seq"] == (str(b / "only_b.seq"), "SEQDSL_PATH", ())
    assert got["lstm.seq"] == (str(b / "lstm.seq"), "SEQDSL_PATH", (str(LIBRARY / "lstm.seq"),))  # shadows bundled
    assert got["gru.seq"] == (str(LIBRARY / "gru.seq"), "bundled", ())
    monkeypatch.setenv("SEQDSL_PATH", os.pathsep.join([str(b), str(a)]))
    assert list(seqdsl.load(spec / "m.seq").definitions)[0] == "FromB"


def test_a_file_beside_the_spec_shadows_every_library(tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "lstm.seq").write_text(LEAF.format(name="LibLSTM"))
    (tmp_path / "lstm.seq").write_text(LEAF.format(name="LocalLSTM"))
    (tmp_path / "m.seq").write_text('use "lstm.seq"\n')
    monkeypatch.setenv("SEQDSL_PATH", str(lib))
    program = seqdsl.load(tmp_path / "m.seq")
    assert list(program.definitions) == ["LocalLSTM"]
    (imp,) = program.imports
    assert imp.where == "spec" and imp.shadows == (str(lib / "lstm.seq"), str(LIBRARY / "lstm.seq"))


def test_specs_keep_their_own_copies():
    program = seqdsl.load(SPECS / "tasks.seq")
    (imp,) = program.imports
    assert (imp.file, imp.where) == (str(SPECS / "lstm.seq"), "spec")
    assert imp.shadows == (str(LIBRARY / "lstm.seq"),)


def test_a_library_file_imports_beside_itself_first(tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    (lib / "parts").mkdir(parents=True)
    (lib / "seq2seq.seq").write_text('use "parts/enc.seq"\nuse "gru.seq"\n')
    (lib / "parts" / "enc.seq").write_text('use "../lstm.seq"\n' + LEAF.format(name="Enc"))
    (lib / "lstm.seq").write_text(LEAF.format(name="LibLSTM"))
    (tmp_path / "spec").mkdir()
    (tmp_path / "spec" / "m.seq").write_text('use "seq2seq.seq"\n')
    monkeypatch.setenv("SEQDSL_PATH", str(lib))
    program = seqdsl.load(tmp_path / "spec" / "m.seq")
    assert list(program.definitions) == ["LibLSTM", "Enc", "GRU"]
    assert [(i.name, i.where) for i in program.imports] == [
        ("seq2seq.seq", "SEQDSL_PATH"), ("parts/enc.seq", "SEQDSL_PATH"), ("../lstm.seq", "SEQDSL_PATH"),
        ("gru.seq", "bundled")]


def test_bad_seqdsl_path_entries_are_skipped(tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("")
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "mine.seq").write_text(LEAF.format(name="Mine"))
    monkeypatch.setenv("SEQDSL_PATH", os.pathsep.join(["", str(tmp_path / "nope"), str(tmp_path / "afile"),
                                                       str(lib), str(lib), ""]))
    roots, skipped = search_path()
    assert [r.path for r in roots] == [lib, LIBRARY]
    assert skipped == [f"SEQDSL_PATH entry {tmp_path / 'nope'} was skipped (it does not exist)",
                       f"SEQDSL_PATH entry {tmp_path / 'afile'} was skipped (it is not a folder)"]
    (tmp_path / "m.seq").write_text('use "mine.seq"\nuse "lstm.seq"\n')
    assert list(seqdsl.load(tmp_path / "m.seq").definitions) == ["Mine", "LSTM"]


def test_relative_seqdsl_path_entries_are_relative_to_the_working_folder(tmp_path, monkeypatch):
    (tmp_path / "cells").mkdir()
    (tmp_path / "cells" / "mine.seq").write_text(LEAF.format(name="Mine"))
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "m.seq").write_text('use "mine.seq"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEQDSL_PATH", "cells")
    program = seqdsl.load("elsewhere/m.seq")
    assert program.imports[0].file == os.path.join("cells", "mine.seq")


# ---- missing imports ---------------------------------------------------------------------------
def test_a_missing_import_lists_where_it_looked(tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    lib.mkdir()
    monkeypatch.setenv("SEQDSL_PATH", os.pathsep.join([str(lib), str(tmp_path / "gone")]))
    (tmp_path / "m.seq").write_text('use "lstmm.seq"\n')
    e = error(tmp_path / "m.seq")
    assert str(e) == (
        f'{tmp_path / "m.seq"}:1:5: error: no such file: "lstmm.seq"\n'
        '    use "lstmm.seq"\n'
        "        ^~~~~~~~~~~\n"
        f"    hint: looked in {tmp_path} (beside the importing file), {lib} (SEQDSL_PATH), {LIBRARY} (the bundled "
        f"library); SEQDSL_PATH entry {tmp_path / 'gone'} was skipped (it does not exist); "
        'did you mean "lstm.seq"?')


def test_a_missing_import_with_no_close_name_lists_the_bundled_library(tmp_path):
    (tmp_path / "m.seq").write_text('use "transformer_xl.seq"\n')
    e = error(tmp_path / "m.seq")
    assert e.message == 'no such file: "transformer_xl.seq"' and (e.line, e.col) == (1, 5)
    assert e.hint.endswith("the bundled library has " + ", ".join(sorted(BUNDLED)))


def test_a_missing_dotdot_import_is_looked_for_beside_the_importer_only(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "m.seq").write_text('use "sub/../lstm.seq"\n')
    e = error(tmp_path / "m.seq")
    assert e.message == 'no such file: "sub/../lstm.seq"'
    assert e.hint == (f"looked in {tmp_path} (beside the importing file); a name with '..' (or an absolute "
                      "path) is looked for only beside the importing file")


# ---- safety: every tree keeps the spec folder's rules ---------------------------------------------
@pytest.mark.parametrize("name,frag", [("../lstm.seq", "leaves the spec's folder"),
                                       ("/etc/passwd.seq", "leaves the spec's folder"),
                                       (str(LIBRARY / "lstm.seq"), "leaves the spec's folder")])
def test_hostile_names_in_a_spec_are_refused(tmp_path, name, frag):
    (tmp_path / "spec").mkdir()
    (tmp_path / "lstm.seq").write_text(LEAF.format(name="Outside"))
    (tmp_path / "spec" / "m.seq").write_text(f'use "{name}"\n')
    e = error(tmp_path / "spec" / "m.seq")
    assert frag in e.message and (e.line, e.col) == (1, 5), str(e)


def test_a_symlink_out_of_a_seqdsl_path_folder_is_refused(tmp_path, monkeypatch):
    lib, secret = tmp_path / "lib", tmp_path / "secret"
    lib.mkdir()
    secret.mkdir()
    (secret / "x.seq").write_text(LEAF.format(name="Secret"))
    (lib / "esc.seq").symlink_to(secret / "x.seq")
    (lib / "sub").symlink_to(secret)  # a linked folder leads out too
    monkeypatch.setenv("SEQDSL_PATH", str(lib))
    for name in ("esc.seq", "sub/x.seq"):
        (tmp_path / "m.seq").write_text(f'use "{name}"\n')
        e = error(tmp_path / "m.seq")
        assert e.message == (f'import "{name}" found in the SEQDSL_PATH folder {lib} leads outside it, to '
                             f"{secret / 'x.seq'}"), str(e)
        assert e.hint == "a library file may not be a link to a file outside its library folder"


def test_a_library_file_may_not_leave_its_folder(tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    lib.mkdir()
    (tmp_path / "secret.seq").write_text(LEAF.format(name="Secret"))
    (lib / "evil.seq").write_text('use "../secret.seq"\n')
    (lib / "evil2.seq").write_text(f'use "{tmp_path / "secret.seq"}"\n')
    (lib / "evil3.seq").write_text('use "link.seq"\n')
    (lib / "link.seq").symlink_to(tmp_path / "secret.seq")
    monkeypatch.setenv("SEQDSL_PATH", str(lib))
    (tmp_path / "spec").mkdir()
    for evil in ("evil.seq", "evil2.seq", "evil3.seq"):
        (tmp_path / "spec" / "m.seq").write_text(f'use "{evil}"\n')
        e = error(tmp_path / "spec" / "m.seq")
        assert e.file == str(lib / evil) and (e.line, e.col) == (1, 5), str(e)
        assert f"leaves the SEQDSL_PATH folder {lib}" in e.message, str(e)


def test_a_linked_seqdsl_path_folder_is_followed(tmp_path, monkeypatch):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "mine.seq").write_text(LEAF.format(name="Mine"))
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    (tmp_path / "m.seq").write_text('use "mine.seq"\n')
    monkeypatch.setenv("SEQDSL_PATH", str(tmp_path / "alias"))
    assert seqdsl.load(tmp_path / "m.seq").imports[0].file == str(tmp_path / "alias" / "mine.seq")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_library_files_are_read_as_carefully_as_the_spec(tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    lib.mkdir()
    os.mkfifo(lib / "pipe.seq")
    (lib / "dir.seq").mkdir()
    (lib / "big.seq").write_text("#" * (2 << 20) + "\n")
    monkeypatch.setenv("SEQDSL_PATH", str(lib))
    for name, frag in [("pipe.seq", "FIFO"), ("dir.seq", "folder"), ("big.seq", "larger than 1 MiB")]:
        (tmp_path / "m.seq").write_text(f'use "{name}"\n')
        e = error(tmp_path / "m.seq")
        assert frag in e.message and (e.line, e.col) == (1, 5), str(e)


def test_library_imports_count_toward_the_import_limit(tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    lib.mkdir()
    for i in range(65):
        (lib / f"m{i}.seq").write_text(LEAF.format(name=f"M{i}"))
    (tmp_path / "m.seq").write_text("".join(f'use "m{i}.seq"\n' for i in range(65)))
    monkeypatch.setenv("SEQDSL_PATH", str(lib))
    assert "more than 64 imported files" in error(tmp_path / "m.seq").message


# ---- ambiguity ------------------------------------------------------------------------------------
def test_a_file_named_like_a_bundled_one_cannot_import_it(tmp_path):
    (tmp_path / "lstm.seq").write_text('use "lstm.seq"\n' + LEAF.format(name="Mine"))
    e = error(tmp_path / "lstm.seq")
    assert e.message == "import cycle: lstm.seq -> lstm.seq"
    assert e.hint == (f'"lstm.seq" is found beside the importing file first ({tmp_path / "lstm.seq"}), so it '
                      f"shadows {LIBRARY / 'lstm.seq'}; rename your file to import the library's")


def test_redefining_a_bundled_cell_says_where_the_other_comes_from(tmp_path):
    (tmp_path / "m.seq").write_text('use "gru.seq"\n' + LEAF.format(name="GRU"))
    e = error(tmp_path / "m.seq")
    assert e.message == f"'GRU' is defined twice (also at {LIBRARY / 'gru.seq'}:4:6)" and (e.line, e.col) == (2, 6)
    assert e.hint == (f"{LIBRARY / 'gru.seq'} is from the bundled library; rename your definition, or drop the use "
                      "that reads it")


# ---- the documentation ---------------------------------------------------------------------------
def test_stdlib_doc_lists_every_bundled_file_and_its_examples_load(tmp_path, monkeypatch):
    doc = (ROOT / "docs" / "stdlib.md").read_text(encoding="utf-8")
    for module, defs in BUNDLED.items():
        assert f"| `{module}` |" in doc and all(f" {d}`" in doc for d in defs), module
        count = f"({TWINS[defs[0]][1]:,})"
        assert count in doc, (module, count)
    blocks = [b for b in re.findall(r"```\n(.*?)```", doc, re.S) if b.startswith("use ")]
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)  # nothing beside it: the bundled files are used
    for b in blocks:
        program = seqdsl.load(text=b)
        assert program.imports and all(i.where == "bundled" for i in program.imports)
