"""In-place planning for a cell's step: where each value lives, when it is read, and when a
node may write its result into an existing array.

In:  a cell's optimised IR graph (with `hoist`), its step nodes in order, each state's largest
     delay, and the states whose delayed buffers must never be written (`shared`, found by
     seqdsl.backends.buffers, which drives this module).
Out: `Reads`, what the graph fixes: each value's last read. Values are step nodes (keyed by
     name) and delayed reads (keyed (state, k)). A value is read by each node that takes it as
     an operand, at that node's position, and — if it is a state or an output's source — at the
     end of the step (`end`, after every node: the output copy, `s__seq[t] = s`, the rotation
     `s__d1 = s`). Taking a view (a slice, an identity) reads nothing; the view's readers do.
     `Step`, the plan being made, node by node in step order:
       `region(v)`  where value v lives: (buffer, lo, hi), a buffer and a column range of its
                    last axis (lo = None: all of it). Buffers are ("new", n), the array step
                    node n allocates (its static buffer if it gets one); ("delay", s, k), the
                    array `s__dk` holds at the start of the step (s's value k steps ago); and
                    ("ext", u), a value computed before the loop (a hoisted `__steps[t]` view,
                    a parameter, the memory, an input), never written. A view lives where its
                    operand lives (numpy views alias), from the moment the operand is computed;
                    a node written into an operand, where that operand lives.
       `can_write(n, r)`  may node n, at its position, write into region r? Only when every
                    other value living in overlapping columns is read for the last time before
                    n (or by n itself, for an elementwise write: numpy ufuncs handle overlap),
                    the buffer is not "ext", and — for a delayed buffer — it is the state's
                    oldest (`s__dK`, K its largest delay, which the rotation at the end of the
                    step drops), the state is not shared, and the write is direct (an operand
                    read at t-K, or the state itself) or comes after one: the codegen copies the
                    initial state of exactly those states before the loop.
     `choose(step, n)` → the operand port node n may overwrite, or None. A state only ever
     overwrites its own oldest delayed buffer.
"""

from __future__ import annotations

from ..ir import in_edges
from ..ops import OPS, Op


def key(u, delay):
    """The value an edge reads: the node itself, or (state, k) for a delayed read."""
    return (u, delay) if delay else u


class Reads:
    """What the graph says about the step, whatever the plan: positions, operands, last reads."""

    def __init__(self, g, step_nodes: list, max_delay: dict):
        self.g = g
        self.max_delay = max_delay
        self.index = {n: i for i, n in enumerate(step_nodes)}
        self.end = len(step_nodes)
        self.ins = {n: in_edges(g, n) for n in step_nodes}
        self.last: dict = {}  # value -> the last position it is read at
        self.views: dict = {}  # value -> the view nodes taken of it
        for n in step_nodes:
            if OPS[g.nodes[n]["op"]].view:  # taking a view reads nothing: the view's readers do
                u, _, k = self.ins[n][0]
                self.views.setdefault(key(u, k), []).append(n)
                continue
            for u, _, k in self.ins[n]:
                self.last[key(u, k)] = self.index[n]
        for n in step_nodes:
            if g.nodes[n].get("state") or any(g.nodes[v]["op"] == Op.OUTPUT for v in g.successors(n)):
                self.last[n] = self.end
        self.delayed = sorted({key(u, k) for n in step_nodes for u, _, k in self.ins[n] if k})


