"""unroll: a cell's graph → the same computation written out for N steps (a DAG).

In:  a cell's IR graph and a number of steps N.
Out: a graph with one copy `name@t` of every per-step node for t = 0..N-1 (attributes
     `step=t` and `origin=name`, the node it copies, so no reader takes `name@t` apart), one
     shared copy of parameters, constants and memory (`step=None`, `origin=name`), and
     for each state `s` read with delay k, initial nodes `s@-1` .. `s@-k` (op `input`,
     `initial_of=s`). A delayed edge u → v with delay k becomes u@(t-k) → v@t; no edge is
     delayed any more, so the result is a DAG. Unrolling is inlining the step T times.
     `only` (a set of steps) writes out just those steps, with the shared and initial nodes
     (the renderer draws a few of a thousand steps); an edge from a step left out is dropped.
     An initial node `s@-j` is s's value j steps before step 0 (all of them hold s's initial
     value): a step t that reads s[t-k] with t - k < 0 reads `s@(t-k)`, so the delay of each
     read is the reader's step minus the initial node's.
`neighbourhood(g, steps, only)`: the steps of `only` plus every step one of them reads through
     a delayed edge or that reads one of them: unrolled with `only=neighbourhood(...)`, every
     edge into or out of a step of `only` is in the result (the renderer draws those that reach
     a step it elides as coming from, or going to, its "…" column).
"""

from __future__ import annotations

from ..ir import in_edges
from ..ops import OPS, Op

MAX_UNROLLED_NODES = 200_000


def neighbourhood(g, steps: int, only) -> set:
    """The steps of `only` and those a delayed edge joins to one of them (t - k and t + k), in 0..steps-1."""
    ks = {d["delay"] for _, _, d in g.edges(data=True) if d["delay"]}
    near = set(only) | {t + s * k for t in only for k in ks for s in (-1, 1)}
    return {t for t in near if 0 <= t < steps}


def unroll(g, steps: int, only=None):
    if g.graph["kind"] != "cell":
        raise ValueError("only cells have steps to unroll")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a whole number >= 0, got {steps!r}")
    todo = sorted(t for t in (range(steps) if only is None else set(only)) if 0 <= t < steps)
    if len(todo) * g.number_of_nodes() > MAX_UNROLLED_NODES:
        raise ValueError(f"unrolling {len(todo)} steps of {g.graph['name']} makes more than "
                         f"{MAX_UNROLLED_NODES} nodes")
    kept = set(todo)
    import networkx as nx

    out = nx.MultiDiGraph(**{**g.graph, "unrolled": steps})
    shared = {n: None for n, d in g.nodes(data=True) if OPS[d["op"]].shared}  # in graph order: runs agree
    for n in shared:
        out.add_node(n, **{**g.nodes[n], "step": None, "origin": n})
    max_delay: dict = {}
    for u, _, d in g.edges(data=True):
        if d["delay"]:
            max_delay[u] = max(max_delay.get(u, 0), d["delay"])
    for s, k in max_delay.items():
        d = g.nodes[s]
        for j in range(1, k + 1):
            name = f"{s}@-{j}"
            out.add_node(name, op=Op.INPUT, name=name, type=d["type"], span=d["span"], step=-j, initial_of=s)
    for t in todo:
        for n, d in g.nodes(data=True):
            if n in shared:
                continue
            attrs = {k: v for k, v in d.items() if k != "name"}
            out.add_node(f"{n}@{t}", name=f"{n}@{t}", step=t, origin=n, **attrs)
        for n in g.nodes:
            if n in shared:
                continue
            for u, port, delay in in_edges(g, n):
                if u not in shared and t - delay >= 0 and t - delay not in kept:
                    continue  # a step left out (only=...)
                src = u if u in shared else f"{u}@{t - delay}"
                out.add_edge(src, f"{n}@{t}", port=port, delay=0)
    return out
