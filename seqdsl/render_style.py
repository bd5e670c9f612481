"""The look of every picture, and how IR nodes are labelled: one module the views import.

In:  IR graphs (a cell's, a block's or a model's; unrolled copies `name@t` from passes/unroll)
     and a `Dot` being built. What a node is called in the spec comes from its attributes,
     never from its name: `origin` (the node an unrolled copy was made from, else the node
     itself), `temp` (a temporary the compiler made: drawn unnamed), `initial_of`.
Out: `COLORS` (role → fill and line colour; each op's symbol is the op table's, `ops.label`);
     `style(role)`, the node
     attributes of a role; `legend(dot)`; `state_loop(...)`; `shown_steps(n)` (the steps drawn
     when there are many); `state_roles(g)` (h short-term, c long-term); `op_label`,
     `op_word`, `operand_letters`, `edge_label` (text of nodes and edges); `draw_ops(...)` (one
     node per operation). What an unrolled view draws at each step is not here: it is read
     from the unrolled graph (seqdsl.render_steps). A model that predicts `out y ~ ...` and reads
     `y[t-1]`: `predictions_read(g)` (the observed input → the output predicting it),
     `prediction_label`, `previous_label`, `start_label`, and the two ways the previous word
     arrives, `learning_edge` (the true one, teacher forcing) and `generation_edge` (the previous
     prediction, dashed).

Colours follow the classic picture: input red, short-term memory blue, long-term memory
purple, output green, context vectors yellow. A state that a cell outputs is short-term (h);
other states are long-term (c).
"""

from __future__ import annotations

from .dot import Dot
from .ir import in_edges, states
from .ops import OPS, Op, label, ops_where
from .vocab import SPECIALS

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
    "observed": ("#fce5cd", "#b45f06"),  # the true words of a predicted output, as learning reads them
    "generation": ("#ffffff", "#6aa84f"),  # the previous prediction fed back (dashed)
}

FOLDED = ops_where(drawn="folded")  # a parameter or a number: drawn inside its reader's label
HIDDEN = FOLDED | ops_where(drawn="hidden")  # not drawn in model pictures
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


def style(role: str, **extra) -> dict:
    fill, line = COLORS[role]
    look = "filled,rounded" if role in ("gate", "cell") else "filled,dashed" if role == "generation" else "filled"
    return {"style": look, "fillcolor": fill, "color": line, **extra}


LEGEND = (("input", "input x"), ("short", "short-term memory h"), ("long", "long-term memory c"),
          ("output", "output y"), ("context", "context vector C"),
          ("observed", "learning (teacher forcing):\nthe true previous output"),
          ("generation", "generation:\nthe previous prediction"))


def legend_entries(dot: Dot) -> list:
    """The legend's entries whose colour the picture uses (a white fill, as every box has, does not
    count: the generation entry is there for its dashed line's colour alone)."""
    text = "\n".join(dot.lines + dot.edges)
    return [(role, label) for role, label in LEGEND
            if f'fillcolor="{COLORS[role][0]}"' in text and COLORS[role][0] != "#ffffff"
            or f'color="{COLORS[role][1]}"' in text]


def state_loop(dot: Dot, box: str, state: str, role: str, delay=(1,)) -> None:
    """A state's loop on a box, labelled with the delays it is read with (`h (t-1)`, `h (t-1, t-2)`):
    h on the right side, c on the left, clear of the edges in and out."""
    line = COLORS[role][1]
    ports = {"tailport": "w", "headport": "w"} if role == "long" else {"tailport": "e", "headport": "e"}
    ks = ", ".join(f"t-{k}" for k in ([delay] if isinstance(delay, int) else delay))
    dot.edge(box, box, label=f"{state} ({ks})", color=line, fontcolor=line, penwidth="2", **ports)


def legend(dot: Dot) -> None:
    dot.begin_cluster("legend", style="rounded", color="#bbbbbb", fontsize="10")
    prev = None
    for role, text in legend_entries(dot):
        n = dot.node(text, shape="box", fontsize="9", **style(role))
        if prev:
            dot.edge(prev, n, style="invis")
        prev = n
    dot.end_cluster()


# ---- predicted outputs: `out y ~ categorical(...)` read back as y[t-1] ------------------------

def predictions_read(g) -> dict:
    """observed input → the output node that predicts it, for each prediction the model reads
    as `y[t-1]` (lowered to the observed `y`, an input only `shift` nodes read)."""
    predicted = {d["output"]: o for o, d in g.nodes(data=True) if d["op"] == Op.OUTPUT and d.get("dist")}
    return {n: predicted[n] for n, d in g.nodes(data=True)
            if d["op"] == Op.INPUT and d.get("observed") and n in predicted
            and all(g.nodes[s]["op"] == Op.SHIFT for s in g.successors(n))}


