"""NumPy gradients: backpropagation through time, generated from the same IR.

In:  optimised IR graphs (as for the forward code) and the forward `Codegen`.
Out: for every unit, a `<fname>__grad` function that runs the forward pass keeping what
     the backward pass needs (a "tape" of per-step values) and returns, with the
     outputs, a `backward__(d_outs__, d_seqs__, d_final__, G__)` closure. The closure adds
     every parameter's gradient into `G__` (by full name) and returns the gradients of the
     input sequences, the initial states and the memories, each a dict by name.

`VJP` is the op → emitter table: f(node, g, vals, types) → [(port, expr)], where `g` is
the name of the node's gradient and `vals` the forward values of its inputs (and
`vals[-1]` its own output). In the step loop, a gradient into `h[t-k]` goes to row
i+K-k of a (K+T, B, H) buffer whose first K rows become the initial state's gradient;
a gradient into a hoisted (time-parallel) value goes to row t of a (T, B, ...) buffer
and is carried back after the loop over all steps at once; the gradient of a weight
used inside the loop is one matmul over all T·B rows after the loop.

Names follow codegen's rule (its module docstring): the gradient of value `h` is `h__g`,
its buffers `h__gT` (per step, of a hoisted value), `h__gO` (a value computed once) and
`h__gB` (a loop matmul's rows), an initial state's `h__ginit`, an output's cotangent
`out_y__d`, a run's backward results `enc__back`; the closure's own locals are `ts__`, `i__`.
"""

from __future__ import annotations

from ..ir import in_edges, interface, output_source, outputs, topo_order
from ..ops import OPS, Op
from .layout import Unsupported, align


def _unalign(e: str, t, out) -> str:
    """Undo `codegen.align`: sum a gradient of shape `out` back to the operand's type `t`."""
    if not t.batched:
        return f"_sum_to({e}, {t.concrete_dims()!r})"
    extra = len(out.dims) - len(t.dims)
    if extra > 0:
        e = f"({e}).sum(axis={tuple(range(-extra, 0))!r})"
    if not t.seq and out.seq:
        e = f"({e}).sum(1)"
    return e


def _al(v: str, t, out) -> str:

    return align(v, t, out)


def _vjp_add(n, g, v, ts):
    return [(0, _unalign(g, ts[0], n["type"])), (1, _unalign(g, ts[1], n["type"]))]


def _vjp_sub(n, g, v, ts):
    return [(0, _unalign(g, ts[0], n["type"])), (1, _unalign(f"-{g}", ts[1], n["type"]))]


def _vjp_mul(n, g, v, ts):
    o = n["type"]
    return [(0, _unalign(f"{g} * {_al(v[1], ts[1], o)}", ts[0], o)),
            (1, _unalign(f"{g} * {_al(v[0], ts[0], o)}", ts[1], o))]


def _zero_where_none(g: str, expr: str) -> str:
    """`expr`, a cotangent g times a derivative that is infinite somewhere (1/x at 0, sqrt at 0),
    but 0 where g is 0: an output nobody asked a gradient of (its cotangent is 0) contributes
    nothing, as in torch, where it is not in the graph at all, instead of 0 * inf = NaN."""
    return f"np.where({g} == 0, 0, {expr})"


def _vjp_div(n, g, v, ts):
    o = n["type"]
    a, b = _al(v[0], ts[0], o), _al(v[1], ts[1], o)
    return [(0, _unalign(_zero_where_none(g, f"{g} / {b}"), ts[0], o)),
            (1, _unalign(_zero_where_none(g, f"-{g} * {a} / ({b} * {b})"), ts[1], o))]


