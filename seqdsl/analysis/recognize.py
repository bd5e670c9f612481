"""recognize: is a cell exactly a standard RNN (tanh/relu), LSTM or GRU step?

In:  a cell's specialised IR graph (before optimisation).
Out: `recognize(g)` → `Standard` (the kind, the input, state and output names, and the
     spec's parameter names in torch's packed layout: gates i, f, g, o for LSTM and r, z, n
     for GRU; per gate an input-side and a hidden-side bias, either possibly absent), or
     None. A backend maps a recognised cell onto a vendor kernel (the torch backend onto
     torch._VF.lstm / gru / rnn_tanh / rnn_relu, i.e. oneDNN on CPU, cuDNN on GPU).

The answer is a proof, not a guess: the kernel replaces the whole cell, so anything it does
not compute would be silently dropped. Matching is structural but not syntactic: sums are
flattened and products are commutative, so `b + W @ x + U @ h[t-1]` matches in any order,
and the parameters are mapped by the role they play, whatever their names. But:
  - every matched node's op and *every* one of its operands (with its delay) must be what
    the pattern says: a sum's terms are exactly the expected ones (one W @ x, one U @ h[t-1],
    at most the biases the kernel has: two per gate, one outside and one inside r * (..)
    for the GRU candidate), no term left over, none counted twice;
  - every node of the cell other than parameters, the input and outputs is part of the
    match (anything extra — a peephole, a dead value — rejects it);
  - every output is the state h at delay 0 (the kernel gives nothing else), the states are
    exactly h (and c), all read with delay 1, all with initial value 0;
  - shapes are torch's: W_ih [H, I], W_hh [H, H], biases [H], h (and c) [H], x [I].
Anything else is None, and the backend runs the generated loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import in_edges, outputs, states
from ..ops import Op
from .matching import Matcher, NoMatch, first


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


class _Matcher(Matcher):
    """`Matcher` for a whole cell: `x` is the input, `h` the state the weights W_hh multiply (read
    as h[t-1])."""

    def __init__(self, g, x, h):
        super().__init__(g)
        self.x, self.h = x, h

    def affine(self, ref, H, I, max_biases=2):
        """Exactly W @ x + U @ h[t-1] + (0..max_biases biases), any order → (W, U, [biases])."""
        W = U = None
        biases = []
        for t in self.terms(ref):
            if self.is_param(t):
                biases.append(self.param(t, (H,)))
            elif not self.is_op(t, Op.MATMUL):
                raise NoMatch
            elif self.value(self.op(t, Op.MATMUL, 2)[1]) == (self.x, 0) and W is None:
                W = self.matmul(t, self.x, 0, (H, I))
            elif U is None:
                U = self.matmul(t, self.h, 1, (H, H))
            else:
                raise NoMatch
        if W is None or U is None or len(biases) > max_biases:
            raise NoMatch
        return W, U, biases

    def gate(self, ref, act, H, I):
        ((pre),) = self.op(ref, act, 1)
        return self.affine(pre, H, I)


def _pack(std: Standard, gates: list) -> Standard:
    for W, U, biases in gates:
        std.w_ih.append(W)
        std.w_hh.append(U)
        std.b_ih.append(biases[0] if biases else None)
        std.b_hh.append(biases[1] if len(biases) > 1 else None)
    return std


def _lstm(g, x, c, h, H, I):
    """c = f * c[t-1] + i * g; h = o * tanh(c)."""
    m = _Matcher(g, x, h)
    terms = m.terms((c, 0))
    if len(terms) != 2:
        raise NoMatch

    def forget_and_input(forget_term, input_term):
        def f_gate():
            def one(f_ref, cc):
                if m.value(cc) != (c, 1):
                    raise NoMatch
                return m.gate(f_ref, Op.SIGMOID, H, I)
            return first(m, [lambda p=p: one(*p) for p in m.product(forget_term)])

        def ig_gates():
            def one(i_ref, g_ref):
                return m.gate(i_ref, Op.SIGMOID, H, I), m.gate(g_ref, Op.TANH, H, I)
            return first(m, [lambda p=p: one(*p) for p in m.product(input_term)])

        return f_gate(), ig_gates()

    f, (i, gg) = first(m, [lambda: forget_and_input(terms[0], terms[1]),
                            lambda: forget_and_input(terms[1], terms[0])])

    def out_gate(o_ref, t_ref):
        ((cc),) = m.op(t_ref, Op.TANH, 1)
        if m.value(cc) != (c, 0):
            raise NoMatch
        return m.gate(o_ref, Op.SIGMOID, H, I)

    o = first(m, [lambda p=p: out_gate(*p) for p in m.product((h, 0))])
    return m, _pack(Standard("lstm", x, {"h": h, "c": c}, []), [i, f, gg, o])


def _gru_reset(m, H, I, r_ref, hn_ref):
    """r * (W_hn @ h[t-1] + b_hn) as its two factors → (r's gate, W_hn, [b_hn])."""
    r = m.gate(r_ref, Op.SIGMOID, H, I)
    U_hn = None
    b_hn = []
    for t in m.terms(hn_ref):
        if m.is_param(t):
            b_hn.append(m.param(t, (H,)))
        elif m.is_op(t, Op.MATMUL) and U_hn is None:
            U_hn = m.matmul(t, m.h, 1, (H, H))
        else:
            raise NoMatch
    if U_hn is None or len(b_hn) > 1:
        raise NoMatch
    return r, U_hn, b_hn


def _gru_candidate(m, H, I, n_ref):
    """n = tanh(W_in @ x + b_in + r * (W_hn @ h[t-1] + b_hn)) → (r's gate, (W_in, W_hn, [b_in], [b_hn]))."""
    (pre,) = m.op(n_ref, Op.TANH, 1)
    W_in = prod = None
    b_in = []
    for t in m.terms(pre):
        if m.is_param(t):
            b_in.append(m.param(t, (H,)))
        elif m.is_op(t, Op.MATMUL) and W_in is None:
            W_in = m.matmul(t, m.x, 0, (H, I))
        elif m.is_op(t, Op.MUL) and prod is None:
            prod = t
        else:
            raise NoMatch
    if W_in is None or prod is None or len(b_in) > 1:
        raise NoMatch
    r, U_hn, b_hn = first(m, [lambda p=p: _gru_reset(m, H, I, *p) for p in m.product(prod)])
    return r, (W_in, U_hn, b_in, b_hn)


def _gru_update(m, H, I, keep_term, new_term):
    """h = (1 - z) * n + z * h[t-1], given its two terms → (r's gate, z's gate, n's weights)."""
    g, h = m.g, m.h

    def z_of(z_ref, hh):  # z * h[t-1]
        if m.value(hh) != (h, 1):
            raise NoMatch
        return m.value(z_ref)

    z = first(m, [lambda p=p: z_of(*p) for p in m.product(keep_term)])
    if z[1]:
        raise NoMatch

    def new(one_minus, n_ref):  # (1 - z) * n
        one, zz = m.op(one_minus, Op.SUB, 2)
        one = m.value(one)
        if one[1] or g.nodes[one[0]]["op"] != Op.CONST or g.nodes[one[0]]["value"] != 1.0:
            raise NoMatch
        if m.value(zz) != z:
            raise NoMatch
        m.used.add(one[0])
        return _gru_candidate(m, H, I, n_ref)

    r, n_gate = first(m, [lambda p=p: new(*p) for p in m.product(new_term)])
    zg = m.gate(z, Op.SIGMOID, H, I)
    return r, zg, n_gate


def _gru(g, x, h, H, I):
    """r, z = σ(..); n = tanh(W_in @ x + b_in + r * (W_hn @ h[t-1] + b_hn)); h = (1 - z) * n + z * h[t-1]."""
    m = _Matcher(g, x, h)
    terms = m.terms((h, 0))
    if len(terms) != 2:
        raise NoMatch
    r, z, (W_in, U_hn, b_in, b_hn) = first(m, [lambda: _gru_update(m, H, I, terms[1], terms[0]),
                                               lambda: _gru_update(m, H, I, terms[0], terms[1])])
    std = _pack(Standard("gru", x, {"h": h}, []), [r, z])
    std.w_ih.append(W_in)
    std.w_hh.append(U_hn)
    std.b_ih.append(b_in[0] if b_in else None)
    std.b_hh.append(b_hn[0] if b_hn else None)
    return m, std


def _rnn(g, x, h, H, I):
    """h = act(W @ x + U @ h[t-1] + biases), act tanh or relu."""
    for act, kind in ((Op.TANH, "rnn_tanh"), (Op.RELU, "rnn_relu")):
        m = _Matcher(g, x, h)
        try:
            return m, _pack(Standard(kind, x, {"h": h}, []), [m.gate((h, 0), act, H, I)])
        except (NoMatch, ValueError, TypeError):
            continue
    raise NoMatch


def _vector(g, n):
    """The size of a per-step vector [N] (a state or the input), else None."""
    t = g.nodes[n]["type"]
    if not t.batched or t.seq or t.rank != 1 or t.dtype != "float":
        return None
    return t.concrete_dims()[0]


def _match(g, x, sts, H, I):
    if len(sts) == 2:
        for c, h in (sts, sts[::-1]):
            try:
                return _lstm(g, x, c, h, H, I)
            except (NoMatch, ValueError, TypeError):
                continue
        raise NoMatch
    try:
        return _gru(g, x, sts[0], H, I)
    except (NoMatch, ValueError, TypeError):
        return _rnn(g, x, sts[0], H, I)


def recognize(g) -> Standard | None:
    if g.graph["kind"] != "cell":
        return None
    ins = [n for n, d in g.nodes(data=True) if d["op"] == Op.INPUT]
    if len(ins) != 1 or any(d["op"] == Op.MEMORY for _, d in g.nodes(data=True)):
        return None
    x = ins[0]
    sts = states(g)
    if len(sts) not in (1, 2) or any(g.nodes[s]["init"] != 0.0 for s in sts):
        return None
    I = _vector(g, x)
    H = _vector(g, sts[0])
    if I is None or H is None or any(_vector(g, s) != H for s in sts):
        return None
    try:
        m, std = _match(g, x, sts, H, I)
    except (NoMatch, ValueError, TypeError):
        return None
    # the kernel computes the matched states and nothing else: every node must be in the
    # match, every output must be h (now, not h[t-1]), every delayed read must be of t-1
    h = std.states["h"]
    for n in outputs(g):
        ((u, _, delay),) = in_edges(g, n)
        if m.value((u, delay)) != (h, 0):
            return None
        std.outputs.append(g.nodes[n]["output"])
    for n, d in g.nodes(data=True):
        if d["op"] not in (Op.PARAM, Op.INPUT, Op.OUTPUT) and n not in m.used:
            return None
    if any(d["delay"] not in (0, 1) for _, _, d in g.edges(data=True)):
        return None
    return std
