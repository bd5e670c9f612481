"""split_steps: a model that reads its previous prediction (`y[t-1]`) → the two programs that
generate with it: `begin` (what does not depend on any prediction, run once) and `step` (one step).

In:  a specialised model graph with `shift` nodes (seqdsl.lower_predict), which part to make, and
     `states_of(call_node_attrs)` → {state: (type, declared initial value)} of the definition a call runs.
Out: `split_steps(g, "begin", states_of)`: the model without the nodes that depend on a prediction;
     its outputs are the values those nodes read (an attended memory, the value a run starts
     `from`, ...), named as the step graph's inputs that take them, plus `<instance>.<state>` for
     each run's initial state given `from` something. `split_steps(g, "step", states_of)`: those
     nodes alone, run over one step: each `shift` becomes the input of the previous prediction (named
     like the predicted output), each value read from the begin part an input (`<instance>.<memory>`
     for an attended memory, `ctx.<node>` otherwise), and each run's states inputs
     `<instance>.<state>` (the run's `final` of the step before). `g.graph["step"]` records
     {"states": {name: (dims, declared initial value)}, "context": [input names], "previous": {name: fill}}.
     `steppable(g)` says why a model cannot be stepped (a SpecError) or returns the shift nodes.

A value that depends on a prediction may be read only step by step: a run of a cell (not reversed),
per-position math, `embed`/`onehot`, outputs. `[last]`, a sum over steps, self-attention, a block or
a model run, and a run's `final` need every step at once, so generating through them is an error
naming the place.
"""

from __future__ import annotations

import networkx as nx

from ..errors import SpecError
from ..ir import add_node, in_edges, verify
from ..ops import OPS, Op
from .given_states import given_states, run_states

_STEPWISE = {Op.SHIFT, Op.EMBED, Op.ONEHOT, Op.SOFTMAX, Op.LAYERNORM, Op.OUTPUT, Op.DROPOUT, Op.CALL, Op.GET}


def _why_not(g, n, d) -> str | None:
    """Why node n cannot run one step at a time, or None."""
    op = d["op"]
    if op == Op.CALL:
        if d["kind"] != "cell":
            return f"the {d['kind']} {d['callee']} works on whole sequences"
        if d.get("reverse"):
            return f"the run '{d['instance']}' is reversed: its first step needs the last prediction"
        return None
    if op == Op.GET and str(d["field"]).startswith("final."):
        return f"{d['field']} of a run is known only after its last step"
    if op in (Op.LAST, Op.SUM, Op.ATTENTION):
        return f"{op.value} reads every step of the sequence"
    if op in _STEPWISE or OPS[op].positionwise:
        return None
    return f"{op.value} is not a per-step operation"


def steppable(g) -> list:
    """The shift nodes of `g` (its reads of previous predictions), after checking that everything
    that depends on them can run one step at a time; SpecError otherwise."""
    shifts = [n for n, d in g.nodes(data=True) if d["op"] == Op.SHIFT]
    if not shifts:
        raise SpecError(f"model {g.graph['name']} does not read its previous prediction (y[t-1]), so it has "
                        "no steps to generate one by one", g.graph.get("span"),
                        "its predictions come from one run over the inputs: call it and choose from the outputs")
    for n in _dependent(g, shifts):
        d = g.nodes[n]
        why = _why_not(g, n, d)
        if why:
            prev = g.nodes[shifts[0]]
            raise SpecError(f"cannot generate step by step: this depends on the previous prediction "
                            f"({_observed(g, shifts[0])}[t-1]) but {why}", d.get("span") or prev["span"],
                            "a model generates through runs of cells and per-step math; teacher-forced "
                            "learning (a call with the whole sequence) still works")
    return shifts


def _observed(g, shift) -> str:
    return in_edges(g, shift)[0][0]


def _dependent(g, shifts) -> set:
    dep = set(shifts)
    for s in shifts:
        dep |= nx.descendants(g, s)
    return dep


