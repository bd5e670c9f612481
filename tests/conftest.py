"""Shared test helpers: spec paths and golden-file comparison (SEQDSL_ACCEPT=1 rewrites)."""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
GOLDEN = Path(__file__).resolve().parent / "golden"
SPEC_FILES = sorted(SPECS.glob("*.seq"))


def golden(name: str, text: str) -> None:
    """Compare `text` with tests/golden/<name>; with SEQDSL_ACCEPT=1, write it instead."""
    path = GOLDEN / name
    if os.environ.get("SEQDSL_ACCEPT"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"missing golden file {path}; run `SEQDSL_ACCEPT=1 make test` and review git diff")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


@functools.cache
def spec_program(path):
    """seqdsl.load(path), loaded once per process: for choosing test cases at collection time (ten
    modules parametrize over the bundled specs, and each xdist worker collects them all); a test
    that uses a program loads its own."""
    import seqdsl

    return seqdsl.load(path)


def all_definitions():
    """(spec file, definition name) for every definition in the top level of each spec."""
    out = []
    for f in SPEC_FILES:
        p = spec_program(f)
        out += [(f, name) for name, d in p.definitions.items() if d.file == str(f)]
    return out


@dataclass
class Ran:
    """What `seqdsl ARGS` gave: its exit status and what it printed (as subprocess.run's result)."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(capsys, *argv, cwd=None) -> Ran:
    """`seqdsl ARGS` in this process (seqdsl.cli.main, which `python -m seqdsl` and the `seqdsl`
    script exit with), from `cwd`: for tests of what a command prints, writes and returns; the
    tests of what only a fresh process shows (imports, signals, exit codes of `python -m
    seqdsl`) start one."""
    from seqdsl.cli import main

    capsys.readouterr()
    with contextlib.chdir(cwd or os.getcwd()):
        rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return Ran(rc, out.out, out.err)


# The slowest tests (seconds each), run first: with `pytest -n 2` a worker that draws one of them
# late keeps the run waiting after the other has finished; first, the rest of the suite fills in
# around them. Only the order changes (a stale entry costs time, never coverage). Whole modules where
# their tests share a module fixture.
RUN_FIRST = (
    "tests/test_differential.py::",
    "tests/test_train_ddp.py::",
    "tests/test_names.py::test_every_role",
    "tests/test_train_resume.py::",
    "tests/test_program.py::test_wheel_ships_the_grammar_and_the_library",
    "tests/test_fuzz.py::",
    "tests/test_train.py::",
    "tests/test_backends.py::test_torch_module_trains",
)


def pytest_collection_modifyitems(config, items):
    def rank(item):
        return next((i for i, prefix in enumerate(RUN_FIRST) if item.nodeid.startswith(prefix)), len(RUN_FIRST))

    items.sort(key=rank)  # stable: otherwise the order pytest collected


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's tests (`pytestmark = pytest.mark.usefixtures("one_torch_thread")`):
    their tensors are tiny, and torch's thread pool would cost more than it saves, more so on a busy
    machine; skips the module without torch."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