class Step:
    """The plan being made: decisions so far, and where each decided value lives."""

    def __init__(self, reads: Reads, shared: frozenset = frozenset()):
        self.reads = reads
        self.g = reads.g
        self.index = reads.index
        self.last = reads.last
        self.max_delay = reads.max_delay
        self.shared = shared
        self.inplace: dict = {}  # node -> port of the operand it overwrites
        self.own: dict = {}  # state -> k: written into its own buffer s__dk
        self.written: set = set()  # states with a direct write into their oldest delayed buffer
        self._region: dict = {}
        self.members: dict = {}  # buffer -> [(value, lo, hi)] stored there
        self._stored: set = set()
        for v in reads.delayed:
            self._store(v)

    def ins(self, n):
        return self.reads.ins[n] if n in self.reads.ins else in_edges(self.g, n)

    def region(self, v):
        if v not in self._region:
            self._region[v] = self._compute(v)
        return self._region[v]

    def _compute(self, v):
        g = self.g
        if isinstance(v, tuple):
            s, k = v
            return (("delay", s, k), 0, _width(g, s))
        if v not in self.index:
            return (("ext", v), 0, _width(g, v))
        d = g.nodes[v]
        if v in self.inplace:
            u, _, k = self.ins(v)[self.inplace[v]]
            return self.region(key(u, k))
        if OPS[d["op"]].view:
            u, _, k = self.ins(v)[0]
            buf, lo, hi = self.region(key(u, k))
            if d["op"] == Op.SLICE and lo is not None:
                return (buf, lo + d["start"].value, lo + d["stop"].value)
            if d["op"] == Op.IDENTITY:
                return (buf, lo, hi)
            return (buf, None, None)
        if v in self.own:
            return (("delay", v, self.own[v]), 0, _width(g, v))
        return (("new", v), 0, _width(g, v))

    def _store(self, v) -> None:
        """Record where v lives, and with it every view taken of it (slices, identities, ...):
        a view holds the value's columns from the moment the value is computed."""
        if v in self._stored:
            return
        self._stored.add(v)
        buf, lo, hi = self.region(v)
        self.members.setdefault(buf, []).append((v, lo, hi))
        for w in self.reads.views.get(v, ()):
            self._store(w)

    def done(self, n) -> None:
        """n's decision is made: record where it lives."""
        self._store(n)

    def can_write(self, n, region, direct: bool = False, strict: bool = False) -> bool:
        """May n write into `region` at its position? `strict`: not even n may read it there
        (for a write that is not elementwise, or whose operands are not the target)."""
        buf, lo, hi = region
        if buf[0] == "ext":
            return False
        if buf[0] == "delay":
            s, k = buf[1], buf[2]
            if k != self.max_delay.get(s) or s in self.shared or not (direct or s in self.written):
                return False
        i = self.index[n]
        # nodes are planned in order: a value read for the last time before n is dead for good
        live = self.members[buf] = [m for m in self.members.get(buf, ()) if self.last.get(m[0], -1) >= i]
        for v, vlo, vhi in live:
            if v == n or not _overlap(lo, hi, vlo, vhi):
                continue
            if self.last.get(v, -1) > i or (strict and self.last.get(v, -1) == i):
                return False
        return True


def choose(step: Step, n):
    """The port of the operand that node n may overwrite with its result, or None."""
    g = step.g
    d = g.nodes[n]
    if not OPS[d["op"]].inplace or not d["type"].batched:
        return None
    edges = list(enumerate(step.ins(n)))
    for port, (u, _, delay) in sorted(edges, key=lambda e: -e[1][2]):  # delayed states first
        if g.nodes[u]["type"] != d["type"]:
            continue
        if any((v, k) == (u, delay) for p, (v, _, k) in edges if p != port):
            continue  # the same array is also the other operand
        v = key(u, delay)
        if not delay and u not in step.index:
            continue  # computed before the loop
        region = step.region(v)
        if d.get("state") and region[0] != ("delay", n, step.max_delay.get(n)):
            continue  # a state lands only in its own oldest delayed buffer (or a fresh array)
        if step.can_write(n, region, direct=bool(delay)):
            return port
    return None


def _width(g, n):
    dims = g.nodes[n]["type"].dims
    return dims[-1].value if dims else 1


def _overlap(lo, hi, vlo, vhi) -> bool:
    return lo is None or vlo is None or (lo < vhi and vlo < hi)
