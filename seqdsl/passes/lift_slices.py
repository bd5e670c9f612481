"""lift_slices: one elementwise op over adjacent slices of a tensor instead of one per slice.

In:  an IR graph (typically after fuse_matmuls, which slices one matmul into gates).
Out: a copy where a group of nodes with the same elementwise op, each reading slices of
     the same tensors at ranges that tile one contiguous range, becomes a single node over
     that range, and each original node a `slice` of it (keeping its name). A shared
     vector operand per slice (a bias) is concatenated once. Then `sigmoid` over the first
     columns and `tanh` over the rest of one tensor become one `sigtanh` node. Repeated to
     a fixed point, the four gate additions and activations of an LSTM become one addition
     and one `sigtanh` over 4H columns.

Every node the pass turns into a slice keeps its name and value, so its readers (outputs,
delayed reads) are unaffected; states are never lifted. The sigmoid/tanh merge removes the
two slices it replaces, so it applies only when those slices are temporaries read once, at
delay 0 (a state slice, or one read as a[t-1], stays). Nodes nothing reads are dropped,
but never a state or a `call` (a model's run whose results are unused still has final
states and parameters).
"""

from __future__ import annotations

from ..ir import add_temp, in_edges, topo_order
from ..ops import OPS, Op
from ..sizes import Size


def _slice_of(g, n, delay):
    d = g.nodes[n]
    if delay or d["op"] != Op.SLICE:
        return None
    return in_edges(g, n)[0][0], d["start"].value, d["stop"].value



def _groups(g):
    """Candidate groups: same op, operand i of every member a slice of one tensor X_i."""
    found: dict = {}
    for n in g.nodes:
        d = g.nodes[n]
        if not OPS[d["op"]].liftable or d.get("state") or d["type"].rank != 1:
            continue
        key, ranges = [d["op"]], None
        ok = True
        for u, _, delay in in_edges(g, n):
            sl = _slice_of(g, u, delay)
            if sl is not None:
                key.append(("slice", sl[0]))
                if ranges is not None and ranges != sl[1:]:
                    ok = False
                ranges = sl[1:]
            elif not g.nodes[u]["type"].batched and g.nodes[u]["type"].rank == 1 and not delay:
                key.append(("shared",))
            elif g.nodes[u]["op"] == Op.CONST:
                key.append(("const", g.nodes[u]["value"]))
            else:
                ok = False
        if ok and ranges is not None:
            found.setdefault(tuple(key), []).append((ranges, n))
    return found


def _contiguous_runs(members):
    members = sorted(members)
    runs, cur = [], [members[0]]
    for m in members[1:]:
        if m[0][0] == cur[-1][0][1]:
            cur.append(m)
        else:
            runs.append(cur)
            cur = [m]
    runs.append(cur)
    return [r for r in runs if len(r) > 1]


def _lift_once(g) -> bool:
    for key, members in sorted(_groups(g).items(), key=lambda kv: str(kv[0])):
        for run in _contiguous_runs(members):
            _lift(g, key[0], run)
            return True
    return False


def _lift(g, op, run):
    a, b = run[0][0][0], run[-1][0][1]
    first = g.nodes[run[0][1]]
    span = first["span"]
    width = Size.const(b - a)
    new_inputs = []
    for port, (u, _, delay) in enumerate(in_edges(g, run[0][1])):
        sl = _slice_of(g, u, delay)
        if sl is not None:
            x = sl[0]
            full = g.nodes[x]["type"].dims[-1].value
            if (a, b) == (0, full):
                new_inputs.append((x, 0))
            else:
                name = add_temp(g, f"{x.lstrip('_')}_{a}_{b}" if not x.startswith("_") else f"{x}_{a}_{b}",
                                Op.SLICE, g.nodes[x]["type"].with_(dims=(width,)), span,
                                start=Size.const(a), stop=Size.const(b))
                g.add_edge(x, name, port=0, delay=0)
                new_inputs.append((name, 0))
        elif g.nodes[u]["op"] == Op.CONST:
            new_inputs.append((u, 0))
        else:
            parts = [in_edges(g, n)[port][0] for _, n in run]
            name = add_temp(g, "_" + "_".join(p.lstrip("_") for p in parts[:2]) + "_cat", Op.CONCAT,
                            g.nodes[u]["type"].with_(dims=(width,)), span)
            for i, p in enumerate(parts):
                g.add_edge(p, name, port=i, delay=0)
            new_inputs.append((name, 0))
    base = run[0][1].lstrip("_")
    lifted = add_temp(g, f"_{base}_{a}_{b}" if run[0][1].startswith("_") else f"_{base}_lift", op,
                      first["type"].with_(dims=(width,)), span)
    for i, (u, delay) in enumerate(new_inputs):
        g.add_edge(u, lifted, port=i, delay=delay)
    for (start, stop), n in run:
        for u, _, k in list(g.in_edges(n, keys=True)):
            g.remove_edge(u, n, k)
        d = g.nodes[n]
        for key in [k for k in d if k not in ("op", "name", "type", "span", "state", "init", "decl", "temp")]:
            del d[key]
        d.update(op=Op.SLICE, start=Size.const(start - a), stop=Size.const(stop - a))
        g.add_edge(lifted, n, port=0, delay=0)
    _prune(g)


