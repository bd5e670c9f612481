"""reassociate: in a cell, gather the terms of a sum that do not depend on a state.

In:  an IR graph.
Out: a copy where every sum tree (`add` nodes with one consumer each) inside a cell's step
     that mixes per-step terms with hoistable terms (parameters, constants, values of the
     input alone) is rebuilt as (hoistable terms) + (per-step terms). The hoistable part
     is then computed for all steps before the loop: `W_ih @ x + b_ih + W_hh @ h[t-1] + b_hh`
     costs one addition per step instead of three.

Only temporaries read by nothing but the tree (one reader, not a state, same type as the
root) are taken apart; the root keeps its name, so states, outputs and other readers see the
same value. Each new partial sum gets the type of its own two operands (two scalar
constants add up to a scalar).
"""

from __future__ import annotations

from ..ir import add_temp, in_edges, topo_order
from ..ops import Op, infer
from .hoist import classify


def _terms(g, n, root):
    """Leaves of the single-consumer add tree below `n` as (node, delay)."""
    out = []
    for u, _, delay in in_edges(g, n):
        d = g.nodes[u]
        if (not delay and d["op"] == Op.ADD and g.out_degree(u) == 1 and not d.get("state")
                and d.get("temp") and d["type"] == g.nodes[root]["type"]):
            out += _terms(g, u, root)
        else:
            out.append((u, delay))
    return out


def reassociate(g):
    if g.graph["kind"] != "cell":
        return g
    g = g.copy()
    where = classify(g)
    for n in reversed(topo_order(g)):
        if n not in g or g.nodes[n]["op"] != Op.ADD or where.get(n) != "step":
            continue
        consumers = list(g.successors(n))
        if len(consumers) == 1 and g.nodes[consumers[0]]["op"] == Op.ADD and not g.nodes[n].get("state") \
                and g.nodes[n].get("temp") and where.get(consumers[0]) == "step":
            continue  # not the root of its tree
        terms = _terms(g, n, n)
        if len(terms) < 3:
            continue
        # NOTE: once-per-call terms first: (b_ih + b_hh) + W_ih @ x adds two vectors, then
        # makes one pass over the (T*B, H) projection instead of two
        hoistable = ([t for t in terms if not t[1] and where.get(t[0]) == "once"]
                     + [t for t in terms if not t[1] and where.get(t[0]) == "time"])
        per_step = [t for t in terms if t not in hoistable]
        if len(hoistable) < 2 or not per_step:
            continue
        _rebuild(g, n, hoistable + per_step, where)
    return g


def _rebuild(g, root, terms, where):
    d = g.nodes[root]
    span = d["span"]
    internal = []
    stack = [root]
    while stack:
        m = stack.pop()
        for u, _, delay in in_edges(g, m):
            if (u, delay) not in terms and g.nodes[u]["op"] == Op.ADD and u != root:
                internal.append(u)
                stack.append(u)
    for u in internal:
        g.remove_node(u)
    for u, _, k in list(g.in_edges(root, keys=True)):
        g.remove_edge(u, root, k)
    acc = terms[0]
    for i, term in enumerate(terms[1:-1], 1):
        # the partial sum's own type (two scalar constants make a scalar, not the root's [H])
        nt = infer(Op.ADD, {}, [g.nodes[x]["type"] for x, _ in (acc, term)], span)
        name = add_temp(g, f"{root.lstrip('_')}_sum{i}" if not root.startswith("_") else f"{root}s{i}", Op.ADD,
                        nt, span)
        g.add_edge(acc[0], name, port=0, delay=acc[1])
        g.add_edge(term[0], name, port=1, delay=term[1])
        acc = (name, 0)
    g.add_edge(acc[0], root, port=0, delay=acc[1])
    g.add_edge(terms[-1][0], root, port=1, delay=terms[-1][1])

