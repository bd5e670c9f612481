"""given_states: a model whose runs start from states the caller gives (`state=` of a model call,
and the state a generation step carries).

In:  a specialised model graph, the names `<instance>.<state>` of the run states given, and
     `states_of(call node attrs)` → {state: (type, declared initial value)} of the cell a call runs.
Out: the graph in which each given state is an `input` node of that name, of the state's type per
     sample, feeding the run's state port in place of what the model starts it from (`from ...`, or
     the declared initial value); `<y>.last` of a prediction read at t-1 feeds its `shift`, the value
     y[t-1] reads at the first step in place of the start token. Any other name is a SpecError listing
     the states there are.
"""

from __future__ import annotations

from ..errors import SpecError, did_you_mean
from ..ir import add_node, verify
from ..ops import Op
from ..types import VType


def run_states(g, states_of) -> dict:
    """`<instance>.<state>` → (call node, state, type, declared initial value) for every run of a cell."""
    out = {}
    for c, d in g.nodes(data=True):
        if d["op"] == Op.CALL and d["kind"] == "cell":
            for s, (t, init) in states_of(d).items():
                out[f"{d['instance']}.{s}"] = (c, s, t, init)
    return out


def previous_values(g) -> dict:
    """`<y>.last` → the shift node that reads y[t-1], for each prediction a model reads at t-1: the
    value before a call's first step (`final` of the call before: its last observed y)."""
    return {f"{u}.last": n for n, d in g.nodes(data=True) if d["op"] == Op.SHIFT for u in [next(iter(g.pred[n]))]}


def given_states(g, names, states_of):
    runs = run_states(g, states_of)
    prev = previous_values(g)
    h = g.copy()
    for name in names:
        if name in prev:
            t = g.nodes[prev[name]]["type"]
            add_node(h, name, Op.INPUT, VType(t.dims, False, t.dtype, True), g.nodes[prev[name]]["span"])
            h.add_edge(name, prev[name], port=1, delay=0)
            continue
        if name not in runs:
            raise SpecError(f"{g.graph['name']} has no run state '{name}'", g.graph.get("span"),
                            did_you_mean(name, list(runs) + list(prev)) or
                            f"its run states are: {', '.join(list(runs) + list(prev)) or 'none'}")
        c, s, t, _init = runs[name]
        for a, b, k, attrs in list(h.in_edges(c, keys=True, data=True)):
            if attrs["port"] == s:
                h.remove_edge(a, b, k)
        add_node(h, name, Op.INPUT, VType(t.dims, False, t.dtype, True), g.nodes[c]["span"])
        h.add_edge(name, c, port=s, delay=0)
    verify(h)
    return h
