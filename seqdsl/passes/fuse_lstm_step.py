"""fuse_lstm_step: an LSTM's step written out inside a custom cell → one `lstm_cell` node.

In:  a cell's IR graph, before the shared passes (torch, generation's step module: one step per
     call, so nothing is hoisted out of the step that this would keep in).
Out: a copy where states c and h computed as

         z = W_u @ u + W_h @ h[t-1] (+ b (+ b2)),   i, f, g, o = z's four quarters, in that order
         c = sigmoid(f) * c[t-1] + sigmoid(i) * tanh(g)
         h = sigmoid(o) * tanh(c)

     (sums and products in any order: the decoder of specs/attention.seq, whose u is
     concat(x, ctx)) become `hc = lstm_cell(u, h[t-1], c[t-1], W_u, W_h[, b[, b2]])`, the
     value [h, c], and h and c its two halves (slices keeping their names, states and
     attributes). Torch runs the node as one `torch._VF.lstm_cell` call, which computes the same
     gates in torch's order (i, f, g, o) in one kernel instead of a dozen Python-level ops.

Like `analysis.recognize`, the match is a proof: every node it removes is read by the pattern
alone (no output, state or other reader sees a value that disappears), the quarters are exactly
[0, H), [H, 2H), [2H, 3H), [3H, 4H) of one z, the matrices are parameters of shape [4H, U] and
[4H, H], the biases parameters [4H], and h[t-1] and c[t-1] are read with delay 1. Anything else
is left as it is.
"""

from __future__ import annotations

from ..ir import add_temp, in_edges, states
from ..ops import Op
from ..sizes import Size
from ..types import VType


class _NoMatch(Exception):
    pass


class _Match:
    """Walks the pattern from the states down; `removed` collects the nodes it covers."""

    def __init__(self, g):
        self.g = g
        self.removed: set = set()

    def node(self, ref, op, arity, root=False):
        """The operand references of the node computing `ref` (read at delay 0), an `op` with
        `arity` operands; not a state unless it is the pattern's `root` (c or h itself)."""
        n, delay = ref
        d = self.g.nodes[n]
        if delay or d["op"] != op or (d.get("state") and not root) or n in self.removed:
            raise _NoMatch
        edges = in_edges(self.g, n)
        if len(edges) != arity:
            raise _NoMatch
        if not root:
            self.removed.add(n)
        return [(u, k) for u, _, k in edges]

    def factors(self, ref, first_op, root=False):
        """The two factors of a product, the one an `first_op` (not a state) first."""
        a, b = self.node(ref, Op.MUL, 2, root)
        for x, y in ((a, b), (b, a)):
            d = self.g.nodes[x[0]]
            if not x[1] and d["op"] == first_op and not d.get("state"):
                return x, y
        raise _NoMatch

    def act(self, ref, op):
        (x,) = self.node(ref, op, 1)
        return x

    def terms(self, ref, root=False):
        """The terms of a sum, nested sums (not states) flattened."""
        n, delay = ref
        d = self.g.nodes[n]
        if delay or d["op"] != Op.ADD or (d.get("state") and not root):
            return [ref]
        out = []
        for u in self.node(ref, Op.ADD, 2, root):
            out += self.terms(u)
        return out


def _param(g, ref, dims) -> str:
    n, delay = ref
    d = g.nodes[n]
    if delay or d["op"] != Op.PARAM or d["type"].batched or d["type"].concrete_dims() != dims:
        raise _NoMatch
    return n


def _gates(m, g, z, h, H):
    """z's terms → (u, W_u, W_h, [biases]): W_u @ u + W_h @ h[t-1] + biases, any order."""
    u = W_u = W_h = None
    biases = []
    for t in m.terms(z):
        if g.nodes[t[0]]["op"] == Op.PARAM:
            biases.append(_param(g, t, (4 * H,)))
            continue
        w, v = m.node(t, Op.MATMUL, 2)
        vt = g.nodes[v[0]]["type"]
        if v == (h, 1) and W_h is None:
            W_h = _param(g, w, (4 * H, H))
        elif u is None and not v[1] and vt.batched and not vt.seq and vt.rank == 1 and vt.dtype == "float":
            u, W_u = v, _param(g, w, (4 * H, vt.concrete_dims()[0]))
        else:
            raise _NoMatch
    if u is None or W_h is None or len(biases) > 2:
        raise _NoMatch
    return u, W_u, W_h, biases