def _vjp_matmul(n, g, v, ts):
    (a, x), (ta, tx) = v[:2], ts
    if not ta.batched and tx.batched:
        if ta.rank == 2:
            M, N = ta.concrete_dims()
            return [(1, f"{g} @ {a}"), (0, f"{g}.reshape(-1, {M}).T @ {x}.reshape(-1, {N})")]
        (N,) = ta.concrete_dims()
        return [(1, f"{g}[..., None] * {a}"), (0, f"({g}[..., None] * {x}).reshape(-1, {N}).sum(0)")]
    if ta.batched and not tx.batched:
        N = ta.concrete_dims()[-1]
        M = tx.concrete_dims()[-1] if tx.rank == 2 else 1
        if tx.rank == 2:
            return [(0, f"{g} @ {x}.T"), (1, f"{a}.reshape(-1, {N}).T @ {g}.reshape(-1, {M})")]
        return [(0, f"{g}[..., None] * {x}"), (1, f"({a} * {g}[..., None]).reshape(-1, {N}).sum(0)")]
    if ta.batched and tx.batched:
        if not ta.seq and not tx.seq:
            return [(0, f"{g}[..., None] * {x}"), (1, f"{g}[..., None] * {a}")]
        if ta.seq:
            return [(0, f"{g}[..., None] * {x}[:, None]"), (1, f"({g}[..., None] * {a}).sum(1)")]
        return [(1, f"{g}[..., None] * {a}[:, None]"), (0, f"({g}[..., None] * {x}).sum(1)")]
    return [(0, f"np.outer({g}, {x})" if tx.rank == 1 else f"{g} @ {x}.T"),
            (1, f"{a}.T @ {g}")]


def _vjp_concat(n, g, v, ts):
    out, start = [], 0
    axis = n.get("axis", -1)
    for i, t in enumerate(ts):
        size = t.concrete_dims()[0 if axis == 0 else -1]
        sl = f"[{start}:{start + size}]" if axis == 0 else f"[..., {start}:{start + size}]"
        out.append((i, f"{g}{sl}"))
        start += size
    return out


def _vjp_minmax(wins: str):
    """min (`wins` "<") or max (">"): the gradient goes to the operand that is chosen, half to each
    where they tie (as torch.minimum/maximum)."""
    def vjp(n, g, v, ts):
        o = n["type"]
        a, b = _al(v[0], ts[0], o), _al(v[1], ts[1], o)
        tie = f"0.5 * ({a} == {b})"  # the share of each side, in g's dtype (a float32 module stays float32)
        return [(0, _unalign(f"{g} * (({a} {wins} {b}) + {tie}).astype({g}.dtype)", ts[0], o)),
                (1, _unalign(f"{g} * (({b} {wins} {a}) + {tie}).astype({g}.dtype)", ts[1], o))]
    return vjp


def _vjp_pow(n, g, v, ts):
    k = n["k"]
    if k == 0:  # x ** 0 is 1: no gradient (torch gives zeros, also at x = 0)
        return []
    expr = f"{g} * {k!r} * np.power({v[0]}, {k - 1!r})"
    return [(0, expr if k >= 1 and float(k).is_integer() else _zero_where_none(g, expr))]


def _vjp_mean(n, g, v, ts):
    (N,) = ts[0].concrete_dims()
    return [(0, f"np.broadcast_to((np.asarray({g}) / {N})[..., None], np.shape({g}) + ({N},))")]


def _vjp_attention(n, g, v, ts):
    """q, k and v; a key-padding mask (a 4th operand, `_masked_attention`) gets no gradient."""
    fn, args = ("_masked_attention_bwd", v[:4]) if len(ts) == 4 else ("_attention_bwd", v[:3])
    call = f"{fn}({g}, {', '.join(args)}, {n['heads'].value}, {n['causal']!r})"
    return [(i, f"{call}[{i}]") for i in range(3)]


def _vjp_select(n, g, v, ts):
    """select(m, a, b): the gradient goes to a where m != 0 and to b elsewhere, chosen by np.where
    (never g * m, where an inf in g would make a NaN); the mask gets none."""
    o = n["type"]
    keep = f"{_al(v[0], ts[0], o)} != 0"
    return [(1, _unalign(f"np.where({keep}, {g}, 0)", ts[1], o)),
            (2, _unalign(f"np.where({keep}, 0, {g})", ts[2], o))]


