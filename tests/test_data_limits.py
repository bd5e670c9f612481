"""`seqdsl data` at the documented extremes of its options: every task works up to its maximum
(`addition` with numbers of 19 to 1000 digits, past what one int64 draw holds), and the files the
lengths that always worked gave stay the same for the same seed."""

from __future__ import annotations

import json

import pytest

from seqdsl.cli import main
from seqdsl.data import make_task
from seqdsl.data.tasks import LIMITS


def _check_sums(examples, low: int, high: int) -> None:
    for e in examples:
        a, b = e["src"].split("+")
        for n in (a, b):
            assert low <= len(n) <= high and n.isdigit() and (n == "0" or not n.startswith("0")), e
        assert e["word"] == str(int(a) + int(b))


@pytest.mark.parametrize("low, high", [(19, 19), (20, 20), (17, 21), (1, 40), (1000, 1000)])
def test_addition_draws_numbers_longer_than_int64(low, high):
    examples = make_task("addition", 30, 5, min_len=low, max_len=high)
    _check_sums(examples, low, high)
    lengths = {len(n) for e in examples for n in e["src"].split("+")}
    assert lengths <= set(range(low, high + 1)) and (high - low < 2 or len(lengths) > 1)


def test_long_numbers_are_uniform_in_their_first_digit():
    firsts = [n[0] for e in make_task("addition", 400, 2, min_len=25, max_len=25) for n in e["src"].split("+")]
    assert set(firsts) == set("123456789")  # never 0, every other digit


def test_the_lengths_that_worked_give_the_same_files():
    # drawn before numbers of more than 18 digits could be: one rng.integers draw per number
    assert make_task("addition", 3, 1) == [{"src": "77+95", "word": "172"}, {"src": "8+9", "word": "17"},
                                           {"src": "8+4", "word": "12"}]
    assert make_task("addition", 2, 4, min_len=18, max_len=18) == [
        {"src": "948750495015130959+560194797532925458", "word": "1508945292548056417"},
        {"src": "978619335136933805+172752421506042016", "word": "1151371756642975821"}]


def test_the_command_line_at_the_maximum_length(capsys):
    assert main(["data", "addition", "-n", "1", "--min-len", "19", "--max-len", "19"]) == 0
    _check_sums([json.loads(capsys.readouterr().out)], 19, 19)
    top = LIMITS["max_len"][1]
    assert main(["data", "addition", "-n", "2", "--min-len", str(top), "--max-len", str(top)]) == 0
    lines = capsys.readouterr().out.splitlines()
    _check_sums([json.loads(line) for line in lines], top, top)
    assert main(["data", "addition", "-n", "1", "--max-len", str(top + 1)]) == 1
    err = capsys.readouterr().err
    assert err == f"seqdsl: error: --max-len must be a whole number from 1 to {top}, got {top + 1}\n"


@pytest.mark.parametrize("task, options", [
    ("copy", {"min_len": 1000, "max_len": 1000}),
    ("reverse", {"min_len": 1000, "max_len": 1000}),
    ("copy", {"min_len": 1, "max_len": 1}),
    ("adding", {"steps": LIMITS["steps"][0]}),
    ("adding", {"steps": 3}),
    ("adding", {"steps": LIMITS["steps"][1]}),
    ("dates", {}),
    ("sentiment", {}),
])
def test_every_task_at_its_extremes(task, options):
    examples = make_task(task, 2, 3, **options)
    assert len(examples) == 2
    if task in ("copy", "reverse"):
        assert all(len(e["src"]) == options["max_len"] and e["src"].isdigit() for e in examples)
    if task == "adding":
        steps = options["steps"]
        for e in examples:
            marked = [i for i, (_, m) in enumerate(e["x"]) if m == 1]
            assert len(e["x"]) == steps and len(marked) == 2 and marked[0] < steps // 2 <= marked[1]
