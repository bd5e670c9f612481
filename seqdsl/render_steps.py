"""What the unrolled views draw at each step, read from the IR's own unrolling (passes/unroll).

In:  a cell's IR graph, its number of steps and the steps to draw (a set holding the last
     step; a model's run draws its callee's steps in its columns, right to left if reversed).
Out: `step_flow(g, steps, drawn)` → `StepFlow`, read from `unroll(g, steps, only=...)`
     (`read_flow(u, drawn)` reads an unrolled graph u) through the node attributes `step`,
     `origin`, `initial_of`, `state` and `output` alone: never from a node's name, and without
     working out delays again. It holds the per-step inputs each drawn step reads and the
     outputs it makes, the memories and the steps that read them, the states in declaration
     order (their values at the last step are the final states), and every state value one
     step hands to another: a carry `(state, from, to)`, where `from` is a step, or a negative
     step for an initial state (-1 is s_0, the value before step 0; -2 is s_-1, which step 0
     reads as s[t-2]); `to - from` is the delay. The steps next to a drawn one through a
     delayed edge are unrolled too (`neighbourhood`), so a value carried into or out of a step
     the picture leaves out (its "…" column) is there to draw.
"""

from __future__ import annotations

from dataclasses import dataclass

from .ir import outputs, states
from .ops import Op


@dataclass
class StepFlow:
    steps: int  # how many steps the cell runs
    drawn: set  # the steps drawn
    inputs: dict  # drawn step -> the per-step inputs it reads, in declaration order
    outputs: dict  # drawn step -> the outputs it makes (output names), in declaration order
    memories: dict  # memory -> the steps (drawn or next to one) that read it
    states: list  # the states of the last drawn step (the last step: they are the final states)
    carries: list  # (state, from step, to step), sorted: a state's value handed on

    @property
    def input_names(self) -> list:
        """The per-step inputs (the first one sets the time axis), as the last drawn step reads them."""
        return self.inputs[max(self.drawn)]

    @property
    def output_names(self) -> list:
        return self.outputs[max(self.drawn)]

    def initials(self, s) -> list:
        """The initial states of s that some step reads, latest first: [-1, -2] is s_0, s_-1."""
        return sorted({a for state, a, _ in self.carries if state == s and a < 0}, reverse=True)

    @property
    def depth(self) -> int:
        """The most initial states any one state has drawn (2 for a state read as s[t-2])."""
        return max([len(self.initials(s)) for s in self.states] or [0])


def step_flow(g, steps: int, drawn) -> StepFlow:
    """What `unroll(g, steps)` says about the steps `drawn` of cell g (see the module docstring)."""
    from .passes.unroll import neighbourhood, unroll

    drawn = {t for t in drawn if t is not None and 0 <= t < steps}
    return read_flow(unroll(g, steps, only=neighbourhood(g, steps, drawn)), drawn)


def read_flow(u, drawn: set) -> StepFlow:
    """The `StepFlow` of an unrolled graph u (attributes only: its node names are opaque)."""
    steps = u.graph["unrolled"]
    if not drawn:
        raise ValueError("no step to draw")
    inputs: dict = {t: [] for t in drawn}
    memories: dict = {}
    for _, d in u.nodes(data=True):
        if d["op"] == Op.INPUT and "initial_of" not in d and d["step"] in drawn:
            inputs[d["step"]].append(d["origin"])
        elif d["op"] == Op.MEMORY:
            memories[d["origin"]] = set()
    outs: dict = {t: [] for t in drawn}
    for o in outputs(u):
        if u.nodes[o]["step"] in drawn:
            outs[u.nodes[o]["step"]].append(u.nodes[o]["output"])
    carries = set()
    for a, b in u.edges():
        da, to = u.nodes[a], u.nodes[b].get("step")
        at = da.get("step")
        if to is None:
            continue
        if "initial_of" in da:
            carries.add((da["initial_of"], at, to))
        elif at is None and da["op"] == Op.MEMORY:
            memories[da["origin"]].add(to)
        elif at is not None and at != to:  # only a delayed edge joins two steps; it starts at a state
            carries.add((da["origin"], at, to))
    last = [u.nodes[n]["origin"] for n in states(u) if u.nodes[n]["step"] == max(drawn)]
    return StepFlow(steps, drawn, inputs, outs, memories, last, sorted(carries))
