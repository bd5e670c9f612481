"""Render: IR → DOT text, rolled (the cell with its loops) or unrolled over time.

In:  a `Program` (for the IR of a definition and of the cells and blocks a model runs),
     a definition name, view ("rolled" | "unrolled"), steps, detail ("cell" | "gates"),
     shapes (label edges with inferred types).
Out: `to_dot(...)` → DOT text, a pure function driven by `STYLE` (op → label) and
     `COLORS` (role → colour). `write(dot_text, path)` calls graphviz's `dot` for .svg,
     .png and .pdf. Node ids are generated; every label is escaped (seqdsl.dot).

Colours follow the classic picture: input red, short-term memory blue, long-term memory
purple, output green. A state that a cell outputs is short-term (h); other states are
long-term (c).
"""

from __future__ import annotations

from .dot import Dot
from .errors import SpecError
from .ir import delays, in_edges, interface, states, topo_order
from .ops import Op

COLORS = {
    "input": ("#f4cccc", "#cc0000"),
    "short": ("#cfe2f3", "#3d85c6"),
    "long": ("#d9d2e9", "#674ea7"),
    "output": ("#d9ead3", "#38761d"),
    "memory": ("#cfe2f3", "#3d85c6"),
    "gate": ("#ffffff", "#444444"),
    "op": ("#f3f3f3", "#888888"),
    "context": ("#fff2cc", "#bf9000"),
    "cell": ("#ffffff", "#333333"),
}

STYLE = {
    Op.ADD: "+", Op.SUB: "−", Op.MUL: "×", Op.DIV: "÷", Op.NEG: "−", Op.TANH: "tanh", Op.SIGMOID: "σ",
    Op.RELU: "relu", Op.EXP: "exp", Op.LOG: "log", Op.IDENTITY: "=", Op.MATMUL: "@", Op.CONCAT: "concat",
    Op.SLICE: "split", Op.SOFTMAX: "softmax", Op.SUM: "Σ", Op.LAST: "last", Op.LAYERNORM: "layernorm",
    Op.EMBED: "embed", Op.ONEHOT: "onehot", Op.ATTENTION: "attention", Op.POSITIONS: "positions",
    Op.CONST: "const", Op.CALL: "call", Op.GET: "get", Op.OUTPUT: "out", Op.INPUT: "in", Op.MEMORY: "memory",
    Op.PARAM: "param",
}
FOLDED = {Op.PARAM, Op.CONST}
# an edge laid out left to right but pointing right to left (reversed runs)
BACKWARDS = {"dir": "both", "arrowhead": "none", "arrowtail": "normal"}
MAX_SHOWN = 8


def shown_steps(n: int) -> list:
    """Step indices drawn for n steps; None marks the '…' column."""
    if n <= MAX_SHOWN:
        return list(range(n))
    return [0, 1, 2, None, n - 3, n - 2, n - 1]


def state_roles(g) -> dict:
    """state name → "short" (output by the cell) or "long"."""
    outs = set()
    for o, d in g.nodes(data=True):
        if d["op"] == Op.OUTPUT:
            src = in_edges(g, o)[0][0]
            while g.nodes[src]["op"] == Op.IDENTITY:
                src = in_edges(g, src)[0][0]
            outs.add(src)
    return {s: ("short" if s in outs else "long") for s in states(g)}


def _style(role: str, **extra) -> dict:
    fill, line = COLORS[role]
    return {"style": "filled,rounded" if role in ("gate", "cell") else "filled", "fillcolor": fill,
            "color": line, **extra}


LEGEND = (("input", "input x"), ("short", "short-term memory h"), ("long", "long-term memory c"),
          ("output", "output y"))


def legend_entries(dot: Dot) -> list:
    """The legend's entries whose colour the picture uses."""
    text = "\n".join(dot.lines + dot.edges)
    return [(role, label) for role, label in LEGEND
            if f'fillcolor="{COLORS[role][0]}"' in text or f'color="{COLORS[role][1]}"' in text]


def state_loop(dot: Dot, box: str, state: str, role: str, delay: int = 1) -> None:
    """A state's loop on a box: h on the right side, c over the top (rankdir=BT: "s" is up)."""
    line = COLORS[role][1]
    ports = {"tailport": "s", "headport": "s"} if role == "long" else {}
    dot.edge(box, box, label=f"{state} (t-{delay})", color=line, fontcolor=line, penwidth="2", **ports)


def _legend(dot: Dot) -> None:
    dot.begin_cluster("legend", style="rounded", color="#bbbbbb", fontsize="10")
    prev = None
    for role, text in legend_entries(dot):
        n = dot.node(text, shape="box", fontsize="9", **_style(role))
        if prev:
            dot.edge(prev, n, style="invis")
        prev = n
    dot.end_cluster()


