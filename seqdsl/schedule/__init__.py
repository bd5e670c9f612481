"""The schedule of a cell: what runs once, over all steps at once, and per step.

In:  a cell's optimised IR graph (after the passes and `hoist`), and what the backend can do:
     write results into given arrays (a NumPy memory plan), transpose weights once, and
     whether the schedule is for a gradient (then it keeps a tape).
Out: `schedule_cell(g, ...)` → `CellSchedule`, the one data structure code generation reads
     for a cell's forward loop and its backward pass: the nodes computed once (parameters,
     memories and what depends only on them), over all steps (time-major, before the loop),
     and per step, in order; the states with their delays (`h__d1` is h[t-1], rotated at the
     end of each step); where each output's values come from; the weights the loop reads
     transposed; the memory plan (in-place writes, static buffers: `buffers.py`, `inplace.py`);
     and for gradients the tape (per-step values the backward pass reads) and the reverse
     order of the step nodes. `CellSchedule.format()` prints it as text (tests/golden/schedule/).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import delays, in_edges, interface, output_source, outputs, topo_order
from ..ops import OPS, Op
from .buffers import Plan
from .buffers import plan as memory_plan


@dataclass
class CellSchedule:
    inputs: list  # per-step inputs, in declaration order (the first gives B and T)
    memories: list
    states: list  # in declaration order
    max_delay: dict  # state -> the largest k of its reads s[t-k]
    order: list  # every node, topologically
    where: dict  # node -> "once" | "time" | "step"
    once: list  # computed before the loop, once (parameters, memories, what depends only on them)
    time: list  # computed before the loop for all steps (time-major), inputs excluded
    step: list  # computed in the loop, in order
    step_views: list  # "time" values the loop reads at step t
    readers: dict  # step view -> how many step nodes read it
    outputs: dict  # output node -> "once" | "time" | "step" (where its source lives)
    pre_transposed: dict = field(default_factory=dict)  # step matmul -> (weight port, weight node)
    plan: Plan | None = None  # the memory plan (NumPy inference), else None
    owned_states: set = field(default_factory=set)  # states whose initial values the loop overwrites
    tape: list = field(default_factory=list)  # gradient: step nodes whose per-step values backward reads
    grad: bool = False
    operands: dict = field(default_factory=dict)  # step node -> (op name, [(operand, delay)]) for format()

    @property
    def step_outputs(self) -> list:
        return [o for o, w in self.outputs.items() if w == "step"]

    @property
    def backward_steps(self) -> list:
        """The step nodes in the order the backward pass visits them (reversed)."""
        return list(reversed(self.step))

    def format(self, names=None) -> str:
        """The schedule as text: one section per phase, nodes by (variable) name."""
        name = (lambda n: n) if names is None else names
        join = lambda ns: ", ".join(name(n) for n in ns) or "-"
        lines = [f"inputs: {join(self.inputs)}", f"memories: {join(self.memories)}",
                 "states: " + (", ".join(f"{name(s)} (t-1..t-{self.max_delay[s]})" for s in self.states) or "-"),
                 f"once: {join(self.once)}", f"all steps: {join(self.time)}",
                 f"read per step: {join(self.step_views)}", "per step:"]
        for n in self.step:
            where = ""
            if self.plan is not None:
                if n in self.plan.inplace:
                    where = f"  in place of input {self.plan.inplace[n]}"
                elif n in self.plan.static:
                    where = "  static buffer"
                elif n in self.plan.own:
                    where = f"  into {name(n)}[t-{self.plan.own[n]}]"
                elif n in self.plan.views:
                    where = "  view"
            op, ins = self.operands[n]
            args = ", ".join(name(u) + (f"[t-{k}]" if k else "") for u, k in ins)
            lines.append(f"  {name(n)} = {op}({args}){where}")
        lines.append("outputs: " + ", ".join(f"{o} ({w})" for o, w in self.outputs.items()))
        if self.pre_transposed:
            lines.append(f"transposed once: {join(sorted({w for _, w in self.pre_transposed.values()}))}")
        if self.grad:
            lines.append(f"tape: {join(self.tape)}")
            lines.append(f"backward per step: {join(self.backward_steps)}")
        return "\n".join(lines) + "\n"


def schedule_cell(g, grad: bool = False, can_into=None, pre_transpose: bool = False) -> CellSchedule:
    """`can_into(n)`: can the backend write node n's result into a given array (None: no memory
    plan, and never one for a gradient); `pre_transpose`: it reads loop weights transposed once."""
    iface = interface(g)
    order = topo_order(g)
    where = {n: g.nodes[n]["hoist"] for n in g.nodes}
    once = [n for n in order if where[n] == "once" and g.nodes[n]["op"] != Op.OUTPUT]
    time = [n for n in order if where[n] == "time" and g.nodes[n]["op"] not in (Op.INPUT, Op.OUTPUT)]
    step = [n for n in order if where[n] == "step" and g.nodes[n]["op"] != Op.OUTPUT]
    views = sorted({u for n in step for u, _, _ in in_edges(g, n) if where[u] == "time"}, key=order.index)
    readers = {n: sum(1 for c in g.successors(n) if where[c] == "step") for n in views}
    max_delay = {s: ks[-1] for s, ks in delays(g).items()}
    outs = {o: where[output_source(g, o)] for o in outputs(g)}
    s = CellSchedule(list(iface["inputs"]), list(iface["memories"]), list(iface["states"]), max_delay, order,
                     where, once, time, step, views, readers, outs, grad=grad)
    s.operands = {n: (g.nodes[n]["op"].value, [(u, k) for u, _, k in in_edges(g, n)]) for n in step}
    if grad:
        outs_needed, ins_needed = _needs(g)
        needed = outs_needed | ins_needed
        s.tape = [n for n in order if n in needed and where[n] == "step"]
    elif can_into is not None:
        s.plan = memory_plan(g, step, s.states, max_delay, can_into)
        s.owned_states = set(s.plan.own) | {u for n, p in s.plan.inplace.items()
                                            for u, _, k in [in_edges(g, n)[p]] if k}
    if pre_transpose:
        for n in step:
            port = {Op.MATMUL: 0, Op.ADDMM: 1}.get(g.nodes[n]["op"])
            if port is None:
                continue
            w = in_edges(g, n)[port][0]
            wt = g.nodes[w]["type"]
            x = in_edges(g, n)[port + 1][0]
            if where[w] == "once" and wt.rank == 2 and not wt.batched and g.nodes[x]["type"].batched:
                s.pre_transposed[n] = (port, w)
    return s


def _needs(g) -> set:
    """(values whose result backward reads, values read as an operand by backward) — see
    `OpInfo.grad_reads`: which of an op's values its vector-Jacobian product reads."""
    outs, ins = set(), set()
    for n in g.nodes:
        info = OPS[g.nodes[n]["op"]]
        if "out" in info.grad_reads:
            outs.add(n)
        if "in" in info.grad_reads:
            ins.update(u for u, _, _ in in_edges(g, n))
    return outs, ins
