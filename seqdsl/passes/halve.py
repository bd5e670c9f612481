"""sigmoid_via_tanh: σ(a) = ½·tanh(a/2) + ½, with the a/2 folded into what produces a.

In:  an IR graph after the shared passes.
Out: a copy where a `sigmoid` (or the sigmoid columns of a `sigtanh`) whose input is made of
     parameter-weighted terms — sums of matmuls by (fused) weight matrices and of (fused)
     biases, each read by nothing else — becomes `tanh` of an input whose producing weights
     and biases are halved once per call, followed by ×½ and +½ on those columns. In the
     NumPy backend, with buffers reused across steps, an LSTM's gate activation is then one
     tanh over 4H and two in-place operations, as in the fastest hand-written loop. Where the
     halving cannot be folded the node is left as it is. (The torch backend keeps its
     single-kernel sigmoid and does not run this pass.)
"""

from __future__ import annotations

from ..ir import fresh_name, in_edges, topo_order
from ..ops import Op
from ..sizes import Size
from ..types import VType


def _members(g, concat):
    """(member, start, stop) along the concatenated axis."""
    d = g.nodes[concat]
    axis = 0 if d.get("axis", -1) == 0 else -1
    out, pos = [], 0
    for u, _, _ in in_edges(g, concat):
        size = g.nodes[u]["type"].dims[axis].value
        out.append((u, pos, pos + size))
        pos += size
    return out


def _plan(g, n, lo, hi, todo) -> bool:
    """Collect the shared values to halve so that columns [lo, hi) of n are halved."""
    d = g.nodes[n]
    if g.out_degree(n) != 1:
        return False
    if d["op"] == Op.ADD:
        return all(g.nodes[u]["type"].dims == d["type"].dims and not delay and _plan(g, u, lo, hi, todo)
                   for u, _, delay in in_edges(g, n))
    if d["op"] == Op.MATMUL:
        (w, _, wd), (v, _, _) = in_edges(g, n)
        wt = g.nodes[w]["type"]
        if wd or wt.batched or wt.rank != 2 or not g.nodes[v]["type"].batched:
            return False
        return _rows(g, w, lo, hi, todo)
    if d["op"] in (Op.CONCAT, Op.PARAM) and not d["type"].batched and d["type"].rank == 1:
        return _rows(g, n, lo, hi, todo)
    return False


def _rows(g, n, lo, hi, todo) -> bool:
    """Halve rows [lo, hi) of a shared matrix, or entries of a shared vector."""
    d = g.nodes[n]
    if d["op"] == Op.CONCAT and g.out_degree(n) == 1:
        for m, a, b in _members(g, n):
            if lo <= a and b <= hi:
                todo.append((n, m))
            elif b > lo and a < hi:
                return False
        return True
    size = d["type"].dims[0].value
    if (lo, hi) == (0, size):
        todo.append((None, n))
        return True
    return False


def _halve(g, consumer, m, half, span):
    """Insert m * ½ between m and `consumer` (or every reader of m when consumer is None)."""
    name = fresh_name(g, f"_{m.lstrip('_')}_half")
    g.add_node(name, op=Op.MUL, name=name, type=g.nodes[m]["type"], span=span)
    g.add_edge(m, name, port=0, delay=0)
    g.add_edge(half, name, port=1, delay=0)
    readers = [consumer] if consumer else [v for v in g.successors(m) if v != name]
    for v in readers:
        for u, _, k, d in list(g.in_edges(v, keys=True, data=True)):
            if u == m:
                g.remove_edge(u, v, k)
                g.add_edge(name, v, port=d["port"], delay=d["delay"])


def sigmoid_via_tanh(g):
    g = g.copy()
    for n in topo_order(g):
        d = g.nodes[n]
        if d["op"] not in (Op.SIGMOID, Op.SIGTANH) or d["type"].rank != 1:
            continue
        (x, _, delay), = in_edges(g, n)
        width = d["type"].dims[0].value
        k = d["split"].value if d["op"] == Op.SIGTANH else width
        todo: list = []
        if delay or not _plan(g, x, 0, k, todo):
            continue
        span = d["span"]
        half = fresh_name(g, "_half")
        g.add_node(half, op=Op.CONST, name=half, type=VType((), False, "float", False), span=span, value=0.5)
        for consumer, m in todo:
            _halve(g, consumer, m, half, span)
        consumers = list(g.successors(n))
        g.nodes[n]["op"] = Op.TANH
        g.nodes[n].pop("split", None)
        # columns [0, k) of the tanh become ½·t + ½
        part = fresh_name(g, f"{n}_t")
        g.add_node(part, op=Op.SLICE, name=part, type=d["type"].with_(dims=(Size.const(k),)), span=span,
                   start=Size.const(0), stop=Size.const(k))
        g.add_edge(n, part, port=0, delay=0)
        scaled = fresh_name(g, f"{n}_h")
        g.add_node(scaled, op=Op.MUL, name=scaled, type=g.nodes[part]["type"], span=span)
        g.add_edge(part, scaled, port=0, delay=0)
        g.add_edge(half, scaled, port=1, delay=0)
        sig = fresh_name(g, f"{n}_sig")
        g.add_node(sig, op=Op.ADD, name=sig, type=g.nodes[part]["type"], span=span)
        g.add_edge(scaled, sig, port=0, delay=0)
        g.add_edge(half, sig, port=1, delay=0)
        for v in consumers:
            vd = g.nodes[v]
            if vd["op"] == Op.SLICE and vd["stop"].value <= k:
                for u, _, kk in list(g.in_edges(v, keys=True)):
                    if u == n:
                        g.remove_edge(u, v, kk)
                g.add_edge(sig, v, port=0, delay=0)
            elif vd["op"] == Op.SLICE and vd["start"].value >= k:
                continue
            elif k == width:  # a plain sigmoid: every reader reads the σ values
                for u, _, kk, ed in list(g.in_edges(v, keys=True, data=True)):
                    if u == n:
                        g.remove_edge(u, v, kk)
                        g.add_edge(sig, v, port=ed["port"], delay=ed["delay"])
            else:
                raise AssertionError("lift_slices leaves a sigtanh read only through slices")
    return g
