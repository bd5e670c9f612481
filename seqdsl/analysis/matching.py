"""matching: structural matches of IR values against a pattern's pieces, shared by
`analysis.recognize` (a whole standard cell) and `passes.fuse_lstm_step` (an LSTM step inside a
custom cell).

In:  an IR graph and references (node, delay) into it.
Out: `Matcher(g)`, whose methods check a node's op and every operand, collect the nodes they cover
     in `used` and raise `NoMatch` on any difference (sums flattened, products in both orders,
     identities followed); `attempt(m, f, ...)` and `first(m, tries)` try alternatives, restoring
     `used` when one does not match.
"""

from __future__ import annotations

from ..ir import in_edges
from ..ops import Op


class NoMatch(Exception):
    pass


class Matcher:
    """Matches values, given as references (node, delay), against the pattern's pieces.

    Each method checks a node's op and all its operands, adds the nodes it covers to
    `used`, and raises NoMatch on any difference."""

    def __init__(self, g):
        self.g = g
        self.used: set = set()

    def value(self, ref):
        """Follow identities (at delay 0) to the node that computes the value."""
        n, delay = ref
        while not delay and self.g.nodes[n]["op"] == Op.IDENTITY:
            self.used.add(n)
            ((n, _, delay),) = in_edges(self.g, n)
        return n, delay

    def op(self, ref, op, arity):
        """The operands of the node computing `ref` (at delay 0), which must be an `op`."""
        n, delay = self.value(ref)
        if delay or self.g.nodes[n]["op"] != op:
            raise NoMatch
        edges = in_edges(self.g, n)
        if len(edges) != arity:
            raise NoMatch
        self.used.add(n)
        return [(u, d) for u, _, d in edges]

    def terms(self, ref):
        """The terms of a sum (sums inside it flattened; a state's value is not a sum term)."""
        n, delay = self.value(ref)
        if delay or self.g.nodes[n]["op"] != Op.ADD:
            return [(n, delay)]
        out = []
        for u in self.op((n, 0), Op.ADD, 2):
            un, ud = self.value(u)
            if not ud and self.g.nodes[un]["op"] == Op.ADD and not self.g.nodes[un].get("state"):
                out += self.terms((un, 0))
            else:
                out.append((un, ud))
        return out

    def param(self, ref, dims):
        n, delay = self.value(ref)
        d = self.g.nodes[n]
        if delay or d["op"] != Op.PARAM or d["type"].batched or d["type"].concrete_dims() != dims:
            raise NoMatch
        return n

    def is_param(self, ref) -> bool:
        n, delay = self.value(ref)
        return not delay and self.g.nodes[n]["op"] == Op.PARAM

    def matmul(self, ref, operand, delay, dims):
        """W @ operand[t-delay] with W a parameter of shape `dims` → W."""
        w, v = self.op(ref, Op.MATMUL, 2)
        if self.value(v) != (operand, delay):
            raise NoMatch
        return self.param(w, dims)

    def is_op(self, ref, op) -> bool:
        n, delay = self.value(ref)
        return not delay and self.g.nodes[n]["op"] == op

    def product(self, ref):
        """The two factors of a product, in both orders."""
        a, b = self.op(ref, Op.MUL, 2)
        return ((a, b), (b, a))


def attempt(m, f, *args):
    """f(*args) with m.used restored when it does not match."""
    saved = set(m.used)
    try:
        return f(*args)
    except (NoMatch, ValueError, TypeError):
        m.used = saved
        raise NoMatch from None


def first(m, tries):
    """The first of several alternatives (callables) that matches."""
    for f in tries:
        try:
            return attempt(m, f)
        except NoMatch:
            continue
    raise NoMatch
