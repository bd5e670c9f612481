"""hoist: decide where each node of a cell is computed relative to the step loop.

In:  an IR graph (of any kind; only cells have a loop).
Out: a copy whose nodes carry `hoist`:
     "once"  computed once before the loop: parameters, constants, the attended memory
             and anything made only of those (packed weights, W_k @ m);
     "time"  computed for all steps at once, before the loop: nodes that depend on the
             per-step input but on no state and have no sequence axis (W_ih @ x over
             (T·B, I) in one matmul);
     "step"  inside the loop: everything that depends on a state.
"""

from __future__ import annotations

from ..ir import in_edges, topo_order
from ..ops import OPS, Op


def hoist(g):
    g = g.copy()
    for n, where in classify(g).items():
        g.nodes[n]["hoist"] = where
    return g


def classify(g) -> dict:
    """node → "once" | "time" | "step" (see the module docstring)."""
    out: dict = {}
    for n in topo_order(g):
        d = g.nodes[n]
        ins = in_edges(g, n)
        if OPS[d["op"]].shared:
            where = "once"
        elif d["op"] == Op.INPUT:
            where = "time"
        elif d["op"] == Op.OUTPUT:
            where = out[ins[0][0]]
        elif d.get("state") or any(delay for _, _, delay in ins):
            where = "step"
        else:
            kinds = {out[u] for u, _, _ in ins}
            if kinds <= {"once"}:
                where = "once"
            elif (OPS[d["op"]].positionwise and not d["type"].seq and "step" not in kinds
                  and all(out[u] == "time" or not g.nodes[u]["type"].batched for u, _, _ in ins)):
                where = "time"
            else:
                where = "step"
        out[n] = where
    return out