def split_steps(g, part: str, states_of, deepest=None):
    """`deepest(call node attrs)`: the state a cell reads furthest back, and how far, when that is
    more than one step ((state, k) with k > 1), else None: a step carries one value of each state,
    so such a run cannot step (a SpecError)."""
    shifts = steppable(g)
    dep = _dependent(g, shifts)
    observed = {_observed(g, s) for s in shifts}
    calls = [n for n in nx.topological_sort(g) if n in dep and g.nodes[n]["op"] == Op.CALL]
    for c in calls:
        far = deepest(g.nodes[c]) if deepest and g.nodes[c]["kind"] == "cell" else None
        if far:
            d = g.nodes[c]
            raise SpecError(f"cannot generate step by step: the run '{d['instance']}' reads {far[0]}[t-{far[1]}], "
                            "but a step carries only the last value of each state", d["span"],
                            "a cell that reads its states further back than t-1 learns (a call with the "
                            "whole sequence) but does not step")
    callee_states = {c: states_of(g.nodes[c]) for c in calls}
    crossing = _crossing(g, dep, callee_states)
    states = {}
    for name, (c, s, t, init) in run_states(g, states_of).items():
        if c in dep:
            states[name] = (c, s, t, next((u for u, p, _ in in_edges(g, c) if p == s), None), init)
    if part == "begin":
        h = _begin(g, dep, observed, crossing, states)
    else:
        h = given_states(_step(g, dep, shifts, crossing), list(states), states_of)
    h.graph["step"] = {"states": {k: (tuple(t.concrete_dims()), None if u is not None else init)
                                  for k, (c, s, t, u, init) in states.items()},
                       "context": sorted(set(crossing.values())),
                       "previous": {_observed(g, s): g.nodes[s]["fill"] for s in shifts}}
    verify(h)
    return h


def _crossing(g, dep, callee_states) -> dict:
    """(source, consumer, port) → the step input's name, for each edge from the begin part into the
    step part that is not a run's initial state nor a parameter or constant."""
    out = {}
    for v in dep:
        for u, port, _ in in_edges(g, v):
            du = g.nodes[u]
            dv = g.nodes[v]
            if u in dep or OPS[du["op"]].shared or dv["op"] == Op.SHIFT:
                continue
            if dv["op"] == Op.CALL and port in callee_states[v]:
                continue
            if du["type"].seq and dv["op"] != Op.CALL:
                raise SpecError("cannot generate step by step: this reads a sequence that does not depend on the "
                                "predictions at every step", dv["span"],
                                "only a run's attended memory may be a whole sequence from outside the steps")
            out[(u, v, port)] = f"{dv['instance']}.{port}" if dv["op"] == Op.CALL else f"ctx.{u.lstrip('_')}"
    return out


def _begin(g, dep, observed, crossing, states):
    h = g.copy()
    h.remove_nodes_from([n for n in g if n in dep or n in observed or g.nodes[n]["op"] == Op.OUTPUT])
    outs = []
    for (u, _v, _p), name in sorted(crossing.items(), key=lambda kv: kv[1]):
        if name not in outs:
            outs.append(name)
            _output(h, u, name)
    for name, (_c, _s, _t, u, _i) in states.items():
        if u is not None:
            if OPS[g.nodes[u]["op"]].shared or not g.nodes[u]["type"].batched:
                raise SpecError(f"cannot generate step by step: the run's state {name} starts from a value that is "
                                "not one per sample", g.nodes[u]["span"])
            _output(h, u, name)
    keep = set()
    for o in (n for n, d in h.nodes(data=True) if d["op"] == Op.OUTPUT):
        keep |= nx.ancestors(h, o) | {o}
    h.remove_nodes_from([n for n in list(h) if n not in keep])
    return h


def _output(h, u, name: str) -> None:
    d = h.nodes[u]
    node = f"out_{name.replace('.', '_')}"
    while node in h:
        node += "_"
    add_node(h, node, Op.OUTPUT, d["type"], d["span"], [(u, 0)], output=name)


def _step(g, dep, shifts, crossing):
    h = g.subgraph(dep | {u for v in dep for u, _, _ in in_edges(g, v) if OPS[g.nodes[u]["op"]].shared}).copy()
    for s in shifts:  # the previous prediction is an input now
        name = _observed(g, s)
        readers = [(v, k, dict(a)) for _, v, k, a in h.out_edges(s, keys=True, data=True)]
        span, t = g.nodes[s]["span"], g.nodes[s]["type"]
        h.remove_node(s)
        add_node(h, name, Op.INPUT, t, span)
        for v, _k, a in readers:
            h.add_edge(name, v, **a)
    for (u, v, port), name in crossing.items():
        if name not in h:
            add_node(h, name, Op.INPUT, g.nodes[u]["type"], g.nodes[u]["span"])
        h.add_edge(name, v, port=port, delay=0)
    return h
