"""The structure rules of tools/check_structure.py hold (they run in `make lint` too): no import
cycles in seqdsl/, no private names imported across modules, no function over 60 lines."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import ROOT


def test_seqdsl_keeps_its_structure():
    r = subprocess.run([sys.executable, "tools/check_structure.py"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_checker_finds_what_it_forbids(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import check_structure as cs
    finally:
        sys.path.pop(0)
    pkg = tmp_path / "seqdsl"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import _hidden\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n\n\n_hidden = 1\n")
    (pkg / "c.py").write_text("def long():\n" + textwrap.indent("x = 1\n" * 70, "    "))
    monkeypatch.setattr(cs, "ROOT", tmp_path)
    monkeypatch.setattr(cs, "PKG", pkg)
    modules = {cs.module_name(p): p for p in sorted(pkg.rglob("*.py"))}
    edges, private, long_ = cs.scan(modules)
    assert cs.cycles(edges) == [["seqdsl.a", "seqdsl.b"]]
    assert len(private) == 1 and "'_hidden' from seqdsl.b" in private[0]
    assert len(long_) == 1 and "'long' has 71 lines" in long_[0]
