"""seqdsl.data.tasks and `seqdsl data`: the synthetic tasks' format, determinism and answers, the file
written atomically, and the command's errors (exit 1, never a traceback)."""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys

import pytest

from seqdsl.cli import main
from seqdsl.data import TASKS, make_task, write_task
from seqdsl.data.tasks import DATE_FORMATS, DAYS, MONTHS, NEGATIVE, POSITIVE
from seqdsl.errors import SpecError

KEYS = {"copy": {"src", "word"}, "reverse": {"src", "word"}, "addition": {"src", "word"},
        "dates": {"src", "word"}, "adding": {"x", "total"}, "sentiment": {"words", "label"}}


def _lines(path) -> list:
    return [json.loads(line) for line in open(path, encoding="utf-8")]


@pytest.mark.parametrize("task", sorted(TASKS))
def test_each_task_writes_its_keys_and_is_deterministic(tmp_path, task):
    opts = {"steps": 12} if task == "adding" else {}
    a, b, c = (tmp_path / f"{n}.jsonl" for n in "abc")
    assert write_task(task, 30, 1, a, **opts) == a
    write_task(task, 30, 1, b, **opts)
    write_task(task, 30, 2, c, **opts)
    assert a.read_bytes() == b.read_bytes()  # the same seed, the same file
    assert a.read_bytes() != c.read_bytes()  # another seed, another (held-out) set
    examples = _lines(a)
    assert len(examples) == 30 and all(set(e) == KEYS[task] for e in examples)
    assert examples == make_task(task, 30, 1, **opts)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl", "b.jsonl", "c.jsonl"]  # no temporary files


def test_copy_and_reverse():
    for e in make_task("copy", 200, 0, min_len=2, max_len=5):
        assert e["src"] == e["word"] and re.fullmatch(r"[0-9]{2,5}", e["src"])
    examples = make_task("reverse", 200, 0)
    assert all(e["word"] == e["src"][::-1] and re.fullmatch(r"[0-9]{1,10}", e["src"]) for e in examples)
    assert {len(e["src"]) for e in examples} == set(range(1, 11))


def test_addition_sums():
    examples = make_task("addition", 300, 3)
    for e in examples:
        a, b = e["src"].split("+")
        assert int(e["word"]) == int(a) + int(b)
        assert 1 <= len(a) <= 3 and 1 <= len(b) <= 3 and (a == "0" or not a.startswith("0"))
    assert {len(e["src"].split("+")[0]) for e in examples} == {1, 2, 3}
    assert all(len(e["src"].split("+")[1]) == 4 for e in make_task("addition", 20, 0, min_len=4, max_len=4))


def _parse_date(text: str) -> datetime.date:
    """The date a person wrote in one of the task's formats (English names, day first in d/m/yy)."""
    months = {m.lower(): i + 1 for i, m in enumerate(MONTHS)} | {m[:3].lower(): i + 1 for i, m in enumerate(MONTHS)}
    days = {d.lower() for d in DAYS} | {d[:3].lower() for d in DAYS}
    m = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d\d)", text)
    if m:
        yy = int(m[3])
        return datetime.date(1900 + yy if yy >= 50 else 2000 + yy, int(m[2]), int(m[1]))
    m = re.fullmatch(r"(\d\d)\.(\d\d)\.(\d{4})", text)
    if m:
        return datetime.date(int(m[3]), int(m[2]), int(m[1]))
    words = text.replace(",", " ").lower().split()
    weekday = words.pop(0) if words[0] in days else None
    if words[0].isdigit():
        day, month, year = int(words[0]), months[words[1]], int(words[2])
    else:
        month, day, year = months[words[0]], int(words[1]), int(words[2])
    d = datetime.date(year, month, day)
    assert weekday is None or DAYS[d.weekday()].lower().startswith(weekday)
    return d


def test_dates_parse_back_to_the_iso_date():
    examples = make_task("dates", 400, 5)
    for e in examples:
        assert _parse_date(e["src"]) == datetime.date.fromisoformat(e["word"]), e
        assert datetime.date(1950, 1, 1) <= datetime.date.fromisoformat(e["word"]) <= datetime.date(2049, 12, 31)
    d = datetime.date(2019, 3, 5)
    assert [f(d) for _, f in DATE_FORMATS] == [example for example, _ in DATE_FORMATS]
    shapes = {re.sub(r"[0-9]", "9", re.sub(r"[A-Za-z]+", "a", e["src"])) for e in examples}
    assert len(shapes) >= 6  # several formats, not one


def test_adding_sums_the_two_marked_values():
    examples = make_task("adding", 200, 7, steps=30)
    for e in examples:
        x = e["x"]
        assert len(x) == 30 and all(len(p) == 2 and 0 <= p[0] < 1 and p[1] in (0, 1) for p in x)
        marked = [i for i, p in enumerate(x) if p[1] == 1]
        assert len(marked) == 2 and marked[0] < 15 <= marked[1]  # one in each half
        assert abs(e["total"][0] - (x[marked[0]][0] + x[marked[1]][0])) < 1e-9 and len(e["total"]) == 1
    assert len(make_task("adding", 1, 0)[0]["x"]) == 100  # the default length


