"""sigmoid_via_tanh: σ(a) = ½·tanh(a/2) + ½, with the a/2 folded into what produces a.

In:  an IR graph after the shared passes.
Out: a copy where a `sigmoid` (or the sigmoid columns of a `sigtanh`) whose input is made of
     parameter-weighted terms — a sum tree of matmuls by shared (fused) weight matrices and
     of shared (fused) bias vectors — becomes `tanh` of an input whose producing weights and
     biases are halved once per call, followed by ×½ and +½ on those columns. In the NumPy
     backend, with buffers reused across steps, an LSTM's gate activation is then one tanh
     over 4H and two in-place operations, as in the fastest hand-written loop.

Safety: only the sigmoid's own argument changes. Every intermediate node of the halved tree
(the sums, the matmuls, a concat whose members are halved one by one) must be read by
nothing but the tree (one reader, not a state, not an output); a leaf (a weight or a bias)
is never changed in place: the one edge from it into the tree is redirected to a halved copy
(`_W_half = W * ½`, shared by every edge that needs it), so any other reader of that weight
or bias still reads the original. A plain sigmoid node keeps its name and attributes (a
state's `state`, `init`, ...): it becomes the `½·t + ½` that its readers, delayed ones
included, see, and the tanh is a new node. A `sigtanh` must be read only through slices on
one side of its split. Where the halving cannot be folded the node is left as it is. (The
torch backend keeps its single-kernel sigmoid and does not run this pass.)
"""

from __future__ import annotations

from ..ir import add_temp, in_edges, topo_order
from ..ops import Op
from ..sizes import Size
from ..types import VType


def _members(g, concat):
    """(member, port, start, stop) along the concatenated axis."""
    d = g.nodes[concat]
    axis = 0 if d.get("axis", -1) == 0 else -1
    out, pos = [], 0
    for u, port, _ in in_edges(g, concat):
        size = g.nodes[u]["type"].dims[axis].value
        out.append((u, port, pos, pos + size))
        pos += size
    return out


def _private(g, n) -> bool:
    """n's value may change: the tree being halved is its only reader."""
    return g.out_degree(n) == 1 and not g.nodes[n].get("state")


def _plan(g, n, reader, port, lo, hi, todo) -> bool:
    """Collect the edges (source, reader, port) to halve so that columns [lo, hi) of n are halved."""
    d = g.nodes[n]
    if d["op"] == Op.ADD:
        if not _private(g, n):
            return False
        return all(g.nodes[u]["type"].dims == d["type"].dims and not delay and _plan(g, u, n, p, lo, hi, todo)
                   for u, p, delay in in_edges(g, n))
    if d["op"] == Op.MATMUL:
        if not _private(g, n):
            return False
        (w, wp, wd), (v, _, _) = in_edges(g, n)
        wt = g.nodes[w]["type"]
        if wd or wt.batched or wt.rank != 2 or not g.nodes[v]["type"].batched:
            return False
        return _rows(g, w, n, wp, lo, hi, todo)
    if d["op"] in (Op.CONCAT, Op.PARAM) and not d["type"].batched and d["type"].rank == 1:
        return _rows(g, n, reader, port, lo, hi, todo)
    return False


def _rows(g, n, reader, port, lo, hi, todo) -> bool:
    """Halve rows [lo, hi) of a shared matrix, or entries of a shared vector, as read by `reader`."""
    d = g.nodes[n]
    size = d["type"].dims[0].value
    by_rows = d["type"].rank == 1 or d.get("axis", -1) == 0
    if d["op"] == Op.CONCAT and by_rows and _private(g, n):
        found = []
        for m, p, a, b in _members(g, n):
            if lo <= a and b <= hi:
                found.append((m, n, p))
            elif b > lo and a < hi:
                break
        else:
            todo += found
            return True
    if (lo, hi) == (0, size):
        todo.append((n, reader, port))  # the whole value: a halved copy on this one edge
        return True
    return False