VJP = {  # op -> its vector-Jacobian product (what it reads: OpInfo.grad_reads)
    Op.ADD: _vjp_add,
    Op.SUB: _vjp_sub,
    Op.MUL: _vjp_mul,
    Op.DIV: _vjp_div,
    Op.NEG: lambda n, g, v, ts: [(0, f"-{g}")],
    Op.IDENTITY: lambda n, g, v, ts: [(0, g)],
    Op.TANH: lambda n, g, v, ts: [(0, f"{g} * (1 - {v[-1]} * {v[-1]})")],
    Op.SIGMOID: lambda n, g, v, ts: [(0, f"{g} * {v[-1]} * (1 - {v[-1]})")],
    Op.SIGTANH: lambda n, g, v, ts: [(0, f"_sigtanh_bwd({g}, {v[-1]}, {n['split'].value})")],
    Op.RELU: lambda n, g, v, ts: [(0, f"{g} * ({v[0]} > 0)")],
    Op.EXP: lambda n, g, v, ts: [(0, f"{g} * {v[-1]}")],
    Op.LOG: lambda n, g, v, ts: [(0, _zero_where_none(g, f"{g} / {v[0]}"))],
    Op.ABS: lambda n, g, v, ts: [(0, f"{g} * np.sign({v[0]})")],  # 0 at 0, as torch
    Op.SQRT: lambda n, g, v, ts: [(0, _zero_where_none(g, f"{g} / (2 * {v[-1]})"))],
    Op.GELU: lambda n, g, v, ts: [(0, f"_gelu_bwd({g}, {v[0]})")],
    Op.SOFTPLUS: lambda n, g, v, ts: [(0, f"{g} * (0.5 * np.tanh(0.5 * {v[0]}) + 0.5)")],  # σ(x)
    Op.POW: _vjp_pow,
    Op.CLIP: lambda n, g, v, ts: [(0, f"{g} * (({v[0]} >= {n['lo']!r}) & ({v[0]} <= {n['hi']!r}))")],  # bounds pass
    Op.MINIMUM: _vjp_minmax("<"),
    Op.MAXIMUM: _vjp_minmax(">"),
    Op.MEAN: _vjp_mean,
    Op.MATMUL: _vjp_matmul,
    Op.CONCAT: _vjp_concat,
    Op.SLICE: lambda n, g, v, ts: [(0, ("slice", n["start"].value, n["stop"].value, g))],
    Op.SOFTMAX: lambda n, g, v, ts: [(0, f"{v[-1]} * ({g} - ({g} * {v[-1]}).sum(-1, keepdims=True))")],
    Op.SUM: lambda n, g, v, ts: [(0, f"np.broadcast_to({g}[:, None], {v[0]}.shape)")],
    Op.LAST: lambda n, g, v, ts: [(0, f"_put_last({g}, {v[0]}.shape)")],
    Op.LAYERNORM: lambda n, g, v, ts: [(i, f"_layernorm_bwd({g}, {v[0]}, {v[1]})[{i}]") for i in range(3)],
    Op.EMBED: lambda n, g, v, ts: [(1, f"_embed_bwd({g}, {v[0]}, {ts[1].concrete_dims()[0]})")],
    Op.ONEHOT: lambda n, g, v, ts: [],
    Op.SHIFT: lambda n, g, v, ts: [] if ts[0].dtype == "int" else [(0, f"_shift_bwd({g})")] + (
        [(1, f"{g}[:, 0]")] if len(ts) == 2 else []),
    Op.ATTENTION: _vjp_attention,
    Op.SELECT: _vjp_select,
}


class Contribs:
    """Gradient contributions per node: full expressions and slices of a last axis."""

    def __init__(self):
        self.items: dict = {}

    def add(self, node, expr) -> None:
        self.items.setdefault(node, []).append(expr)

    def emit(self, name: str, node: str, dims_last: int | None, shape_of: str) -> list:
        parts = self.items.pop(node, [])
        if not parts:
            return []
        full = [p for p in parts if not isinstance(p, tuple)]
        slices = sorted((p for p in parts if isinstance(p, tuple)), key=lambda p: p[1])
        if slices and not full and dims_last is not None and _tiles(slices, dims_last):
            return [f"{name} = np.concatenate([{', '.join(p[3] for p in slices)}], axis=-1)"]
        lines = []
        if slices:
            # shaped after a gradient part (the forward value need not have been kept)
            like = slices[0][3]
            width = dims_last if dims_last is not None else f"{shape_of}.shape[-1]"
            lines.append(f"{name} = np.zeros({like}.shape[:-1] + ({width},), dtype={like}.dtype)")
            for _, a, b, e in slices:
                lines.append(f"{name}[..., {a}:{b}] += {e}")
            if full:
                lines.append(f"{name} += {' + '.join(full)}")
        else:
            lines.append(f"{name} = {' + '.join(full)}")
        return lines


