"""fuse_matmuls: matmuls that share their right operand become one matmul and slices.

In:  an IR graph.
Out: a new graph where every group of ≥2 `matmul(W_k, v)` with shared matrix parameters
     W_k (same column count) and the same right operand `v` (same node and delay) is
     `concat(W_1..W_n, axis=0)` → one `matmul` → one `slice` per original node, which
     keeps the original name so nothing downstream changes. The LSTM's four input
     projections become one (4H × I) matmul, its four recurrent ones another.
"""

from __future__ import annotations

from ..ir import add_temp, in_edges
from ..ops import Op
from ..sizes import Size
from ..types import VType


def _groups(g) -> dict:
    groups: dict = {}
    for n in list(g.nodes):
        d = g.nodes[n]
        if d["op"] != Op.MATMUL:
            continue
        (w, _, wd), (v, _, vd) = in_edges(g, n)
        wt = g.nodes[w]["type"]
        if wd or g.nodes[w]["op"] != Op.PARAM or wt.rank != 2 or wt.batched or not g.nodes[v]["type"].batched:
            continue
        groups.setdefault((v, vd, wt.dims[1]), []).append(n)
    return {k: v for k, v in groups.items() if len(v) > 1}


def _signature(g, n) -> str:
    """The ops a matmul's result flows through (single consumers), up to its activation."""
    ops, seen = [], {n}
    while g.out_degree(n) == 1:
        (_, n, delay), = g.out_edges(n, data="delay")
        if delay or n in seen:  # a state read back at t-k only: the chain ends (and never loops)
            break
        seen.add(n)
        ops.append(g.nodes[n]["op"].value)
        if g.nodes[n]["op"] in (Op.SIGMOID, Op.TANH, Op.RELU):
            break
    return ops[-1] if ops else ""


def fuse_matmuls(g):
    g = g.copy()
    for (v, delay, _cols), members in _groups(g).items():
        # NOTE: rows are ordered by activation (sigmoid gates, then tanh ones), stable within,
        # so the lift pass finds the gates that share an activation side by side
        members = sorted(members, key=lambda n: {"sigmoid": 0, "tanh": 1}.get(_signature(g, n), 2))
        weights = [in_edges(g, n)[0][0] for n in members]
        first = g.nodes[members[0]]
        span = first["span"]
        stem = members[0].lstrip("_")
        rows = Size(())
        for w in weights:
            rows = rows + g.nodes[w]["type"].dims[0]
        cols = g.nodes[weights[0]]["type"].dims[1]
        wname = add_temp(g, f"_W_{stem}_fused", Op.CONCAT, VType((rows, cols), False, "float", False), span, axis=0)
        for i, w in enumerate(weights):
            g.add_edge(w, wname, port=i, delay=0)
        mname = add_temp(g, f"_{stem}_fused", Op.MATMUL, first["type"].with_(dims=(rows,)), span)
        g.add_edge(wname, mname, port=0, delay=0)
        g.add_edge(v, mname, port=1, delay=delay)
        start = Size(())
        for n, w in zip(members, weights):
            stop = start + g.nodes[w]["type"].dims[0]
            for u, _, k in list(g.in_edges(n, keys=True)):
                g.remove_edge(u, n, k)
            g.nodes[n].update(op=Op.SLICE, start=start, stop=stop)
            g.add_edge(mname, n, port=0, delay=0)
            start = stop
    return g