def _halve(g, m, reader, port, half, span, copies):
    """Make `reader` read m * ½ (one copy per m) at `port` instead of m."""
    if m not in copies:
        name = add_temp(g, f"_{m.lstrip('_')}_half", Op.MUL, g.nodes[m]["type"], span)
        g.add_edge(m, name, port=0, delay=0)
        g.add_edge(half, name, port=1, delay=0)
        copies[m] = name
    for u, _, k, d in list(g.in_edges(reader, keys=True, data=True)):
        if u == m and d["port"] == port and not d["delay"]:
            g.remove_edge(u, reader, k)
            g.add_edge(copies[m], reader, port=port, delay=0)
            return
    raise AssertionError(f"no edge {m} -> {reader} at port {port}")


def _readers_ok(g, n, k, width) -> bool:
    """A sigtanh is read only through slices on one side of its split (as lift_slices leaves it)."""
    if k == width:
        return True
    if g.nodes[n].get("state"):
        return False
    for v in g.successors(n):
        vd = g.nodes[v]
        if vd["op"] != Op.SLICE or not (vd["stop"].value <= k or vd["start"].value >= k):
            return False
    return all(not d["delay"] for _, _, d in g.out_edges(n, data=True))


def _node(g, name, op, type, span, inputs, **attrs):
    name = add_temp(g, name, op, type, span, **attrs)
    for i, u in enumerate(inputs):
        g.add_edge(u, name, port=i, delay=0)
    return name


def sigmoid_via_tanh(g):
    g = g.copy()
    half = None
    copies: dict = {}  # weight or bias -> its halved copy, shared by every edge that needs it
    for n in topo_order(g):
        d = g.nodes[n]
        if d["op"] not in (Op.SIGMOID, Op.SIGTANH) or d["type"].rank != 1:
            continue
        (x, xport, delay), = in_edges(g, n)
        width = d["type"].dims[0].value
        k = d["split"].value if d["op"] == Op.SIGTANH else width
        todo: list = []
        if delay or not _readers_ok(g, n, k, width) or not _plan(g, x, n, xport, 0, k, todo):
            continue
        span = d["span"]
        if half is None:
            half = _node(g, "_half", Op.CONST, VType((), False, "float", False), span, (), value=0.5)
        for m, reader, port in dict.fromkeys(todo):
            _halve(g, m, reader, port, half, span, copies)
        if k == width:
            # a plain sigmoid: n keeps its name, readers and attributes (state, init, ...) and
            # becomes ½·t + ½ of a new tanh node over the halved argument
            t = _node(g, f"{n}_t", Op.TANH, d["type"], span, ())
            for u, _, kk, ed in list(g.in_edges(n, keys=True, data=True)):
                g.remove_edge(u, n, kk)
                g.add_edge(u, t, **ed)
            scaled = _node(g, f"{n}_h", Op.MUL, d["type"], span, (t, half))
            d["op"] = Op.ADD
            g.add_edge(scaled, n, port=0, delay=0)
            g.add_edge(half, n, port=1, delay=0)
            continue
        # a sigtanh: n becomes tanh; columns [0, k) of it become ½·t + ½
        consumers = list(g.successors(n))
        d["op"] = Op.TANH
        d.pop("split", None)
        part_type = d["type"].with_(dims=(Size.const(k),))
        part = _node(g, f"{n}_t", Op.SLICE, part_type, span, (n,), start=Size.const(0), stop=Size.const(k))
        scaled = _node(g, f"{n}_h", Op.MUL, part_type, span, (part, half))
        sig = _node(g, f"{n}_sig", Op.ADD, part_type, span, (scaled, half))
        for v in consumers:
            if g.nodes[v]["stop"].value <= k:
                for u, _, kk in list(g.in_edges(v, keys=True)):
                    if u == n:
                        g.remove_edge(u, v, kk)
                g.add_edge(sig, v, port=0, delay=0)
    return g