def _tiles(slices, size) -> bool:
    pos = 0
    for _, a, b, _ in slices:
        if a != pos:
            return False
        pos = b
    return pos == size


# ---- code generation ---------------------------------------------------------------------

def _vals(g, n, ctx_val) -> tuple:
    names, types = [], []
    for u, _, delay in in_edges(g, n):
        names.append(ctx_val(u, delay))
        types.append(g.nodes[u]["type"])
    return names, types


def _vjp(g, n, gname, vals, types) -> list:
    d = g.nodes[n]
    if d["op"] not in VJP:
        raise Unsupported(f"the numpy backend has no gradient for op '{d['op'].value}'", d["span"])
    return VJP[d["op"]](d, gname, vals, types)


def _last_dim(g, n):
    dims = g.nodes[n]["type"].concrete_dims()
    return dims[-1] if dims else None


def cell_backward(g, v, sc) -> list:
    """The body of a cell's `backward__` closure (see the module docstring) for its schedule
    `sc` (seqdsl.schedule.CellSchedule, made for a gradient); `v`: node → variable."""
    return CellBackward(g, v, sc).lines()


class CellBackward:
    """Backpropagation through time over a cell's schedule: the step loop in reverse (state
    gradients `h__G` per delay slot, values read back from the tape), then what was computed
    over all steps or once, whole arrays at a time."""

    def __init__(self, g, v, sc):
        self.g, self.v, self.sc = g, v, sc
        self.K = {s: sc.max_delay[s] for s in sc.states}
        self.like = f"{v(sc.inputs[0])}__in"
        self.contribs = Contribs()
        self.used: set = set()  # the gradient buffers the loop writes (a value nothing reads gets none)

    def lines(self) -> list:
        L = ["ts__ = list(range(T - 1, -1, -1)) if reverse__ else list(range(T))"]
        L += self.state_cotangents() + self.output_cotangents()
        t_bufs, o_accs, mm_bufs = self.loop_targets()
        loop = self.loop(mm_bufs)
        t_bufs = {u for u in t_bufs if ("T", u) in self.used}
        o_accs = {u for u in o_accs if ("O", u) in self.used}
        mm_bufs = {n: w for n, w in mm_bufs.items() if ("B", n) in self.used}
        v, order = self.v, self.sc.order
        L += [f"{v(u)}__gT = np.zeros_like({v(u)})" for u in sorted(t_bufs, key=order.index)]
        L += [f"{v(u)}__gO = 0" for u in sorted(o_accs, key=order.index)]
        for n in mm_bufs:  # every row is written: the matmul's gradient is emitted at every step
            dims = self.g.nodes[n]["type"].concrete_dims()
            L.append(f"{v(n)}__gB = np.empty((T, B) + {dims!r}, dtype={self.like}.dtype)")
        L.append("for i__ in range(T - 1, -1, -1):")
        L += ["    " + x for x in loop]
        L += [f"{v(s)}__ginit = {v(s)}__G[:{self.K[s]}].sum(0)" for s in self.sc.states]
        self.weight_gradients(mm_bufs)
        L += self.hoisted(t_bufs, o_accs)
        mems = ", ".join(f"{m!r}: {v(m)}__g" for m in self.sc.memories)
        inits = ", ".join(f"{s!r}: {v(s)}__ginit" for s in self.sc.states)
        xs = ", ".join(f"{x!r}: {v(x)}__g.swapaxes(0, 1)" for x in self.sc.inputs)
        return L + [f"return _Grads(inputs={{{xs}}}, state={{{inits}}}, memories={{{mems}}})"]

    def state_cotangents(self) -> list:
        """h__H: the states' history (initial ones first); h__G: their gradients per slot."""
        v, K, L = self.v, self.K, []
        for s in self.sc.states:
            L.append(f"{v(s)}__P = {v(s)}__list[::-1] if reverse__ else {v(s)}__list")
            L.append(f"{v(s)}__H = [{v(s)}__init] * {K[s]} + {v(s)}__P")
            L.append(f"{v(s)}__G = np.zeros(({K[s]} + T,) + {v(s)}__init.shape, dtype={v(s)}__init.dtype)")
            L.append(f"if d_seqs__.get({s!r}) is not None:")
            L.append(f"    {v(s)}__G[{K[s]}:] += np.moveaxis(d_seqs__[{s!r}][:, ts__], 1, 0)")
            L.append(f"if d_final__.get({s!r}) is not None:")
            L.append(f"    {v(s)}__G[{K[s]} + T - 1] += d_final__[{s!r}]")
        return L

    def output_cotangents(self) -> list:
        g, v, like, L = self.g, self.v, self.like, []
        for o in outputs(g):
            name, src = g.nodes[o]["output"], output_source(g, o)
            where = self.sc.where[src]
            L.append(f"{v(o)}__d = d_outs__.get({name!r})")
            if where == "step":
                # an output with a memory axis has that axis's length, known at run time
                t = g.nodes[o]["type"]
                dims = f"{v(o)}__list[0].shape[1:]" if t.seq else repr(t.concrete_dims())
                L.append(f"{v(o)}__d = np.zeros((B, T) + {dims}, dtype={like}.dtype) if {v(o)}__d is None "
                         f"else {v(o)}__d")
            elif where == "time":  # computed before the loop, time-major (T, B, ...), in time order
                L.append(f"{v(o)}__d = np.zeros_like({v(src)}) if {v(o)}__d is None "
                         f"else {v(o)}__d.swapaxes(0, 1)")
                self.contribs.add(src, f"{v(o)}__d")
            else:  # computed once, the same value at every step: its gradient sums over the steps
                batched = g.nodes[src]["type"].batched
                shape = f"(B, T) + {v(src)}.shape[1:]" if batched else f"(B, T) + np.shape({v(src)})"
                L.append(f"{v(o)}__d = np.zeros({shape}, dtype={like}.dtype) if {v(o)}__d is None "
                         f"else {v(o)}__d")
                self.contribs.add(src, f"{v(o)}__d.sum(1)" if batched else f"{v(o)}__d.sum((0, 1))")
        return L

    def loop_targets(self) -> tuple:
        """Where gradients flowing from the loop into hoisted values go: per step (`__gT`, time
        values), summed (`__gO`, once values), or per step for one weight matmul at the end (`__gB`)."""
        g, where = self.g, self.sc.where
        t_bufs, o_accs, mm_bufs = set(), set(), {}
        for n in self.sc.step:
            for port, (u, _, delay) in enumerate(in_edges(g, n)):
                if delay:
                    continue
                if where[u] == "time":
                    t_bufs.add(u)
                elif where[u] == "once" and not OPS[g.nodes[u]["op"]].constant:
                    ut = g.nodes[u]["type"]
                    x, _, x_delay = in_edges(g, n)[1] if g.nodes[n]["op"] == Op.MATMUL else (None, 0, 0)
                    # W @ x with x per step (or delayed): one matmul over all steps at the end;
                    # with x computed once too, W's gradient is summed over the steps like any other
                    if (g.nodes[n]["op"] == Op.MATMUL and port == 0 and not ut.batched and ut.rank == 2
                            and (x_delay or where[x] != "once")):
                        mm_bufs[n] = u
                    else:
                        o_accs.add(u)
        return t_bufs, o_accs, mm_bufs

    def step_val(self, u, delay) -> str:
        """Node u's value at the step being differentiated, read `delay` steps back."""
        v, where = self.v, self.sc.where
        if delay:
            return f"{v(u)}__H[i__ + {self.K[u] - delay}]"
        if where[u] == "time":
            return f"{v(u)}[t]"
        if where[u] == "once":
            return v(u)
        return f"{v(u)}__tape[i__]"

    def loop(self, mm_bufs) -> list:
        g, v, K, contribs = self.g, self.v, self.K, self.contribs
        loop = ["t = ts__[i__]"]
        for o in outputs(g):
            src = output_source(g, o)
            if self.sc.where[src] == "step":
                contribs.add(src, f"{v(o)}__d[:, t]")
        for n in self.sc.backward_steps:
            if g.nodes[n].get("state"):
                contribs.add(n, f"{v(n)}__G[i__ + {K[n]}]")
            lines = contribs.emit(f"{v(n)}__g", n, _last_dim(g, n), self.step_val(n, 0))
            if not lines:
                continue
            loop += lines
            vals, types = _vals(g, n, self.step_val)
            for port, expr in _vjp(g, n, f"{v(n)}__g", vals + [self.step_val(n, 0)], types):
                loop += self.send(n, port, expr, mm_bufs)
        return loop

    def send(self, n, port, expr, mm_bufs) -> list:
        """Node n's gradient contribution to its operand at `port`."""
        u, _, delay = in_edges(self.g, n)[port]
        v, where = self.v, self.sc.where
        if OPS[self.g.nodes[u]["op"]].constant:
            return []
        if delay:
            return [_add_into(f"{v(u)}__G[i__ + {self.K[u] - delay}]", expr)]
        if where[u] == "step":
            self.contribs.add(u, expr)
            return []
        if where[u] == "time":
            self.used.add(("T", u))
            return [_add_into(f"{v(u)}__gT[t]", expr)]
        if n in mm_bufs and port == 0:
            self.used.add(("B", n))
            return [f"{v(n)}__gB[i__] = {v(n)}__g"]
        self.used.add(("O", u))
        return [_add_into(f"{v(u)}__gO", expr, accumulate=True)]

    def weight_gradients(self, mm_bufs) -> None:
        """The weight gradients of matmuls inside the loop: one matmul over all T*B rows."""
        g, v, K = self.g, self.v, self.K
        for n, w in mm_bufs.items():
            u, _, delay = in_edges(g, n)[1]
            if delay:
                xs = f"np.stack({v(u)}__H[{K[u] - delay}:{K[u] - delay} + T])"
            elif self.sc.where[u] == "time":
                xs = f"{v(u)}[ts__]"
            else:
                xs = f"np.stack({v(u)}__tape)"
            M, N = g.nodes[w]["type"].concrete_dims()
            self.contribs.add(w, f"{v(n)}__gB.reshape(-1, {M}).T @ {xs}.reshape(-1, {N})")

    def hoisted(self, t_bufs, o_accs) -> list:
        """Values computed once or over all steps, in reverse order, whole arrays at a time."""
        g, v, sc, contribs, L = self.g, self.v, self.sc, self.contribs, []
        hoisted = [n for n in sc.order if sc.where[n] in ("time", "once") and g.nodes[n]["op"] != Op.OUTPUT]
        for n in reversed(hoisted):
            d = g.nodes[n]
            if n in t_bufs:
                contribs.add(n, f"{v(n)}__gT")
            if n in o_accs:
                contribs.add(n, f"{v(n)}__gO")
            lines = contribs.emit(f"{v(n)}__g", n, _last_dim(g, n), v(n))
            if not lines:
                if OPS[d["op"]].fed:  # read, but nothing it reaches has a gradient
                    L.append(f"{v(n)}__g = np.zeros_like({v(n)})")
                continue
            L += lines
            if d["op"] == Op.PARAM:
                L.append(f"G__[pre__ + {n!r}] = G__.get(pre__ + {n!r}, 0) + {v(n)}__g")
                continue
            if not OPS[d["op"]].differentiable:
                continue
            vals, types = _vals(g, n, lambda u, delay: v(u))
            for port, expr in _vjp(g, n, f"{v(n)}__g", vals + [v(n)], types):
                u = in_edges(g, n)[port][0]
                if not OPS[g.nodes[u]["op"]].constant:
                    contribs.add(u, expr)
        return L


