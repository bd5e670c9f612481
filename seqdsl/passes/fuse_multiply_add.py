"""fuse_multiply_add: `x + a * b` → addcmul(x, a, b); `x + W @ h` → addmm(x, W, h) in the step;
`W @ x + b` (W, b parameters) → addmm(b, W, x) anywhere (torch: one F.linear); `sum(a * m)`,
weights a seq[] times a seq[H] → wsum(a, m) (torch: one batched matmul, (B, 1, S) @ (B, S, H),
instead of a (B, S, H) product and its sum).

In:  an IR graph (after the shared passes).
Out: a copy where an addition whose other operand is a product (or a per-step matmul by a
     shared matrix) read by nothing else becomes one node. Backends with a fused
     multiply-add (torch.addcmul, torch.addmm) run it as one call; this pass is in the
     torch backend's pipeline only, since NumPy has no such calls.

Only a temporary read by this addition alone is absorbed (not a state, not an output, not
a value with another reader), and the addition keeps its name and its other attributes, so
no reader sees a different value. A product whose factors do not both have the sum's dims
stays an addition: a number (`0.5 * h[t-1]`: torch.addcmul takes tensors only) or a
per-sample scalar (`(q @ h[t-1]) * h[t-1]`: shape (B,) would not broadcast as meant).
"""

from __future__ import annotations

from ..ir import in_edges, topo_order
from ..ops import OPS, Op
from .hoist import classify


def fuse_multiply_add(g):
    g = g.copy()
    where = classify(g)
    for n in topo_order(g):
        d = g.nodes[n]
        if d["op"] == Op.SUM:
            _weighted_sum(g, n)
            continue
        if d["op"] == Op.ADD and d["type"].batched and _bias_linear(g, n):
            continue
        if d["op"] != Op.ADD or not d["type"].batched or d["type"].seq:
            continue
        for port, (u, _, delay) in enumerate(in_edges(g, n)):
            ud = g.nodes[u]
            if delay or g.out_degree(u) != 1 or ud.get("state") or not ud.get("temp"):
                continue
            other, odelay = in_edges(g, n)[1 - port][0], in_edges(g, n)[1 - port][2]
            if g.nodes[other]["type"] != d["type"]:
                continue
            if ud["op"] == Op.MUL and ud["type"] == d["type"]:
                (a, _, ad), (b, _, bd) = in_edges(g, u)
                if not (_tensor_like(g, a, d["type"]) and _tensor_like(g, b, d["type"])):
                    continue
                _rewire(g, n, u, Op.ADDCMUL, [(other, odelay), (a, ad), (b, bd)])
                break
            if ud["op"] == Op.MATMUL and where.get(u) == "step":
                (w, _, wd), (h, _, hd) = in_edges(g, u)
                wt = g.nodes[w]["type"]
                if wd or wt.batched or wt.rank != 2 or g.nodes[h]["type"].seq:
                    continue
                _rewire(g, n, u, Op.ADDMM, [(other, odelay), (w, 0), (h, hd)])
                break
    return g


def _bias_linear(g, n) -> bool:
    """`W @ x + b`, W a parameter matrix, b a parameter vector (a `linear(x, N)`, a run's input
    projection over all steps, a model's output layer): one addmm node, which torch runs as one
    call (F.linear, or addmm with W transposed once in a step). True when rewritten."""
    d = g.nodes[n]
    for port, (u, _, delay) in enumerate(in_edges(g, n)):
        ud = g.nodes[u]
        if delay or ud["op"] != Op.MATMUL or g.out_degree(u) != 1 or ud.get("state") or not ud.get("temp"):
            continue
        other, _, odelay = in_edges(g, n)[1 - port]
        (w, _, wd), (x, _, xd) = in_edges(g, u)
        tw, tx, tb = g.nodes[w]["type"], g.nodes[x]["type"], g.nodes[other]["type"]
        if wd or odelay or tw.batched or tw.rank != 2 or not tx.batched or tx.dtype == "int":
            continue
        if tb.batched or tb.rank != 1 or tb.dims != d["type"].dims[-1:] or OPS[g.nodes[other]["op"]].constant:
            continue
        _rewire(g, n, u, Op.ADDMM, [(other, 0), (w, 0), (x, xd)])
        return True
    return False


def _weighted_sum(g, n) -> None:
    """`sum(a * m)` with per-sample weights a seq[] and values m seq[H] (attention's context
    vector) → wsum(a, m), when the product is a temporary read by this sum alone."""
    ((u, _, delay),) = in_edges(g, n)
    ud = g.nodes[u]
    if delay or ud["op"] != Op.MUL or g.out_degree(u) != 1 or ud.get("state") or not ud.get("temp"):
        return
    (a, _, ad), (m, _, md) = in_edges(g, u)
    ta, tm = g.nodes[a]["type"], g.nodes[m]["type"]
    if ta.dims:
        (a, ad, ta), (m, md, tm) = (m, md, tm), (a, ad, ta)
    if ta.dims or not (ta.seq and ta.batched and tm.seq and tm.batched and tm.rank == 1):
        return
    _rewire(g, n, u, Op.WSUM, [(a, ad), (m, md)])


def _tensor_like(g, n, out) -> bool:
    """n has `out`'s dims: a tensor that torch.addcmul broadcasts as the spec means. Not a
    shared scalar (a number in generated code: addcmul takes tensors only), nor a per-sample
    scalar (shape (B,), which would broadcast against the feature axis, not the batch)."""
    return g.nodes[n]["type"].dims == out.dims


def _rewire(g, n, inner, op, inputs):
    for u, _, k in list(g.in_edges(n, keys=True)):
        g.remove_edge(u, n, k)
    g.remove_node(inner)
    g.nodes[n]["op"] = op
    for i, (u, delay) in enumerate(inputs):
        g.add_edge(u, n, port=i, delay=delay)
