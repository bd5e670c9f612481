"""In-place planning for a cell's step: which elementwise node may overwrite an operand.

In:  a cell's optimised IR graph (with `hoist`) and its step nodes in order.
Out: `plan(...)` → {node: operand port} for nodes that may write their result into that
     operand's buffer. An operand qualifies when it is computed in this step (or is the
     oldest delayed value of a state that nothing keeps), this node is its last reader,
     it has the node's type, it is not a state, and — for a slice — its base is fresh, not a
     state, and read only through slices that do not overlap it. (Outputs are copied out of
     the step, so nothing else escapes it; see seqdsl.backends.buffers.)
"""

from __future__ import annotations

from ..ir import in_edges
from ..ops import Op

INPLACE_OPS = {Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.NEG, Op.TANH, Op.SIGMOID, Op.SIGTANH, Op.EXP, Op.RELU}
VIEWS = {Op.SLICE, Op.IDENTITY}


def plan(g, step_nodes: list, max_delay: dict) -> dict:
    index = {n: i for i, n in enumerate(step_nodes)}
    last_read: dict = {}
    for n in step_nodes:
        for u, _, delay in in_edges(g, n):
            last_read[(u, delay)] = index[n]
    written: set = set()
    out: dict = {}
    for n in step_nodes:
        d = g.nodes[n]
        if d["op"] not in INPLACE_OPS or not d["type"].batched:
            continue
        edges = list(enumerate(in_edges(g, n)))
        for port, (u, _, delay) in sorted(edges, key=lambda e: -e[1][2]):  # delayed states first
            key = (u, delay)
            ud = g.nodes[u]
            if ud["type"] != d["type"] or last_read.get(key) != index[n] or key in written:
                continue
            if any((v, k) == key for p, (v, _, k) in enumerate(in_edges(g, n)) if p != port):
                continue  # the same buffer is also the other operand
            if delay:
                if delay != max_delay.get(u):
                    continue
            elif u not in index or ud.get("state") or not _owned(g, u, index):
                continue
            out[n] = port
            written.add(key)
            break
    return out


def _owned(g, u, index) -> bool:
    d = g.nodes[u]
    if d["op"] == Op.IDENTITY:
        return False
    if d["op"] != Op.SLICE:
        return True
    (base, _, delay), = in_edges(g, u)
    if delay or base not in index or g.nodes[base].get("state") \
            or g.nodes[base]["op"] in VIEWS:
        return False
    lo, hi = d["start"].value, d["stop"].value
    for s in g.successors(base):
        sd = g.nodes[s]
        if sd["op"] != Op.SLICE:
            return False
        if s != u and not (sd["stop"].value <= lo or sd["start"].value >= hi):
            return False
    return True
