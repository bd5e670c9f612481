"""The schedule layer (seqdsl/schedule/): what a cell runs once, over all steps, and per step.

Goldens in tests/golden/schedule/ (SEQDSL_ACCEPT=1 rewrites them) for the NumPy inference
schedule (with its memory plan), the gradient schedule (with its tape) and torch's (weights
transposed once); and properties every schedule of every shipped cell keeps.
"""

from __future__ import annotations

import pytest
from conftest import ROOT, all_definitions, golden, spec_program

import seqdsl
from seqdsl.backends import numpy as npb
from seqdsl.backends import torch as tb
from seqdsl.driver import plan
from seqdsl.ir import in_edges


def _schedules(path, name):
    program = seqdsl.load(path)
    u = plan(program, name, {}, npb.EMITTER).main
    t = plan(program, name, {}, tb.EMITTER, fused=False).main
    return {"numpy": (u.schedule, u), "grad": (u.grad_schedule, u), "torch": (t.schedule, t)}


@pytest.mark.parametrize("spec,name", [("lstm", "LSTM"), ("delay2", "Delay2RNN"), ("attention", "LuongDecoder")])
def test_schedule_golden(spec, name):
    for kind, (sc, u) in _schedules(ROOT / f"specs/{spec}.seq", name).items():
        golden(f"schedule/{spec}.{name}.{kind}.txt", sc.format(u.names.__getitem__))


CELLS = [(f, n) for f, n in all_definitions() if spec_program(f).definitions[n].kind == "cell"]


@pytest.mark.parametrize("path,name", CELLS, ids=[f"{p.stem}-{n}" for p, n in CELLS])
def test_schedule_properties(path, name):
    for kind, (sc, u) in _schedules(path, name).items():
        g = u.graph
        phase = {n: i for i, ns in enumerate((sc.once, sc.time, sc.step)) for n in ns}
        for n in sc.step:  # a step node reads values of earlier phases, or earlier step nodes
            for src, _, delay in in_edges(g, n):
                if not delay and src in phase:
                    assert phase[src] < 2 or sc.step.index(src) < sc.step.index(n), (kind, n, src)
        for n in sc.once:  # what runs once reads nothing computed later
            assert all(phase.get(src, 0) == 0 for src, _, _ in in_edges(g, n)), (kind, n)
        assert set(sc.step_views) <= set(sc.time) | set(sc.inputs)
        assert sc.backward_steps == sc.step[::-1]
        assert set(sc.tape) <= set(sc.step) and (kind == "grad" or not sc.tape)
        assert (sc.plan is not None) == (kind == "numpy")
        for s in sc.states:
            assert s in sc.step and sc.max_delay[s] >= 1
