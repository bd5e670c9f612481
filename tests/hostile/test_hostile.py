"""Hostile and careless input: no crash, no hang, no silent wrong answer, no lost file.

One test per case of cases.py, each run in a child process with a timeout and a memory cap
(runner.py). The fast cases run by default; `pytest tests/hostile -m "slow or not slow"` runs all.
"""

from __future__ import annotations

import pytest

from .cases import CASES
from .runner import problems, run_case


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else [])
                                  for c in CASES])
def test_case(case):
    outcome = run_case(case)
    found = problems(case, outcome)
    assert not found, f"[{case.cls}] {case.id}: " + "; ".join(found)
