"""Memory plan for a cell's step loop (NumPy inference): in-place updates and static buffers.

In:  a cell's optimised IR graph, its step nodes in order, its states and their delays, and the
     ops the backend can write into a given array.
Out: `Plan`: for every step node where its result goes —
       `inplace[n] = port`   into an operand that dies here (see seqdsl.backends.inplace),
       `static`              a buffer allocated once before the loop and reused every step,
       `own[n]`              a state written into its own oldest delayed value, dead by then;
     and `views`: slices of static buffers, taken once before the loop.
Per-step outputs are copied into preallocated arrays, so no step value escapes by reference;
a state never lands in a static buffer (it must survive into the next step).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import in_edges
from ..ops import Op
from .inplace import plan as plan_inplace


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
    p = Plan()
    p.inplace = plan_inplace(g, step_nodes, max_delay)
    index = {n: i for i, n in enumerate(step_nodes)}

    def root(n, delay=0):
        """("state", s) for a delayed state, ("node", m) for a step node's buffer, None otherwise."""
        if delay:
            return ("state", n)
        if n not in index:
            return None
        d = g.nodes[n]
        if n in p.inplace:
            u, _, k = in_edges(g, n)[p.inplace[n]]
            return root(u, k)
        if d["op"] in (Op.SLICE, Op.IDENTITY):
            u, _, k = in_edges(g, n)[0]
            return root(u, k)
        if n in p.own:
            return ("state", n)
        return ("node", n)

    # a state may only be written in place into its own delayed buffer
    for n in step_nodes:
        if g.nodes[n].get("state") and n in p.inplace and root(n) != ("state", n):
            del p.inplace[n]
    last_read: dict = {}
    for n in step_nodes:
        for u, _, k in in_edges(g, n):
            last_read[(u, k)] = index[n]
    for s in states:
        d = g.nodes[s]
        k = max_delay[s]
        if s not in p.inplace and can_into(s) and last_read.get((s, k), -1) < index[s] \
                and not any(root(u, kk) == ("state", s) and last_read.get((u, kk), -1) >= index[s]
                            for u, _, kk in in_edges(g, s)):
            p.own[s] = k
    state_roots = {root(s) for s in states}
    for n in step_nodes:
        d = g.nodes[n]
        if (n in p.inplace or d.get("state") or not can_into(n) or d["type"].seq
                or not d["type"].batched or ("node", n) in state_roots):
            continue
        p.static.append(n)
    for s in states:
        r = root(s)
        if r and r[0] == "state":
            p.state_root[s] = r[1]
    static = set(p.static)
    for n in step_nodes:
        r = root(n)
        if r and r[0] == "node" and r[1] in static:
            p.root[n] = r[1]
            if g.nodes[n]["op"] == Op.SLICE:
                p.views.append(n)
    return p
