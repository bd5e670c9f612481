"""Render: IR → DOT text, rolled (the cell with its loops) or unrolled over time.

In:  a `Program` (for the IR of a definition and of the cells and blocks a model runs),
     a definition name, view ("rolled" | "unrolled"), steps, detail ("cell" | "gates"),
     shapes (label edges with inferred types).
Out: `to_dot(...)` → DOT text, a pure function driven by `STYLE` (op → label) and
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
from .ir import delays, in_edges, interface, outputs, states, topo_order
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
            src, seen = in_edges(g, o)[0][0], set()
            while g.nodes[src]["op"] == Op.IDENTITY and src not in seen:  # `h = h[t-1]` is a loop
                seen.add(src)
                src = in_edges(g, src)[0][0]
            outs.add(src)
    return {s: ("short" if s in outs else "long") for s in states(g)}


def _style(role: str, **extra) -> dict:
    fill, line = COLORS[role]
    return {"style": "filled,rounded" if role in ("gate", "cell") else "filled", "fillcolor": fill,
            "color": line, **extra}


LEGEND = (("input", "input x"), ("short", "short-term memory h"), ("long", "long-term memory c"),
          ("output", "output y"), ("context", "context vector C"))


def legend_entries(dot: Dot) -> list:
    """The legend's entries whose colour the picture uses."""
    text = "\n".join(dot.lines + dot.edges)
    return [(role, label) for role, label in LEGEND
            if f'fillcolor="{COLORS[role][0]}"' in text or f'color="{COLORS[role][1]}"' in text]


def state_loop(dot: Dot, box: str, state: str, role: str, delay=(1,)) -> None:
    """A state's loop on a box, labelled with the delays it is read with (`h (t-1)`, `h (t-1, t-2)`):
    h on the right side, c on the left, clear of the edges in and out."""
    line = COLORS[role][1]
    ports = {"tailport": "w", "headport": "w"} if role == "long" else {"tailport": "e", "headport": "e"}
    ks = ", ".join(f"t-{k}" for k in ([delay] if isinstance(delay, int) else delay))
    dot.edge(box, box, label=f"{state} ({ks})", color=line, fontcolor=line, penwidth="2", **ports)


def _legend(dot: Dot) -> None:
    dot.begin_cluster("legend", style="rounded", color="#bbbbbb", fontsize="10")
    prev = None
    for role, text in legend_entries(dot):
        n = dot.node(text, shape="box", fontsize="9", **_style(role))
        if prev:
            dot.edge(prev, n, style="invis")
        prev = n
    dot.end_cluster()


# operators whose operand order matters: drawn infix, as written (`1 − z`, not `− 1`)
ORDERED = {Op.SUB, Op.DIV}


def _folded_text(g, u) -> str | None:
    """A parameter's name or a constant's value, drawn inside the node that reads it."""
    ud = g.nodes[u]
    if ud["op"] == Op.PARAM:
        return u.split("@")[0]
    if ud["op"] == Op.CONST:
        v = ud["value"]
        return str(int(v)) if float(v).is_integer() else str(v)
    return None


def operand_letters(g, n) -> dict:
    """port → letter ("a", "b") for the unnamed operands of `a − b` / `a ÷ b`: the node's label
    names them so, and so does the edge that carries each one."""
    if g.nodes[n]["op"] not in ORDERED:
        return {}
    out = {}
    for u, port, delay in in_edges(g, n):
        if _folded_text(g, u) is None and _operand_name(g, u, n, delay) is None:
            out[port] = "ab"[port] if isinstance(port, int) and port < 2 else "?"
    return out


