"""Shared test helpers: spec paths and golden-file comparison (SEQDSL_ACCEPT=1 rewrites)."""

from __future__ import annotations

import os
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


def all_definitions():
    """(spec file, definition name) for every definition in the top level of each spec."""
    import seqdsl

    out = []
    for f in SPEC_FILES:
        p = seqdsl.load(f)
        out += [(f, name) for name, d in p.definitions.items() if d.file == str(f)]
    return out
