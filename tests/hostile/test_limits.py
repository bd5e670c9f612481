"""In-process checks of the limits and rules the hostile cases rely on (fast, no child process)."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import pytest

import seqdsl
from seqdsl.errors import SpecError
from seqdsl.program import MAX_PARAM_ELEMENTS, MAX_PROGRAM_NODES, _count, read_source
from seqdsl.size_exprs import SizeScope

ROOT = Path(__file__).resolve().parents[2]
RNN = (ROOT / "specs" / "rnn.seq").read_text(encoding="utf-8")


@pytest.mark.parametrize("path", sorted(glob.glob(str(ROOT / "specs" / "*.seq"))))
def test_the_estimate_is_a_lower_bound(path):
    """Refusing before lowering must never refuse a program that would fit."""
    program = seqdsl.load(Path(path))
    for d in program.definitions.values():
        assert _count(d.ast.body, SizeScope(d.ast, d.sizes), 1, [0, None]) <= d.graph.number_of_nodes()


def test_path_and_text_are_told_apart(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my{dir}").mkdir()
    (tmp_path / "my{dir}" / "rnn.seq").write_text(RNN)
    assert seqdsl.load("my{dir}/rnn.seq").main.name == "RNN"  # a one-line str is a path
    assert seqdsl.load(Path("my{dir}/rnn.seq")).main.name == "RNN"
    assert seqdsl.load(RNN).main.name == "RNN"  # a str with a line break is text
    assert seqdsl.load(RNN.encode()).main.name == "RNN"  # bytes are text
    one_line = "cell C() { in x: [1]; out y = x }"
    assert seqdsl.load(text=one_line).main.name == "C"
    assert seqdsl.load(path="my{dir}/rnn.seq").main.name == "RNN"
    with pytest.raises(SpecError, match="no such file") as e:
        seqdsl.load(one_line)
    assert "text=" in str(e.value)
    with pytest.raises(TypeError):
        seqdsl.load("x.seq", text=RNN)
    with pytest.raises(TypeError):
        seqdsl.load(123)


def test_program_keeps_the_sizes_it_was_loaded_with():
    assert seqdsl.load(ROOT / "specs" / "lstm.seq", sizes={"H": 32}).sizes == {"H": 32}
    assert seqdsl.load(ROOT / "specs" / "lstm.seq").sizes == {}


def test_only_regular_files_are_read(tmp_path):
    fifo = tmp_path / "p.seq"
    os.mkfifo(fifo)
    with pytest.raises(SpecError, match="FIFO"):
        read_source(fifo)  # refused before open: would block forever
    with pytest.raises(SpecError, match="character device"):
        read_source(Path("/dev/zero"))
    with pytest.raises(SpecError, match="folder"):
        read_source(tmp_path)
    big = tmp_path / "big.seq"
    with open(big, "wb") as f:
        f.truncate(2 << 30)  # sparse: takes no disk
    with pytest.raises(SpecError, match="larger than"):
        read_source(big)


def test_budgets_are_positioned():
    block = "block B(D = 4) {\n    in x: seq[D]\n    z = x\n    repeat 10000 {\n        repeat 10000 {\n" \
            "            z = tanh(z)\n        }\n    }\n    out y = z\n}\n"
    with pytest.raises(SpecError, match=f"the limit is {MAX_PROGRAM_NODES}") as e:
        seqdsl.load(block)
    assert (e.value.line, e.value.col) == (4, 5)
    with pytest.raises(SpecError, match=f"the limit is {MAX_PARAM_ELEMENTS}") as e:
        seqdsl.load("cell C() {\n    in x: [46340]\n    param W: [46340, 46340]\n    out y = W @ x\n}\n")
    assert (e.value.line, e.value.col) == (3, 11)


@pytest.mark.parametrize("init", ["~ uniform(1/0)", "~ normal(sqrt(0 - 1))", "~ normal(1e308 * 10)", "= 1e308 * 10",
                                  "~ normal(0 - 1)", "~ uniform(1e300)"])
def test_initializer_scales_must_be_usable(init):
    text = RNN.replace("param W_ih: [H, I] ~ uniform(1/sqrt(H))", f"param W_ih: [H, I] {init}")
    with pytest.raises(SpecError) as e:
        seqdsl.load(text)
    assert e.value.line == 5


def test_empty_file_has_no_main(tmp_path):
    (tmp_path / "e.seq").write_text("")
    program = seqdsl.load(tmp_path / "e.seq")
    assert program.definitions == {}
    with pytest.raises(SpecError, match="defines no cell"):
        _ = program.main
