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

from ..analysis.matching import Matcher, NoMatch, first
from ..ir import add_temp, states
from ..ops import Op
from ..sizes import Size
from ..types import VType


def _gates(m, z, h, H):
    """z's terms → (u, W_u, W_h, [biases]): W_u @ u + W_h @ h[t-1] + biases, any order."""
    g = m.g
    u = W_u = W_h = None
    biases = []
    for t in m.terms(z):
        if m.is_param(t):
            biases.append(m.param(t, (4 * H,)))
            continue
        w, v = m.op(t, Op.MATMUL, 2)
        v = m.value(v)
        vt = g.nodes[v[0]]["type"]
        if v == (h, 1) and W_h is None:
            W_h = m.param(w, (4 * H, H))
        elif u is None and not v[1] and vt.batched and not vt.seq and vt.rank == 1 and vt.dtype == "float":
            u, W_u = v, m.param(w, (4 * H, vt.concrete_dims()[0]))
        else:
            raise NoMatch
    if u is None or W_h is None or len(biases) > 2:
        raise NoMatch
    return u, W_u, W_h, biases


def _quarters(m, refs, H):
    """The slices i, f, g, o of one z at [0, H), [H, 2H), [2H, 3H), [3H, 4H) → z."""
    sources = set()
    for k, ref in enumerate(refs):
        (src,) = m.op(ref, Op.SLICE, 1)
        d = m.g.nodes[m.value(ref)[0]]
        if src[1] or (d["start"].value, d["stop"].value) != (k * H, (k + 1) * H):
            raise NoMatch
        sources.add(m.value(src))
    if len(sources) != 1:
        raise NoMatch
    return sources.pop()


def _act(m, ref, op):
    (x,) = m.op(ref, op, 1)
    return x


def _match(g, c, h):
    """(the nodes the pattern removes, u, W_u, W_h, [biases], H) for states c and h, or NoMatch."""
    th, tc = g.nodes[h]["type"], g.nodes[c]["type"]
    if th != tc or th.rank != 1 or not th.batched or th.seq or th.dtype != "float":
        raise NoMatch
    H = th.concrete_dims()[0]
    m = Matcher(g)

    def out_gate(o_act, tanh_c):  # h = sigmoid(o) * tanh(c)
        if m.value(_act(m, tanh_c, Op.TANH)) != (c, 0):
            raise NoMatch
        return _act(m, o_act, Op.SIGMOID)

    def forget(f_act, c_prev):  # sigmoid(f) * c[t-1]
        if m.value(c_prev) != (c, 1):
            raise NoMatch
        return _act(m, f_act, Op.SIGMOID)

    def write(i_act, g_act):  # sigmoid(i) * tanh(g)
        return _act(m, i_act, Op.SIGMOID), _act(m, g_act, Op.TANH)

    def cell(keep, new):  # c = sigmoid(f) * c[t-1] + sigmoid(i) * tanh(g)
        f = first(m, [lambda p=p: forget(*p) for p in m.product(keep)])
        return first(m, [lambda p=p: write(*p) for p in m.product(new)]) + (f,)

    o = first(m, [lambda p=p: out_gate(*p) for p in m.product((h, 0))])
    terms = m.terms((c, 0))
    if len(terms) != 2:
        raise NoMatch
    i, gg, f = first(m, [lambda: cell(*terms), lambda: cell(*terms[::-1])])
    u, W_u, W_h, biases = _gates(m, _quarters(m, [i, f, gg, o], H), h, H)
    removed = m.used - {c, h}
    for n in removed:  # what disappears is no state, and read by the pattern alone
        if g.nodes[n].get("state") or any(r not in m.used for _, r in g.out_edges(n)):
            raise NoMatch
    return removed, u, W_u, W_h, biases, H


def fuse_lstm_step(g):
    g = g.copy()
    for c in states(g):
        for h in states(g):
            if c == h or c not in g or h not in g or g.nodes[c]["op"] != Op.ADD:
                continue
            try:
                removed, u, W_u, W_h, biases, H = _match(g, c, h)
            except NoMatch:
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