def test_sentiment_labels_follow_the_words():
    examples = make_task("sentiment", 300, 2)
    for e in examples:
        words = e["words"].split()
        positive = any(w in POSITIVE for w in words)
        assert positive != any(w in NEGATIVE for w in words)  # exactly one adjective's sentiment
        assert e["label"] == ("pos" if positive != ("not" in words) else "neg"), e
    labels = [e["label"] for e in examples]
    assert 0.3 < labels.count("pos") / len(labels) < 0.7 and any("not" in e["words"].split() for e in examples)


@pytest.mark.parametrize("call,message", [
    (lambda: make_task("revers", 3, 0), "unknown task 'revers': the tasks are copy, reverse, addition, dates, "
                                        "adding, sentiment"),
    (lambda: make_task("reverse", 0, 0), "the number of examples (-n) must be a whole number from 1 to 10000000, "
                                           "got 0"),
    (lambda: make_task("reverse", 3, -1), "the seed must be a whole number >= 0, got -1"),
    (lambda: make_task("reverse", 3, 0, steps=5), "--steps does not apply to the task 'reverse' (it takes "
                                                  "--min-len, --max-len); --steps is for adding"),
    (lambda: make_task("dates", 3, 0, min_len=2), "--min-len does not apply to the task 'dates' (it takes no "
                                                  "options); --min-len is for copy, reverse, addition"),
    (lambda: make_task("adding", 3, 0, steps=1), "--steps must be a whole number from 2 to 100000, got 1"),
    (lambda: make_task("copy", 3, 0, min_len=5, max_len=4), "--min-len 5 is more than --max-len 4"),
    (lambda: make_task("copy", 3, 0, min_len=11), "--min-len 11 is more than --max-len 10 (the default)"),
])
def test_bad_arguments(call, message):
    with pytest.raises(SpecError) as info:
        call()
    assert info.value.message == message


def test_write_is_atomic_and_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "d.jsonl"
    write_task("copy", 5, 0, path)
    before = path.read_bytes()

    def broken(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(SpecError, match="cannot write the data file .*No space left on device"):
        write_task("copy", 50, 1, path)
    monkeypatch.undo()
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["d.jsonl"]


def test_cli_writes_the_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["data", "reverse", "-n", "20", "--seed", "1", "-o", "f.jsonl"]) == 0
    assert capsys.readouterr().out == "wrote f.jsonl (20 examples of reverse, seed 1)\n"
    assert _lines(tmp_path / "f.jsonl") == make_task("reverse", 20, 1)
    assert main(["data", "adding", "-n", "2", "--steps", "4"]) == 0  # no -o: the lines on stdout
    out = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in out] == make_task("adding", 2, 0, steps=4)


@pytest.mark.parametrize("argv,message", [
    (["data", "revrse", "-n", "3"], "seqdsl: error: unknown task 'revrse': the tasks are copy, reverse, addition, "
                                    "dates, adding, sentiment\n    hint: did you mean 'reverse'?"),
    (["data", "reverse"], "seqdsl: error: the following arguments are required: -n (see 'seqdsl data --help')"),
    (["data", "reverse", "-n", "x"], "seqdsl: error: argument -n: invalid int value: 'x' (see 'seqdsl data --help')"),
    (["data", "reverse", "-n", "3", "-o", "f.json"], "seqdsl: error: cannot write the data file f.json: seqdsl data "
                                                      "writes JSON lines, and the format of a data file is its "
                                                      "extension\n    hint: name the file FILE.jsonl"),
    (["data", "reverse", "-n", "3", "-o", "no/such/f.jsonl"], "seqdsl: error: cannot write the data file "
                                                               "no/such/f.jsonl: the folder no/such does not exist"),
    (["data", "reverse", "-n", "3", "-o", "d.jsonl"], "seqdsl: error: cannot write the data file d.jsonl: it is a "
                                                       "folder, and seqdsl only replaces regular files"),
    (["data", "sentiment", "-n", "3", "--max-len", "4"], "seqdsl: error: --max-len does not apply to the task "
                                                          "'sentiment' (it takes no options); --max-len is for copy, "
                                                          "reverse, addition"),
])
def test_cli_errors(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.jsonl").mkdir()
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == message and captured.out == ""


def test_cli_in_a_subprocess_never_shows_a_traceback(tmp_path):
    run = subprocess.run([sys.executable, "-m", "seqdsl", "data", "adding", "-n", "3", "--steps", "0", "-o",
                          str(tmp_path / "a.jsonl")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr == "seqdsl: error: --steps must be a whole number from 2 to 100000, got 0\n"
    run = subprocess.run([sys.executable, "-m", "seqdsl", "data", "dates", "-n", "5", "--seed", "3", "-o",
                          str(tmp_path / "d.jsonl")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and _lines(tmp_path / "d.jsonl") == make_task("dates", 5, 3)


def test_the_cli_names_every_task():
    from seqdsl.cli.cmd_data import TASK_NAMES
    from seqdsl.data.tasks import TASKS

    assert TASK_NAMES == tuple(TASKS)