def _add_into(target: str, expr, accumulate: bool = False) -> str:
    if isinstance(expr, tuple):
        _, a, b, e = expr
        if accumulate:
            raise Unsupported("slice gradient into a shared value")
        return f"{target}[..., {a}:{b}] += {e}"
    return f"{target} = {target} + {expr}" if accumulate else f"{target} += {expr}"


def straight_backward(cg, u, g) -> list:
    """The body of a block's or model's `backward__` closure: reverse order over whole arrays."""
    v = u.names.__getitem__
    L = []
    contribs = Contribs()
    have: set = set()  # nodes whose gradient has been emitted
    order = topo_order(g)
    for o in outputs(g):
        name = g.nodes[o]["output"]
        L.append(f"{v(o)}__d = d_outs__.get({name!r})")
        L.append(f"{v(o)}__d = np.zeros_like({v(output_source(g, o))}) if {v(o)}__d is None else {v(o)}__d")
        contribs.add(output_source(g, o), f"{v(o)}__d")
    gets: dict = {}
    for n in order:
        if g.nodes[n]["op"] == Op.GET:
            gets.setdefault(in_edges(g, n)[0][0], []).append(n)
    ins = []
    for n in reversed(order):
        d = g.nodes[n]
        op = d["op"]
        if op == Op.OUTPUT:
            continue
        if op == Op.CALL:
            L += _call_backward(cg, g, v, n, d, gets.get(n, []), have, contribs)
            continue
        lines = contribs.emit(f"{v(n)}__g", n, _last_dim(g, n), v(n))
        if op == Op.INPUT:
            if d["type"].dtype != "int":
                ins.append(n)
                L += lines or [f"{v(n)}__g = np.zeros_like({v(n)})"]
            continue
        if not lines:
            continue
        L += lines
        have.add(n)
        if op == Op.PARAM:
            L.append(f"G__[pre__ + {n!r}] = G__.get(pre__ + {n!r}, 0) + {v(n)}__g")
            continue
        if not OPS[op].differentiable or op == Op.GET:
            continue
        vals, types = _vals(g, n, lambda s_, k: v(s_))
        for port, expr in _vjp(g, n, f"{v(n)}__g", vals + [v(n)], types):
            src = in_edges(g, n)[port][0]
            if not OPS[g.nodes[src]["op"]].constant and g.nodes[src]["type"].dtype != "int":
                contribs.add(src, expr)
    L.append(f"return _Grads(inputs={{{', '.join(f'{n!r}: {v(n)}__g' for n in ins)}}}, state={{}}, memories={{}})")
    return L