def op_label(g, n) -> str:
    d = g.nodes[n]
    op = d["op"]
    base = n.split("@")[0]
    if op in (Op.INPUT, Op.MEMORY):
        return base if "initial_of" not in d else f"{d['initial_of']}[{d['step']}]"
    if op == Op.OUTPUT:
        return d["output"]
    folded = []
    for u, _, _delay in in_edges(g, n):
        ud = g.nodes[u]
        if ud["op"] == Op.PARAM:
            folded.append(u.split("@")[0])
        elif ud["op"] == Op.CONST:
            v = ud["value"]
            folded.append(str(int(v)) if float(v).is_integer() else str(v))
    sym = STYLE[op]
    if op == Op.MATMUL and folded:
        text = f"{folded[0]} @"
    elif op == Op.SLICE:
        text = f"[{d['start']}:{d['stop']}]"
    elif op == Op.ATTENTION:
        text = f"attention ×{d['heads']}" + (" causal" if d["causal"] else "")
    elif folded:
        text = f"{sym} {', '.join(folded)}"
    else:
        text = sym
    if not base.startswith("_"):
        return f"{base} = {text}"
    return text


def _role(g, n, roles) -> str:
    d = g.nodes[n]
    if "initial_of" in d:
        return roles.get(d["initial_of"], "short")
    if d["op"] == Op.INPUT:
        return "input"
    if d["op"] == Op.MEMORY:
        return "memory"
    if d["op"] == Op.OUTPUT:
        return "output"
    if d.get("state"):
        return roles.get(n.split("@")[0], "short")
    return "gate" if not n.split("@")[0].startswith("_") else "op"


def _draw_ops(dot: Dot, g, nodes, roles, shapes: bool) -> dict:
    ids = {}
    for n in nodes:
        role = _role(g, n, roles)
        shape = {"input": "box", "memory": "box", "output": "box", "short": "box", "long": "box",
                 "gate": "box", "op": "ellipse"}[role]
        extra = {"fontsize": "10", "height": "0.3"} if role == "op" else {}
        ids[n] = dot.node(op_label(g, n), shape=shape, **_style(role, **extra))
    return ids


# ---- cells -------------------------------------------------------------------------

def cell_rolled(g, detail: str, shapes: bool) -> str:
    dot = Dot(f"{g.graph['name']} (rolled)", rankdir="BT", nodesep="0.3", ranksep="0.35", newrank="true",
              label=f"{g.graph['kind']} {g.graph['name']}: rolled", labelloc="t")
    roles = state_roles(g)
    if detail == "cell":
        _cell_box_rolled(dot, g, roles)
    else:
        nodes = [n for n in topo_order(g) if g.nodes[n]["op"] not in FOLDED]
        ids = _draw_ops(dot, g, nodes, roles, shapes)
        delayed = {}
        for u, v, d in sorted(g.edges(data=True), key=lambda e: (e[0], e[1], str(e[2]["port"]))):
            if u not in ids or v not in ids:
                continue
            attrs = {"label": str(g.nodes[u]["type"])} if shapes else {}
            src = ids[u]
            if d["delay"]:
                # one node per delayed state, fed by a single loop back from the state
                key = (u, d["delay"])
                if key not in delayed:
                    role = roles.get(u, "short")
                    delayed[key] = dot.node(f"{u}[t-{d['delay']}]", shape="box", **_style(role, style="filled,dashed"))
                    line = COLORS[role][1]
                    dot.edge(ids[u], delayed[key], label=f"t-{d['delay']}", style="dashed", color=line,
                             fontcolor=line, constraint="false", penwidth="1.8")
                src = delayed[key]
                attrs.update(color=COLORS[roles.get(u, "short")][1])
            dot.edge(src, ids[v], **attrs)
        dot.same_rank([ids[n] for n in nodes if g.nodes[n]["op"] in (Op.INPUT, Op.MEMORY)]
                      + list(delayed.values()))
        dot.same_rank([ids[n] for n in nodes if g.nodes[n]["op"] in (Op.INPUT, Op.MEMORY)])
    _legend(dot)
    return dot.text()


def _cell_box_rolled(dot: Dot, g, roles) -> None:
    box = dot.node(g.graph["name"], shape="box", width="1.6", height="0.8", **_style("cell", penwidth="2"))
    for n, d in g.nodes(data=True):
        if d["op"] in (Op.INPUT, Op.MEMORY):
            dot.edge(dot.node(n, shape="box", **_style(_role(g, n, roles))), box)
        elif d["op"] == Op.OUTPUT:
            dot.edge(box, dot.node(d["output"], shape="box", **_style("output")))
    for s, ks in delays(g).items():
        for k in ks:
            state_loop(dot, box, s, roles[s], k)


def _cell_iface(g) -> dict:
    """What the unrolled views need of a cell: its input, states, outputs, memories, delays."""
    iface = interface(g)
    return {"input": next(iter(iface["inputs"]), "x"), "states": list(iface["states"]),
            "outputs": list(iface["outputs"]), "memories": list(iface["memories"]), "delays": delays(g)}


def op_word(g, n) -> str:
    """A model-level op as a word on an edge: `linear` for W @ x, nothing for its bias, an alias or a field."""
    d = g.nodes[n]
    with_param = any(g.nodes[u]["op"] == Op.PARAM for u, _, _ in in_edges(g, n))
    if d["op"] == Op.MATMUL and with_param:
        return "linear"
    if d["op"] in (Op.IDENTITY, Op.GET) or (d["op"] == Op.ADD and with_param):
        return ""  # models have no parameters of their own but linear()'s, so this add is its bias
    return STYLE[d["op"]]


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
    detail = detail or ("gates" if view == "rolled" else "cell")
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
