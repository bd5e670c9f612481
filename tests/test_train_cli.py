"""`seqdsl train`: a run from the command line, and every mistake as `seqdsl: error: ...` with exit
status 1, never a traceback."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest
from conftest import ROOT
from test_train import reverse_data

from seqdsl import cli as seqdsl_cli
from seqdsl.cli import cmd_train

SPEC = str(ROOT / "specs" / "tasks.seq")
TINY = ["--def", "Translate", "--set", "E=4", "--set", "H=8", "--batch", "8"]


@pytest.fixture
def cli(monkeypatch, capsys):
    """run(*argv) → (exit status, stdout, stderr) of `seqdsl ...`, with `train` registered here until
    seqdsl/cli/__init__.py registers it."""
    if "train" not in seqdsl_cli.COMMANDS:
        build = seqdsl_cli.build_parser

        def build_parser():
            p = build()
            sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
            cmd_train.register(sub)
            return p

        monkeypatch.setattr(seqdsl_cli, "build_parser", build_parser)
        monkeypatch.setitem(seqdsl_cli.COMMANDS, "train", cmd_train.cmd_train)

    def run(*argv):
        code = seqdsl_cli.main([str(a) for a in argv])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def data(tmp_path):
    return reverse_data(tmp_path / "train.jsonl", 24, 0), reverse_data(tmp_path / "valid.jsonl", 8, 1)


def test_train_from_the_command_line(cli, data, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = cli("train", SPEC, *TINY, "--data", data[0], "--valid", data[1], "--out", out, "--epochs", 2,
                            "--backend", "numpy", "--clip", "1", "--schedule", "cosine", "--warmup", "2",
                            "--optimizer", "sgd", "--lr", "0.1")
    assert code == 0, err
    assert "trained Translate (numpy) for 6 steps, 2 epochs" in err and "best at epoch" in err
    assert "epoch 1: train loss" in err and "token acc" in err
    assert {p.name for p in out.iterdir()} == {"weights.npz", "vocab.json", "metrics.jsonl", "loss.png", "checkpoint"}
    epochs = [json.loads(line) for line in open(out / "metrics.jsonl") if '"type": "epoch"' in line]
    assert [e["epoch"] for e in epochs] == [1, 2] and all(e["valid"]["word"]["token_acc"] >= 0 for e in epochs)
    code, _, err = cli("train", SPEC, *TINY, "--data", data[0], "--valid", data[1], "--out", out, "--epochs", 3,
                       "--backend", "numpy", "--clip", "1", "--schedule", "cosine", "--warmup", "2",
                       "--optimizer", "sgd", "--lr", "0.1", "--resume", "-q")
    assert code == 1 and "a cosine schedule is shaped by the run's length" in err  # more epochs: another curve


@pytest.mark.parametrize("argv, message", [
    ([], "the following arguments are required: --data, --out"),
    (["--data", "D", "--out", "O", "--epochs", "2", "--steps", "3"], "not allowed with argument"),
    (["--data", "D", "--out", "O", "--lr", "-1"], "lr must be a finite number > 0"),
    (["--data", "D", "--out", "O", "--batch", "0"], "--batch must be a whole number >= 1"),
    (["--data", "D", "--out", "O", "--map", "src"], "--map expects NAME=KEY"),
    (["--data", "D", "--out", "O", "--set", "H"], "--set expects NAME=VALUE"),
    (["--data", "D", "--out", "O", "--optimizer", "rmsprop"], "invalid choice: 'rmsprop'"),
    (["--data", "D", "--out", "O", "--checkpoint-every", "0"], "--checkpoint-every must be a whole number >= 1"),
    (["--data", "D", "--out", "O", "--patience", "2"], "watches the validation loss"),
])
def test_flag_mistakes_are_errors(cli, argv, message):
    code, _, err = cli("train", SPEC, *argv)
    assert code == 1 and err.startswith("seqdsl: error: ") and message in err and "Traceback" not in err


def test_file_mistakes_are_errors(cli, data, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"src": "ab", "word": "ba"}\n{"src": "ab", "word": \n')
    cases = [
        (["--data", tmp_path / "missing.jsonl"], "missing.jsonl"),
        (["--data", bad], "bad.jsonl:2"),
        (["--data", data[0], "--def", "Nope"], "no definition named 'Nope'"),
    ]
    for argv, message in cases:
        code, _, err = cli("train", SPEC, "--out", tmp_path / "run", *argv)
        assert code == 1 and ": error: " in err.splitlines()[0] and message in err, err  # file:line:col: error:
        assert "Traceback" not in err
    code, _, err = cli("train", tmp_path / "nope.seq", "--data", data[0], "--out", tmp_path / "run")
    assert code == 1 and "nope.seq" in err and "Traceback" not in err


def test_quiet_and_an_existing_run(cli, data, tmp_path):
    out = tmp_path / "run"
    code, _, err = cli("train", SPEC, *TINY, "--data", data[0], "--out", out, "--steps", 2, "--backend", "numpy", "-q")
    assert code == 0 and err == ""
    code, _, err = cli("train", SPEC, *TINY, "--data", data[0], "--out", out, "--steps", 2, "--backend", "numpy")
    assert code == 1 and "already holds a training run" in err and "--resume" in err


@pytest.mark.skipif("train" not in seqdsl_cli.COMMANDS, reason="seqdsl/cli/__init__.py does not register train yet")
def test_python_m_seqdsl_train(data, tmp_path):
    r = subprocess.run([sys.executable, "-m", "seqdsl", "train", SPEC, *TINY, "--data", str(data[0]), "--out",
                        str(tmp_path / "run"), "--steps", "2", "--backend", "numpy"], capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "run" / "weights.npz").is_file()