def _operand_name(g, u, n, delay: int = 0) -> str | None:
    """How an operand is called in the spec: its name (h[t-1] when read from an earlier step), or
    None for a temporary."""
    ud = g.nodes[u]
    if "initial_of" in ud:
        base, k = ud["initial_of"], (g.nodes[n].get("step") or 0) - ud["step"]
    else:
        base = u.split("@")[0]
        su, sn = ud.get("step"), g.nodes[n].get("step")
        k = delay or (sn - su if su is not None and sn is not None else 0)
    if base.startswith("_"):
        return None
    return f"{base}[t-{k}]" if k else base


def op_label(g, n) -> str:
    d = g.nodes[n]
    op = d["op"]
    base = n.split("@")[0]
    if op in (Op.INPUT, Op.MEMORY):
        return base if "initial_of" not in d else f"{d['initial_of']}[{d['step']}]"
    if op == Op.OUTPUT:
        return d["output"]
    folded = [t for t in (_folded_text(g, u) for u, _, _ in in_edges(g, n)) if t is not None]
    sym = STYLE[op]
    if op in ORDERED:
        letters = operand_letters(g, n)
        terms = [_folded_text(g, u) or _operand_name(g, u, n, k) or letters[port] for u, port, k in in_edges(g, n)]
        text = f" {sym} ".join(terms)
    elif op == Op.MATMUL and folded:
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
    gates = ", gates" if detail == "gates" and g.graph["kind"] == "cell" else ""
    dot = Dot(f"{g.graph['name']} (rolled)", rankdir="BT", nodesep="0.3", ranksep="0.35", newrank="true",
              label=f"{g.graph['kind']} {g.graph['name']}: rolled{gates}", labelloc="t")
    roles = state_roles(g)
    if detail == "cell":
        _cell_box_rolled(dot, g, roles, shapes)
    else:
        nodes = [n for n in topo_order(g) if g.nodes[n]["op"] not in FOLDED]
        ids = _draw_ops(dot, g, nodes, roles, shapes)
        delayed = {}
        for u, v, d in sorted(g.edges(data=True), key=lambda e: (e[0], e[1], str(e[2]["port"]))):
            if u not in ids or v not in ids:
                continue
            attrs = _edge_label(g, u, v, d["port"], shapes)
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


def _edge_label(g, u, v, port, shapes: bool) -> dict:
    """An edge's label: the operand letter of `a − b` (when the node names it so), then the shape."""
    words = [operand_letters(g, v).get(port, "")] if g.nodes[v]["op"] in ORDERED else []
    if shapes:
        words.append(str(g.nodes[u]["type"]))
    text = " ".join(w for w in words if w)
    return {"label": text} if text else {}


def _cell_box_rolled(dot: Dot, g, roles, shapes: bool = False) -> None:
    """The textbook picture: the cell as one box, x_t in, y_t out, each state looping back."""
    box = dot.node(g.graph["name"], shape="box", width="1.6", height="0.8", **_style("cell", penwidth="2"))
    ins = []
    for n in topo_order(g):
        d = g.nodes[n]
        if d["op"] == Op.INPUT:
            ins.append(dot.node(f"{n}_t", shape="box", **_style("input")))
            dot.edge(ins[-1], box, **({"label": str(d["type"])} if shapes else {}))
        elif d["op"] == Op.MEMORY:
            ins.append(dot.node(f"{n} (memory)", shape="box", **_style("memory")))
            dot.edge(ins[-1], box, **({"label": str(d["type"])} if shapes else {}))
    for o in outputs(g):
        d = g.nodes[o]
        dot.edge(box, dot.node(f"{d['output']}_t", shape="box", **_style("output")),
                 **({"label": str(d["type"])} if shapes else {}))
    for s, ks in delays(g).items():
        state_loop(dot, box, s, roles[s], ks)
    dot.same_rank(ins)


def _cell_iface(g) -> dict:
    """What the unrolled views need of a cell: its inputs (the first one sets the time axis),
    states, outputs, memories, delays."""
    iface = interface(g)
    inputs = list(iface["inputs"]) or ["x"]
    return {"input": inputs[0], "inputs": inputs, "states": list(iface["states"]),
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