def _quarters(m, g, refs, H):
    """The slices i, f, g, o of one z at [0, H), [H, 2H), [2H, 3H), [3H, 4H) → z."""
    sources = set()
    for k, ref in enumerate(refs):
        (src,) = m.node(ref, Op.SLICE, 1)
        d = g.nodes[ref[0]]
        if src[1] or (d["start"].value, d["stop"].value) != (k * H, (k + 1) * H):
            raise _NoMatch
        sources.add(src)
    if len(sources) != 1:
        raise _NoMatch
    return sources.pop()


def _match_with(m, g, c, h, H, order):
    # h = sigmoid(o) * tanh(c)
    o_act, tanh_c = m.factors((h, 0), Op.SIGMOID, root=True)
    if m.act(tanh_c, Op.TANH) != (c, 0):
        raise _NoMatch
    o = m.act(o_act, Op.SIGMOID)
    # c = sigmoid(f) * c[t-1] + sigmoid(i) * tanh(g)
    terms = m.terms((c, 0), root=True)
    if len(terms) != 2:
        raise _NoMatch
    f_act, c_prev = m.factors(terms[order], Op.SIGMOID)
    if c_prev != (c, 1):
        raise _NoMatch
    i_act, g_act = m.factors(terms[1 - order], Op.SIGMOID)
    z = _quarters(m, g, [m.act(i_act, Op.SIGMOID), m.act(f_act, Op.SIGMOID), m.act(g_act, Op.TANH), o], H)
    u, W_u, W_h, biases = _gates(m, g, z, h, H)
    for n in m.removed:  # what disappears is read by the pattern alone
        if any(r not in m.removed and r not in (c, h) for _, r in g.out_edges(n)):
            raise _NoMatch
    return m.removed, u, W_u, W_h, biases


def _match(g, c, h):
    """The pattern's pieces for states c and h, or _NoMatch."""
    th, tc = g.nodes[h]["type"], g.nodes[c]["type"]
    if th != tc or th.rank != 1 or not th.batched or th.seq or th.dtype != "float":
        raise _NoMatch
    H = th.concrete_dims()[0]
    for order in (0, 1):  # which of c's two terms is the forget gate's
        try:
            return _match_with(_Match(g), g, c, h, H, order) + (H,)
        except _NoMatch:
            continue
    raise _NoMatch


def fuse_lstm_step(g):
    g = g.copy()
    for c in states(g):
        for h in states(g):
            if c == h or c not in g or h not in g or g.nodes[c]["op"] != Op.ADD:
                continue
            try:
                removed, u, W_u, W_h, biases, H = _match(g, c, h)
            except (_NoMatch, ValueError):
                continue
            _rewrite(g, c, h, removed, u, W_u, W_h, biases, H)
    return g


def _rewrite(g, c, h, removed, u, W_u, W_h, biases, H) -> None:
    span = g.nodes[c]["span"]
    hc = add_temp(g, f"_{h}_{c}_lstm", Op.LSTM_CELL, VType((Size.const(2 * H),), False, "float", True), span)
    for port, (src, delay) in enumerate([u, (h, 1), (c, 1), (W_u, 0), (W_h, 0)] + [(b, 0) for b in biases]):
        g.add_edge(src, hc, port=port, delay=delay)
    for n, start in ((h, 0), (c, H)):
        for src, _, k in list(g.in_edges(n, keys=True)):
            g.remove_edge(src, n, k)
        g.nodes[n].update(op=Op.SLICE, start=Size.const(start), stop=Size.const(start + H))
        g.add_edge(hc, n, port=0, delay=0)
    g.remove_nodes_from(removed)