def _call_backward(cg, g, v, n, d, gets, have, contribs) -> list:
    """Call a run's (or block's) backward with the gradients its fields received."""
    callee = cg.callee(d)
    iface = interface(callee.graph)
    douts, dseqs, fin = [], [], {}
    for gn in gets:
        if gn not in have:
            continue
        field = g.nodes[gn]["field"]
        if field.startswith("final."):
            fin[field[6:]] = f"{v(gn)}__g"
        elif field in iface["outputs"]:
            douts.append(f"{field!r}: {v(gn)}__g")
        else:
            dseqs.append(f"{field!r}: {v(gn)}__g")
    # a model's own final-state cotangents are keyed by instance path: 'enc.h'
    dfin = [f"{s!r}: _add_opt(d_final__.get({d['instance'] + '.' + s!r}), {fin.get(s, 'None')})"
            for s in iface["states"]]
    args = ", ".join("{" + ", ".join(part) + "}" for part in (douts, dseqs, dfin))
    lines = [f"{v(n)}__back = {v(n)}.backward({args}, G__)"]
    for src, port, _ in in_edges(g, n):
        part = "inputs" if port in iface["inputs"] else "state" if port in iface["states"] else "memories"
        if g.nodes[src]["type"].dtype != "int":
            contribs.add(src, f"{v(n)}__back.{part}[{port!r}]")
    return lines