def prediction_label(d: dict, name: str | None = None) -> str:
    """A predicted output as the distribution it is: `word ~ categorical`, `y ~ normal(σ=0.1)`;
    `name` replaces the output's name (`word_3`)."""
    name = d["output"] if name is None else name
    if not d.get("dist"):
        return name
    std = f"(σ={d['std']:g})" if d.get("std") is not None else ""
    return f"{name} ~ {d['dist']}{std}"


def start_label(g, shift) -> str:
    """What `y[t-1]` reads at the first step: the start token `<s>` (token ids) or its fill value."""
    fill = g.nodes[shift]["fill"]
    if g.nodes[shift]["type"].dtype == "int":
        return SPECIALS[int(fill)] if 0 <= int(fill) < len(SPECIALS) else str(int(fill))
    return f"{fill:g}"


def previous_label(g, shift) -> str:
    """A shift node as the spec wrote it: `word[t-1]`, with what the first step reads."""
    src = in_edges(g, shift)[0][0]  # port 0: the sequence read one step late
    return f"{src}[t-1]\n({start_label(g, shift)} at t=1)"


def learning_edge(**extra) -> dict:
    """The true previous word into a step (learning: teacher forcing)."""
    line = COLORS["observed"][1]
    return {"color": line, **extra, **({"fontcolor": line} if "label" in extra else {})}


def generation_edge(**extra) -> dict:
    """A step's prediction fed to the next step (generation): dashed."""
    line = COLORS["generation"][1]
    return {"color": line, "style": "dashed", "penwidth": "1.6", **extra,
            **({"fontcolor": line} if "label" in extra else {})}


# operators whose operand order matters: drawn infix, as written (`1 − z`, not `− 1`)
ORDERED = {Op.SUB, Op.DIV}


def _folded_text(g, u) -> str | None:
    """A parameter's name or a constant's value, drawn inside the node that reads it."""
    ud = g.nodes[u]
    if ud["op"] == Op.PARAM:
        return ud.get("origin", u)
    if ud["op"] == Op.CONST:
        v = ud["value"]
        if v is None:  # a size used as a number, before the size has a value
            return str(ud.get("size", "?"))
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
        base = ud.get("origin", u)
        su, sn = ud.get("step"), g.nodes[n].get("step")
        k = delay or (sn - su if su is not None and sn is not None else 0)
    if ud.get("temp"):
        return None
    return f"{base}[t-{k}]" if k else base


def op_label(g, n) -> str:
    d = g.nodes[n]
    op = d["op"]
    base = d.get("origin", n)
    if op in (Op.INPUT, Op.MEMORY):
        return base if "initial_of" not in d else f"{d['initial_of']}[{d['step']}]"
    if op == Op.OUTPUT:
        return d["output"]
    folded = [t for t in (_folded_text(g, u) for u, _, _ in in_edges(g, n)) if t is not None]
    sym = label(op, d)
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
    elif op == Op.IDENTITY:  # `s = x`: the edge from x says what it is
        return text_or_base(base, d)
    elif folded and len(folded) == len(in_edges(g, n)) and OPS[op].arity == 2:  # 6 + 1: numbers alone
        text = f" {sym} ".join(folded)
    elif folded:
        text = f"{sym} {', '.join(folded)}"
    else:
        text = sym
    if not d.get("temp"):
        return f"{base} = {text}"
    return text


def text_or_base(base: str, d: dict) -> str:
    """A copy's label: its name (a temporary copy is drawn as `=`)."""
    return "=" if d.get("temp") else base


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
        return roles.get(d.get("origin", n), "short")
    return "gate" if not d.get("temp") else "op"


def draw_ops(dot: Dot, g, nodes, roles, shapes: bool) -> dict:
    ids = {}
    for n in nodes:
        role = _role(g, n, roles)
        shape = {"input": "box", "memory": "box", "output": "box", "short": "box", "long": "box",
                 "gate": "box", "op": "ellipse"}[role]
        extra = {"fontsize": "10", "height": "0.3"} if role == "op" else {}
        ids[n] = dot.node(op_label(g, n), shape=shape, **style(role, **extra))
    return ids


def edge_label(g, u, v, port, shapes: bool) -> dict:
    """An edge's label: the operand letter of `a − b` (when the node names it so), then the shape."""
    words = [operand_letters(g, v).get(port, "")] if g.nodes[v]["op"] in ORDERED else []
    if shapes:
        words.append(str(g.nodes[u]["type"]))
    text = " ".join(w for w in words if w)
    return {"label": text} if text else {}


def op_word(g, n) -> str:
    """A model-level op as a word on an edge: `linear` for W @ x, nothing for its bias, an alias or a field."""
    d = g.nodes[n]
    with_param = any(g.nodes[u]["op"] == Op.PARAM for u, _, _ in in_edges(g, n))
    if d["op"] == Op.MATMUL and with_param:
        return "linear"
    if d["op"] in (Op.IDENTITY, Op.GET) or (d["op"] == Op.ADD and with_param):
        return ""  # models have no parameters of their own but linear()'s, so this add is its bias
    return label(d["op"], d)
