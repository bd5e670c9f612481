"""recognize: is a cell exactly a standard RNN (tanh/relu), LSTM or GRU step?

In:  a cell's specialised IR graph (before optimisation).
Out: `recognize(g)` → `Standard` (the kind, the input, state and output names, and the
     spec's parameter names in torch's packed layout: gates i, f, g, o for LSTM and r, z, n
     for GRU; per gate an input-side and a hidden-side bias, either possibly absent), or
     None. A backend maps a recognised cell onto a vendor kernel (the torch backend onto
     torch._VF.lstm / gru / rnn_tanh / rnn_relu, i.e. oneDNN on CPU, cuDNN on GPU).

Matching is structural but not syntactic: sums are flattened and products are
commutative, so `b + W @ x + U @ h[t-1]` matches in any order. Every compute node of the
cell must belong to the pattern; anything extra (a peephole, a second output) rejects it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import in_edges, states
from ..ops import Op


@dataclass
class Standard:
    kind: str  # "lstm" | "gru" | "rnn_tanh" | "rnn_relu"
    input: str
    states: dict  # torch role ("h", "c") -> state name
    outputs: list  # output names equal to h
    w_ih: list = field(default_factory=list)
    w_hh: list = field(default_factory=list)
    b_ih: list = field(default_factory=list)  # a name or None per gate
    b_hh: list = field(default_factory=list)


class _NoMatch(Exception):
    pass


class _Matcher:
    def __init__(self, g):
        self.g = g
        self.used: set = set()

    def node(self, n):
        """Follow identities; mark what the pattern covers."""
        while self.g.nodes[n]["op"] == Op.IDENTITY:
            self.used.add(n)
            n = in_edges(self.g, n)[0][0]
        self.used.add(n)
        return n

    def op(self, n, *ops):
        if self.g.nodes[n]["op"] not in ops:
            raise _NoMatch
        return [(u, d) for u, _, d in in_edges(self.g, n)]

    def terms(self, n):
        """Flattened terms of a sum tree of temporaries, as (node, delay)."""
        out = []
        for u, d in self.op(n, Op.ADD):
            if not d and self.g.nodes[u]["op"] == Op.ADD and u.startswith("_") and self.g.out_degree(u) == 1:
                self.used.add(u)
                out += self.terms(u)
            else:
                out.append((u, d))
        return out

    def param(self, n, rank):
        d = self.g.nodes[n]
        if d["op"] != Op.PARAM or d["type"].rank != rank:
            raise _NoMatch
        return n

    def affine(self, n, x, h):
        """W @ x + U @ h[t-1] + biases (0-2), any order → (W, U, [biases])."""
        W = U = None
        biases = []
        for u, d in self.terms(n):
            ud = self.g.nodes[u]
            if ud["op"] == Op.MATMUL and not d:
                (w, _), (v, vd) = self.op(u, Op.MATMUL)
                self.used.add(u)
                if v == x and vd == 0 and W is None:
                    W = self.param(w, 2)
                elif v == h and vd == 1 and U is None:
                    U = self.param(w, 2)
                else:
                    raise _NoMatch
            elif ud["op"] == Op.PARAM and not d and ud["type"].rank == 1:
                biases.append(u)
            else:
                raise _NoMatch
        if W is None or U is None or len(biases) > 2:
            raise _NoMatch
        return W, U, biases

    def gate(self, n, act, x, h):
        n = self.node(n)
        ((pre, d),) = self.op(n, act)
        if d:
            raise _NoMatch
        return self.affine(self.node(pre), x, h)

    def product(self, n):
        (a, da), (b, db) = self.op(self.node(n), Op.MUL)
        return (a, da), (b, db)


def _pack(std: Standard, gates: list) -> Standard:
    for W, U, biases in gates:
        std.w_ih.append(W)
        std.w_hh.append(U)
        std.b_ih.append(biases[0] if biases else None)
        std.b_hh.append(biases[1] if len(biases) > 1 else None)
    return std


def _lstm(m, g, x, sts):
    for c, h in (sts, sts[::-1]):
        try:
            m.used = set()
            terms = m.terms(m.node(c))
            if len(terms) != 2 or any(d for _, d in terms):
                raise _NoMatch
            prods = [m.product(t) for t, _ in terms]
            forget = [p for p in prods if (c, 1) in p]  # f * c[t-1]
            if len(forget) != 1:
                raise _NoMatch
            (other,) = [p for p in prods if p is not forget[0]]
            (f_node, fd), = [q for q in forget[0] if q != (c, 1)]
            (p, pd), (q, qd) = other  # i * g
            if fd or pd or qd:
                raise _NoMatch
            f = m.gate(f_node, Op.SIGMOID, x, h)
            try:
                i, gg = m.gate(p, Op.SIGMOID, x, h), m.gate(q, Op.TANH, x, h)
            except _NoMatch:
                i, gg = m.gate(q, Op.SIGMOID, x, h), m.gate(p, Op.TANH, x, h)
            (o_, od), (t_, td) = m.product(h)  # o * tanh(c)
            if m.g.nodes[m.node(t_)]["op"] != Op.TANH:
                (o_, od), (t_, td) = (t_, td), (o_, od)
            ((cc, cd),) = m.op(m.node(t_), Op.TANH)
            if m.node(cc) != c or cd or od or td:
                raise _NoMatch
            o = m.gate(o_, Op.SIGMOID, x, h)
            return _pack(Standard("lstm", x, {"h": h, "c": c}, []), [i, f, gg, o])
        except (_NoMatch, ValueError, TypeError):
            continue
    raise _NoMatch


def _gru(m, g, x, h):
    (t1, d1), (t2, d2) = m.terms(m.node(h))
    base = set(m.used)
    for (p, _), (q, _) in (((t1, d1), (t2, d2)), ((t2, d2), (t1, d1))):
        try:
            (a, da), (b, db) = m.product(p)  # (1 - z) * n
            (u, du), (v, dv) = m.product(q)  # z * h[t-1]
            z_side = u if dv == 1 and v == h else v if du == 1 and u == h else None
            if z_side is None:
                raise _NoMatch
            z = m.node(z_side)
            one_minus, n_node = (a, b) if m.g.nodes[m.node(a)]["op"] == Op.SUB else (b, a)
            (one, _), (zz, _) = m.op(m.node(one_minus), Op.SUB)
            if m.g.nodes[one]["op"] != Op.CONST or m.g.nodes[one]["value"] != 1.0 or m.node(zz) != z:
                raise _NoMatch
            m.used.add(one)
            zg = m.gate(z, Op.SIGMOID, x, h)
            nn = m.node(n_node)
            ((pre, _),) = m.op(nn, Op.TANH)
            W_in = b_in = r_node = hn = None
            for t, _ in m.terms(m.node(pre)):
                td = m.g.nodes[t]
                if td["op"] == Op.MATMUL:
                    (w, _), (v2, vd) = m.op(t, Op.MATMUL)
                    if v2 != x or vd:
                        raise _NoMatch
                    m.used.add(t)
                    W_in = m.param(w, 2)
                elif td["op"] == Op.PARAM:
                    b_in = t
                elif td["op"] == Op.MUL:
                    (r1, _), (r2, _) = m.product(t)
                    r_node, hn = (r1, r2) if m.g.nodes[m.node(r1)]["op"] == Op.SIGMOID else (r2, r1)
                else:
                    raise _NoMatch
            if W_in is None or r_node is None:
                raise _NoMatch
            rg = m.gate(r_node, Op.SIGMOID, x, h)
            hn = m.node(hn)
            U_hn, b_hn = None, None
            if m.g.nodes[hn]["op"] == Op.MATMUL:
                parts = [(hn, 0)]
            else:
                parts = m.terms(hn)
            for t, _ in parts:
                if m.g.nodes[t]["op"] == Op.MATMUL:
                    (w, _), (v2, vd) = m.op(t, Op.MATMUL)
                    if v2 != h or vd != 1:
                        raise _NoMatch
                    m.used.add(t)
                    U_hn = m.param(w, 2)
                elif m.g.nodes[t]["op"] == Op.PARAM:
                    b_hn = t
                else:
                    raise _NoMatch
            if U_hn is None:
                raise _NoMatch
            std = _pack(Standard("gru", x, {"h": h}, []), [rg, zg])
            std.w_ih.append(W_in)
            std.w_hh.append(U_hn)
            std.b_ih.append(b_in)
            std.b_hh.append(b_hn)
            return std
        except (_NoMatch, ValueError, TypeError):
            m.used = set(base)
            continue
    raise _NoMatch


def _rnn(m, g, x, h):
    for act, kind in ((Op.TANH, "rnn_tanh"), (Op.RELU, "rnn_relu")):
        try:
            return _pack(Standard(kind, x, {"h": h}, []), [m.gate(h, act, x, h)])
        except _NoMatch:
            continue
    raise _NoMatch


def recognize(g) -> Standard | None:
    if g.graph["kind"] != "cell":
        return None
    ins = [n for n, d in g.nodes(data=True) if d["op"] == Op.INPUT]
    if len(ins) != 1 or any(d["op"] == Op.MEMORY for _, d in g.nodes(data=True)):
        return None
    x = ins[0]
    sts = states(g)
    if any(g.nodes[s]["init"] != 0.0 for s in sts):
        return None
    m = _Matcher(g)
    try:
        if len(sts) == 2:
            std = _lstm(m, g, x, sts)
        elif len(sts) == 1:
            try:
                std = _gru(m, g, x, sts[0])
            except _NoMatch:
                m.used = set()
                std = _rnn(m, g, x, sts[0])
        else:
            return None
    except (_NoMatch, ValueError, TypeError):
        return None
    # everything computed must be the pattern; outputs may only be h
    h = std.states["h"]
    for n, d in g.nodes(data=True):
        if d["op"] == Op.OUTPUT:
            if m.node(in_edges(g, n)[0][0]) != h:
                return None
            std.outputs.append(d["output"])
        elif d["op"] not in (Op.PARAM, Op.INPUT) and n not in m.used:
            return None
    shapes = [g.nodes[p]["type"] for p in std.w_ih + std.w_hh]
    if len({t.dims[0] for t in shapes}) != 1:
        return None
    return std