def _prune(g):
    """Drop nodes nothing reads any more (left-over slices and their sums). Never a `call`: a
    run in a model whose results are unused still has final states and parameters."""
    changed = True
    while changed:
        changed = False
        for n in list(g.nodes):
            d = g.nodes[n]
            if g.out_degree(n) == 0 and d["op"] not in (Op.OUTPUT, Op.PARAM, Op.INPUT, Op.MEMORY, Op.CALL) \
                    and not d.get("state"):
                g.remove_node(n)
                changed = True


def _delayed(g, lo, hi) -> bool:
    """Is any edge x → slice → activation delayed?"""
    edges = [e for s in (lo, hi) for e in (*g.in_edges(s, data=True), *g.out_edges(s, data=True))]
    return any(d["delay"] for _, _, d in edges)


def _merge_activations(g) -> bool:
    """sigmoid(x[..., 0:k]) and tanh(x[..., k:n]) → sigtanh(x, split=k), sliced."""
    for x in topo_order(g):
        sl = [s for s in g.successors(x) if g.nodes[s]["op"] == Op.SLICE]
        if len(sl) != 2 or g.out_degree(x) != 2:
            continue
        lo, hi = sorted(sl, key=lambda s: g.nodes[s]["start"].value)
        width = g.nodes[x]["type"].dims[-1].value
        k = g.nodes[lo]["stop"].value
        if g.nodes[lo]["start"].value != 0 or g.nodes[hi]["start"].value != k or g.nodes[hi]["stop"].value != width:
            continue
        if any(g.nodes[s].get("state") or g.out_degree(s) != 1 for s in (lo, hi)) or _delayed(g, lo, hi):
            continue  # the slices vanish: nothing else may read them, nor read them at t-k
        acts = [list(g.successors(s)) for s in (lo, hi)]
        sig, th = acts[0][0], acts[1][0]
        if g.nodes[sig]["op"] != Op.SIGMOID or g.nodes[th]["op"] != Op.TANH:
            continue
        d = g.nodes[x]
        name = add_temp(g, f"{x}_act" if x.startswith("_") else f"_{x}_act", Op.SIGTANH, d["type"], d["span"],
                        split=Size.const(k))
        g.add_edge(x, name, port=0, delay=0)
        for act, s in ((sig, lo), (th, hi)):
            for u, _, kk in list(g.in_edges(act, keys=True)):
                g.remove_edge(u, act, kk)
            g.nodes[act].update(op=Op.SLICE, start=g.nodes[s]["start"], stop=g.nodes[s]["stop"])
            g.add_edge(name, act, port=0, delay=0)
            g.remove_node(s)
        return True
    return False


def _fold_slices(g) -> None:
    """slice(slice(x, a:b), c:d) → slice(x, a+c : a+d)."""
    for n in topo_order(g):
        d = g.nodes[n]
        if d["op"] != Op.SLICE:
            continue
        (u, _, delay), = in_edges(g, n)
        inner = g.nodes[u]
        if delay or inner["op"] != Op.SLICE:
            continue
        (x, _, xd), = in_edges(g, u)
        for a, _, k in list(g.in_edges(n, keys=True)):
            g.remove_edge(a, n, k)
        g.add_edge(x, n, port=0, delay=xd)
        d.update(start=inner["start"] + d["start"], stop=inner["start"] + d["stop"])
    _prune(g)


def lift_slices(g):
    g = g.copy()
    while _lift_once(g) or _merge_activations(g):
        pass
    _fold_slices(g)
    return g
