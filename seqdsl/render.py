"""Render: IR → DOT text, rolled (the cell with its loops) or unrolled over time.

In:  a `Program` (for the IR of a definition and of the cells and blocks a model runs),
     a definition name, view ("rolled" | "unrolled"), steps, detail ("cell" | "gates"),
     shapes (label edges with inferred types).
Out: `to_dot(...)` → DOT text, a pure function driven by the op table's labels (`ops.label`) and
     `COLORS` (role → colour). `write(dot_text, path)` calls graphviz's `dot` for .svg,
     .png and .pdf. Node ids are generated; every label is escaped (seqdsl.dot).

Colours follow the classic picture: input red, short-term memory blue, long-term memory
purple, output green, context vectors yellow. A state that a cell outputs is short-term (h);
other states are long-term (c).

The rolled view of a cell is, by default (detail "cell"), the textbook picture: the cell as
one box, every per-step input x_t into it, every output y_t out of it and each state looping
back into it. Detail "gates" draws its equations instead, one node per operation; `a − b` and
`a ÷ b` are labelled in the order they were written (`1 − z`), an unnamed operand by a letter
that its edge repeats.
"""

from __future__ import annotations

from .dot import Dot
from .errors import SpecError
from .ir import delays, outputs, topo_order
from .ops import Op
from .render_style import COLORS, FOLDED, draw_ops, edge_label, legend, state_loop, state_roles, style

# ---- cells -------------------------------------------------------------------------

def cell_rolled(g, detail: str, shapes: bool) -> str:
    gates = ", gates" if detail == "gates" and g.graph["kind"] == "cell" else ""
    dot = Dot(f"{g.graph['name']} (rolled)", rankdir="BT", nodesep="0.3", ranksep="0.35", newrank="true",
              label=f"{g.graph['kind']} {g.graph['name']}: rolled{gates}", labelloc="t")
    roles = state_roles(g)
    if detail == "cell":
        _cell_box_rolled(dot, g, roles, shapes)
    else:
        nodes = [n for n in topo_order(g) if g.nodes[n]["op"] not in FOLDED]
        ids = draw_ops(dot, g, nodes, roles, shapes)
        delayed = {}
        for u, v, d in sorted(g.edges(data=True), key=lambda e: (e[0], e[1], str(e[2]["port"]))):
            if u not in ids or v not in ids:
                continue
            attrs = edge_label(g, u, v, d["port"], shapes)
            src = ids[u]
            if d["delay"]:
                # one node per delayed state, fed by a single loop back from the state
                key = (u, d["delay"])
                if key not in delayed:
                    role = roles.get(u, "short")
                    delayed[key] = dot.node(f"{u}[t-{d['delay']}]", shape="box", **style(role, style="filled,dashed"))
                    line = COLORS[role][1]
                    dot.edge(ids[u], delayed[key], label=f"t-{d['delay']}", style="dashed", color=line,
                             fontcolor=line, constraint="false", penwidth="1.8")
                src = delayed[key]
                attrs.update(color=COLORS[roles.get(u, "short")][1])
            dot.edge(src, ids[v], **attrs)
        dot.same_rank([ids[n] for n in nodes if g.nodes[n]["op"] in (Op.INPUT, Op.MEMORY)]
                      + list(delayed.values()))
        dot.same_rank([ids[n] for n in nodes if g.nodes[n]["op"] in (Op.INPUT, Op.MEMORY)])
    legend(dot)
    return dot.text()


def _cell_box_rolled(dot: Dot, g, roles, shapes: bool = False) -> None:
    """The textbook picture: the cell as one box, x_t in, y_t out, each state looping back."""
    box = dot.node(g.graph["name"], shape="box", width="1.6", height="0.8", **style("cell", penwidth="2"))
    ins = []
    for n in topo_order(g):
        d = g.nodes[n]
        if d["op"] == Op.INPUT:
            ins.append(dot.node(f"{n}_t", shape="box", **style("input")))
            dot.edge(ins[-1], box, **({"label": str(d["type"])} if shapes else {}))
        elif d["op"] == Op.MEMORY:
            ins.append(dot.node(f"{n} (memory)", shape="box", **style("memory")))
            dot.edge(ins[-1], box, **({"label": str(d["type"])} if shapes else {}))
    for o in outputs(g):
        d = g.nodes[o]
        dot.edge(box, dot.node(f"{d['output']}_t", shape="box", **style("output")),
                 **({"label": str(d["type"])} if shapes else {}))
    for s, ks in delays(g).items():
        state_loop(dot, box, s, roles[s], ks)
    dot.same_rank(ins)


VIEWS = ("rolled", "unrolled")
DETAILS = ("cell", "gates")
MAX_STEPS = 1000


def to_dot(program, name: str | None = None, view: str = "rolled", steps: int = 4, detail: str | None = None,
           shapes: bool = False) -> str:
    """DOT text for one definition of a loaded program: the rolled graph or the unrolled one.

    A bad view, detail, step count or name is a SpecError; so is a drawing larger than
    `seqdsl.dot.MAX_ITEMS` nodes and edges (graphviz would take minutes), raised while it is
    built, before anything calls `dot`."""

    if view not in VIEWS:
        raise SpecError(f"unknown view {view!r}", None, f"choose one of: {', '.join(VIEWS)}")
    if detail is not None and detail not in DETAILS:
        raise SpecError(f"unknown detail {detail!r}", None, f"choose one of: {', '.join(DETAILS)}")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise SpecError(f"steps must be a whole number between 1 and {MAX_STEPS}, got {steps!r}")
    if name is None:
        defn = program.main
    elif isinstance(name, str) and name in program.definitions:
        defn = program.definitions[name]
    else:
        from .errors import did_you_mean

        raise SpecError(f"no definition named '{name}'", None, did_you_mean(str(name), program.definitions))
    try:
        return _to_dot(program, defn, view, steps, detail, shapes)
    except SpecError as e:
        if e.line:
            raise
        raise SpecError(e.message, defn.ast.span, e.hint) from None  # e.g. a drawing too large: say which


def _to_dot(program, defn, view: str, steps: int, detail: str | None, shapes: bool) -> str:
    from . import unrolled

    g = defn.graph
    detail = detail or "cell"  # a cell as one box (rolled: the textbook loop); "gates" draws its equations
    kind = g.graph["kind"]
    if view == "rolled":
        if kind == "model":
            from .model_render import model_rolled

            return model_rolled(program, g, shapes)
        return cell_rolled(g, detail if kind == "cell" else "gates", shapes)
    if detail == "gates" and kind != "cell":
        raise SpecError(f"--detail gates draws the gates inside a cell's steps; {g.graph['name']} is a {kind}",
                        None, "render one of its cells with --def, or use --detail cell")
    if kind == "cell":
        if detail == "gates":
            return unrolled.cell_gates_unrolled(g, steps, shapes)
        return unrolled.cell_unrolled(g, steps, shapes)
    if kind == "block":
        return unrolled.block_unrolled(g, steps, shapes)
    return unrolled.model_unrolled(program, g, steps, shapes)
