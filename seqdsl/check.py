"""Check: the semantic checks that run on every load, after lowering.

In:  a lowered IR graph (and, for algebraic loops, the equations being lowered).
Out: `algebraic_loop_error(...)` → the `SpecError` naming the cycle's path with line
     numbers; `check_graph(g)` → a list of warnings (those lowering kept on the graph, such as
     final states a run started `from` leaves unused; unused parameters and inputs);
     `summary(g, program)` → inputs, outputs, states, the runs, and every parameter with its
     shape, including those of the cells and blocks it runs (by instance path: `enc.W_ii`;
     only its own without `program`); `param_size(dims)` → a parameter's count (int, or a
     `Size` such as `H*I` while sizes are symbolic). The counts add up to `param_count`.
Errors that lowering meets first (unknown names, shapes, bad delays, unassigned states)
are raised there, with the same `file:line:col` format.
"""

from __future__ import annotations

from .errors import SpecError, Warning_
from .ir import states
from .ops import OPS, Op
from .sizes import Size


def algebraic_loop_error(stack: list, name: str, equations: dict) -> SpecError:
    cycle = stack[stack.index(name):] + [name]
    path = " -> ".join(f"{n} (line {equations[n].span.line})" for n in cycle)
    return SpecError(f"algebraic loop: {path}", equations[name].span,
                     f"a value cannot depend on itself in the same step; read the previous step "
                     f"with a delayed reference, e.g. {cycle[0]}[t-1] (and declare it a state)")


def check_graph(g) -> list:
    """Warnings about a lowered graph: those lowering found (`g.graph["warnings"]`: (message, span,
    hint), e.g. a run started `from` another's final states that leaves some of them unused), then
    unused parameters and inputs."""
    warnings = [Warning_(*w) for w in g.graph.get("warnings", ())]
    for n, d in g.nodes(data=True):
        if d["op"] == Op.PARAM and g.out_degree(n) == 0:
            warnings.append(Warning_(f"parameter '{n}' is never used", d["span"], "remove it or use it"))
        elif OPS[d["op"]].fed and g.out_degree(n) == 0:
            warnings.append(Warning_(f"{d['op'].value} '{n}' is never used", d["span"]))
    return warnings


def summary(g, program=None) -> dict:
    """What `seqdsl check` prints for a definition. With the `Program`, "params" lists every
    parameter the definition trains, those of the runs it makes by instance path (`enc.W_ii`)."""
    out = {"inputs": [], "outputs": [], "states": [], "params": [], "runs": []}
    for n, d in g.nodes(data=True):
        op = d["op"]
        if OPS[op].fed:
            note = " (memory)" if op == Op.MEMORY else " (observed: read at t-1)" if d.get("observed") else ""
            out["inputs"].append((n, str(d["type"]) + note))
        elif op == Op.OUTPUT:
            out["outputs"].append((d["output"], _output_text(d)))
        elif op == Op.PARAM:
            out["params"].append((n, d["type"].dims))
        elif op == Op.CALL:
            out["runs"].append((d["instance"], d["callee"]))
            if program is not None:
                inner = summary(program.instance(d["callee"], d["sizes"]), program)["params"]
                out["params"] += [(f"{d['instance']}.{name}", dims) for name, dims in inner]
    out["states"] = [(n, str(g.nodes[n]["type"])) for n in states(g)]
    return out


def _output_text(d) -> str:
    """`seq[400]`, or for a prediction `~ categorical over 400 classes, per step`."""
    t = d["type"]
    if not d.get("dist"):
        return str(t)
    per = "per step" if t.seq else "per sample"
    if d["dist"] == "categorical":
        return f"~ categorical over {t.dims[0]} classes, {per}"
    return f"~ normal([{', '.join(map(str, t.dims))}], std {d['std']:g}), {per}"


def param_size(dims):
    """The number of values of a parameter: an int, or a `Size` (`H*I`) while sizes are symbolic."""
    total = Size.const(1)
    for d in dims:
        total = total * d
    return total.value if total.value is not None else total
