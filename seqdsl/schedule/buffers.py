"""Memory plan for a cell's step loop (NumPy inference): in-place updates and static buffers.

In:  a cell's optimised IR graph, its step nodes in order, its states and their delays, and the
     ops the backend can write into a given array.
Out: `Plan`: for every step node where its result goes —
       `inplace[n] = port`   into an operand whose array nothing reads any more (see
                             seqdsl.backends.inplace for the liveness rules),
       `static`              a buffer allocated once before the loop and reused every step,
       `own[n]`              a state written into its own oldest delayed buffer, dead by then;
     and `views`: slices of static buffers, taken once before the loop.

Values that outlive the step — states (carried to later steps as `s__d1`, `s__d2`, ...) and
outputs with a memory axis (collected in a list) — never land in a static buffer, and they are
never overwritten while the step runs: both count as read at its end, as do all outputs (they
may be copied out at the end of the step). A state's oldest delayed buffer is only written when
the state is not `shared`: when no other such value lives in the same array (a state equal to
another state, or to one's earlier value, `b = a[t-1]`), and it does not live in an array
computed before the loop (`h = x`). Which states are shared depends on the plan itself, so
the plan is made again, with more states shared, until it agrees with itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ops import Op
from .inplace import Reads, Step, choose


@dataclass
class Plan:
    inplace: dict = field(default_factory=dict)
    static: list = field(default_factory=list)
    own: dict = field(default_factory=dict)  # state -> delay of the buffer it overwrites
    views: list = field(default_factory=list)
    root: dict = field(default_factory=dict)  # node -> the node whose buffer holds it (static only)
    state_root: dict = field(default_factory=dict)  # state -> the state whose delayed buffer holds it

    def holds_own(self, g, s) -> bool:
        """Does state s end the step in its own delayed buffer (so `s__d1 = s` changes nothing)?"""
        return self.state_root.get(s) == s


def plan(g, step_nodes: list, states: list, max_delay: dict, can_into) -> Plan:
    """`can_into(n)`: can the backend write node n's result into a given array?"""
    reads = Reads(g, step_nodes, max_delay)
    shared: frozenset = frozenset()
    while True:
        step = _decide(reads, step_nodes, can_into, shared)
        more = _shared(g, step, states, max_delay)
        if more <= shared:
            break
        shared |= more
    return _plan(g, step, step_nodes, states, can_into)


def _decide(reads, step_nodes, can_into, shared) -> Step:
    """In-place writes and states written into their own buffers, node by node."""
    step = Step(reads, shared)
    max_delay = reads.max_delay
    for n in step_nodes:
        port = choose(step, n)
        if port is not None:
            step.inplace[n] = port
            u, _, k = step.ins(n)[port]
            if k:
                step.written.add(u)
        elif n in max_delay and can_into(n):
            k = max_delay[n]
            region = (("delay", n, k), 0, step.region((n, k))[2])
            if step.can_write(n, region, direct=True, strict=True):
                step.own[n] = k
                step.written.add(n)
        step.done(n)
    return step


def _outlives(g, step, states) -> list:
    """Step values read after the step: states, and outputs with a memory axis (kept in a list)."""
    out = [s for s in states if s in step.index]
    for n in step.index:
        if n not in out and any(g.nodes[o]["op"] == Op.OUTPUT and g.nodes[o]["type"].seq
                                for o in g.successors(n)):
            out.append(n)
    return out


def _shared(g, step, states, max_delay) -> frozenset:
    """States whose delayed buffers another value outliving the step shares (see the docstring)."""
    out = set()
    kept = [(v, step.region(v)) for v in _outlives(g, step, states)]
    for v, (buf, _, _) in kept:
        if buf[0] == "ext" and v in max_delay:
            out.add(v)
        if buf[0] == "delay" and buf != ("delay", v, max_delay.get(v)):
            out.add(buf[1])
            if v in max_delay:
                out.add(v)
    for i, (v, (buf, lo, hi)) in enumerate(kept):
        for w, (buf2, lo2, hi2) in kept[:i]:
            if buf == buf2 and (lo is None or lo2 is None or (lo < hi2 and lo2 < hi)):
                out |= {x for x in (v, w) if x in max_delay}
                if buf[0] == "delay":
                    out.add(buf[1])
    return frozenset(out)


def _plan(g, step, step_nodes, states, can_into) -> Plan:
    p = Plan(inplace=dict(step.inplace), own=dict(step.own))
    kept = {step.region(v)[0] for v in _outlives(g, step, states)}
    for n in step_nodes:
        d = g.nodes[n]
        if (n in p.inplace or n in p.own or d.get("state") or not can_into(n) or d["type"].seq
                or not d["type"].batched or ("new", n) in kept):
            continue
        p.static.append(n)
    for s in states:
        if s in step.index:
            buf = step.region(s)[0]
            if buf[0] == "delay":
                p.state_root[s] = buf[1]
    static = set(p.static)
    for n in step_nodes:
        r = _static_root(g, step, p, n, static)
        if r is not None:
            p.root[n] = r
            if g.nodes[n]["op"] == Op.SLICE:
                p.views.append(n)
    return p


def _static_root(g, step, p, n, static):
    """The static node whose buffer holds n (through in-place writes, slices, identities), or None."""
    while n not in static:
        d = g.nodes[n]
        if n in p.inplace:
            u, _, k = step.ins(n)[p.inplace[n]]
        elif d["op"] in (Op.SLICE, Op.IDENTITY):
            u, _, k = step.ins(n)[0]
        else:
            return None
        if k:
            return None
        n = u
    return n
