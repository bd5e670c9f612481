"""Unrolled views: a cell, block or model drawn over time on a grid.

In:  a `Program`, an IR graph, the number of steps, detail, shapes.
Out: DOT text whose nodes carry pinned positions (`pos="x,y!"`, laid out by neato with
     spline-routed edges): columns are time steps, left to right; rows are layers,
     inputs at the bottom and outputs at the top. What each step is drawn with (its per-step
     inputs and outputs, the memories it reads, which state values reach it from which
     step) is read from the IR's own unrolling, `passes/unroll`, of the cell (of each run's
     callee in a model) through `render_steps.step_flow`, never from names or recomputed
     delays. Every state flows along a straight horizontal line (h through the middle of
     the boxes in blue, c along their tops in purple); a value read k > 1 steps later is a
     dashed edge `h t-k`; initial states sit left of step 1 (s_0, then s_-1 for a state
     read as s[t-2], ...) and final states right of the last step.
     Each time axis (e.g. source and target of a translation) gets its own block of
     columns; the context vector C (yellow, "context C") sits between them. `attend` gives
     each decoder step a context node C_t, drawn above the decoder so that the edges from
     every encoder step fan out to it instead of running in one bundle. A cell with
     several per-step inputs gets them side by side under each step. In models, a run's
     initial and final states are named by its instance (`enc.h_0`, `dec.c_4`), a run's
     `h[last]` is its final h, and per-sample results (a classifier's label) sit right of
     every time axis. A block with attention connects every position to every position it
     attends (only earlier ones when causal); a block has no steps in the IR (its
     positions are a `seq` axis), so its view draws its first input and output per
     position. Above 8 steps the middle ones are elided with a "…" column, which the
     values carried into and out of the steps it hides enter and leave.
     A model that reads its previous prediction (`out word ~ categorical(...)` and
     `word[t-1]`) draws the textbook picture of text generation: under step t the true
     previous word, word_{t-1} (orange; <s> at step 1), entering it as in learning (teacher
     forcing); above step t the prediction `word_t ~ categorical`, and from it a dashed edge
     into step t+1's input, the previous prediction that generation feeds back instead.
"""

from __future__ import annotations

from .dot import Dot
from .ir import in_edges, topo_order
from .ops import Op
from .render_steps import step_flow
from .render_style import (
    BACKWARDS,
    COLORS,
    FOLDED,
    HIDDEN,
    generation_edge,
    learning_edge,
    legend,
    legend_entries,
    op_word,
    prediction_label,
    predictions_read,
    shown_steps,
    start_label,
    state_roles,
    style,
)

DX, DY = 1.7, 1.4  # inches between columns / rows
SPLINE_ITEMS = 200  # above this many nodes and edges, edges are straight lines: routing curved edges
# around every node takes graphviz minutes on a few hundred nodes (30 s at 550, cubic growth)
LONG_DY = 0.5  # the long-term line runs this many rows above the short-term one


class Grid:
    """Nodes at grid positions, plus the bookkeeping of which columns each time axis uses."""

    def __init__(self, title: str, label: str, widest: int = 12, min_width: float = 0.0, lead: int = 0):
        # NOTE: columns are as wide as the longest box label needs, or the inputs side by side
        # under one step (min_width inches), with room between them: nodes must not touch
        self.dx = max(DX, 0.085 * widest + 0.55, min_width + 0.6)
        self.dot = Dot(title, layout="neato", splines="true", overlap="true", label=label, labelloc="t",
                       outputorder="edgesfirst")
        self.next_col = 0.0
        self.lead = max(0, lead)  # columns each time axis keeps free on either side for initial states s_-1, ...
        self.top = 0.0
        self.at: dict = {}  # node id -> (col, row)

    def node(self, label, col, row, **attrs) -> str:
        self.top = max(self.top, row)
        nid = self.dot.node(label, pos=f"{col * self.dx:.2f},{row * DY:.2f}!", **attrs)
        self.at[nid] = (col, row)
        return nid

    def axis(self, n_cols: int) -> float:
        """Reserve a block of columns (`lead` + 1 init columns, the steps, a final column, `lead` more)."""
        start = self.next_col + (1 if self.next_col == 0 else 2) + self.lead  # column of step 0
        self.next_col = start + n_cols + self.lead
        return start

    def legend(self) -> None:
        y = -1.2
        for i, (role, text) in enumerate(legend_entries(self.dot)):
            self.node(text, i * 1.5 * DX / self.dx, y, shape="box", fontsize="9", **style(role))

    def text(self) -> str:
        self.legend()
        if self.dot.items > SPLINE_ITEMS:
            self.dot.graph_attrs["splines"] = "line"
        return self.dot.text()


GAP = 0.25  # inches between inputs drawn side by side under one step


def _box_width(label: str) -> float:
    """About how wide graphviz draws a box with this one-line label, in inches (11 pt Helvetica)."""
    return max(0.75, 0.085 * len(label) + 0.3)


def side_by_side(labels) -> tuple:
    """The centres (inches from the column's centre) of boxes drawn side by side under each step,
    and the width they take together."""
    widths = [_box_width(label) for label in labels]
    total = sum(widths) + GAP * (len(widths) - 1)
    centres, x = [], -total / 2
    for w in widths:
        centres.append(x + w / 2)
        x += w + GAP
    return centres, total


def _step_nodes(grid, shown, col0, row, label, role, shape="box", dots: bool = True, **extra):
    """One node per shown step, labelled `label` with {t} the step number (1-based), or `label(t)`
    for step t (0-based) when it is a function; the '…' column gets a '…' (or None, for a second
    row beside another)."""
    ids = []
    for i, t in enumerate(shown):
        if t is None:
            ids.append(grid.node("…", col0 + i, row, shape="plaintext", fontsize="16") if dots else None)
        else:
            text = label(t) if callable(label) else label.replace("{t}", str(t + 1))
            ids.append(grid.node(text, col0 + i, row, shape=shape, **style(role, **extra)))
    return ids


class Run:
    """One run of a cell drawn as a row of step boxes, with the state values its unrolled graph
    hands from step to step (`flow.carries`): a value read one step later along the state's
    straight line, one read k > 1 steps later as a dashed edge labelled `h t-k`, a value that
    reaches a step left out into or out of the "…" column, and each initial state (s_0, s_-1,
    ...) left of step 1, latest nearest. `shown` are the columns' steps; in a reversed run cell
    step t sits in column `turn(t)`, right to left. `prefix` names its initial and final states
    (`enc.` in a model, so that two runs' `h_0` differ)."""

    def __init__(self, grid, label, flow, roles, shown, col0, row, reverse=False, prefix=""):
        self.grid, self.flow, self.roles, self.shown = grid, flow, roles, shown
        self.col0, self.row, self.reverse, self.steps = col0, row, reverse, flow.steps
        self.prefix = prefix
        self.boxes = _step_nodes(grid, shown, col0, row, f"{label}\nt={{t}}", "cell",
                                 width="1.15", height="0.75", penwidth="1.6")
        self.final_nodes: dict = {}
        self.initial_nodes: dict = {}
        self.context = None  # the context C node when another run starts from this one's final states

    def turn(self, t: int) -> int:
        """The column step of cell step t, and the other way round (reversed runs go right to left)."""
        return self.steps - 1 - t if self.reverse else t

    def index(self, t: int) -> int:
        """The column of cell step t: its box, or the '…' column for a step left out."""
        p = self.turn(t)
        return self.shown.index(p) if p in self.shown else self.shown.index(None)

    def box(self, t: int) -> str:
        return self.boxes[self.index(t)]

    def states(self, given: dict, draw_finals: bool = True) -> None:
        """Every state's carries, then its final value; `given` maps a state to the node it
        starts from (a model's `from`), which then stands for all its initial states."""
        for s in self.flow.states:
            done: set = set()
            for carry in sorted((c for c in self.flow.carries if c[0] == s), key=self._order):
                self.carry(*carry, given.get(s), done)
            if draw_finals:
                self.final(s)

    def _order(self, carry) -> tuple:
        """Delay 1 first (the initial state, then along the line), then each longer delay."""
        _, a, b = carry
        ends = (self.index(b), -a) if a < 0 else tuple(sorted((self.index(a), self.index(b))))
        return (b - a > 1, b - a, a >= 0, ends)

    def carry(self, s: str, a: int, b: int, given, done: set) -> None:
        """One edge for state s's value of step a read at step b (a < 0: an initial state)."""
        role = self.roles[s]
        line, k, long = COLORS[role][1], b - a, role == "long"
        if a >= 0 and self.index(a) == self.index(b):
            return  # both steps behind the '…'
        head = self.box(b)
        if a < 0 and given is not None:  # a model's `from`: one node for all its initial states
            tail, attrs = given, ({"label": s} if k == 1 else {"style": "dashed", "label": f"{s} t-{k}"})
            edge = (tail, head, {"color": line, **({"penwidth": "2"} if k == 1 else {}), **attrs,
                                 "fontcolor": line})
        else:
            tail = self.initial(s, a) if a < 0 else self.box(a)
            if k > 1:
                attrs = {"color": line, "style": "dashed", "label": f"{s} t-{k}", "fontcolor": line}
            elif a < 0:
                attrs = {"color": line, "penwidth": "2"}
            else:
                attrs = {"color": line, "penwidth": "2",
                         **({"label": self.carried(s, a), "fontcolor": line} if long else {}),
                         **({"tailport": "ne", "headport": "nw"} if long else {})}
            back = BACKWARDS if self.reverse else {}
            edge = (head, tail, {**attrs, **back}) if self.reverse else (tail, head, attrs)
        if edge[:2] + (k,) not in done:
            done.add(edge[:2] + (k,))
            self.grid.dot.edge(*edge[:2], **edge[2])

    def carried(self, s: str, a: int) -> str:
        """The label of state s on its way from step a to the next: s_t, t the step that made it."""
        return s if self.reverse else f"{s}_{a + 1}"

    def initial(self, s: str, a: int) -> str:
        """The node of initial state s at step a < 0 (s_0, s_-1, ...), left of step 1 (right of a
        reversed run's), latest nearest."""
        if (s, a) not in self.initial_nodes:
            rank = self.flow.initials(s).index(a)
            col = self.col0 + len(self.boxes) + rank if self.reverse else self.col0 - 1 - rank
            dy = LONG_DY if self.roles[s] == "long" else 0.0
            self.initial_nodes[(s, a)] = self.grid.node(f"{self.prefix}{s}_{a + 1}", col, self.row + dy,
                                                        shape="box", **style(self.roles[s]))
        return self.initial_nodes[(s, a)]

    def final(self, s: str) -> None:
        """State s's final value, right of the last step (left of a reversed run's)."""
        role = self.roles[s]
        dy = LONG_DY if role == "long" else 0.0
        col = self.col0 - 1 if self.reverse else self.col0 + len(self.boxes)
        fin = self.grid.node(f"{self.prefix}{s}_{'final' if self.reverse else self.steps}", col, self.row + dy,
                             shape="box", **style(role))
        last = self.box(self.steps - 1)
        a, b = (fin, last) if self.reverse else (last, fin)
        self.grid.dot.edge(a, b, color=COLORS[role][1], penwidth="2", **(BACKWARDS if self.reverse else {}))
        self.final_nodes[s] = fin


# ---- cells and blocks -----------------------------------------------------------------

def cell_unrolled(g, steps: int, shapes: bool) -> str:
    """One box per step; what each step reads and makes, and the states it hands on, come
    from the cell's unrolled graph (`step_flow`)."""
    name = g.graph["name"]
    roles, shown = state_roles(g), shown_steps(steps)
    flow = step_flow(g, steps, shown)
    ins = flow.input_names
    centres, width = side_by_side([f"{inp}_{steps}" for inp in ins])
    grid = Grid(f"{name} (unrolled)", f"cell {name}: unrolled over {steps} steps", max(12, len(name)), width,
                lead=flow.depth - 1)
    col0 = grid.axis(len(shown))
    # every per-step input, side by side under each step (x_t and mask_t)
    rows = [_step_nodes(grid, shown, col0 + dx / grid.dx, 0, f"{inp}_{{t}}", "input", dots=j == 0)
            for j, (inp, dx) in enumerate(zip(ins, centres))]
    run = Run(grid, name, flow, roles, shown, col0, 1)
    for inp, xs in zip(ins, rows):
        for x, b, t in zip(xs, run.boxes, shown):
            if t is not None and inp in flow.inputs[t]:
                grid.dot.edge(x, b, **({"label": str(g.nodes[inp]["type"])} if shapes else {}))
    run.states({})
    for j, o in enumerate(flow.output_names):
        ys = _step_nodes(grid, shown, col0, 2 + j * 0.7, f"{o}_{{t}}", "output")
        for b, y, t in zip(run.boxes, ys, shown):
            if t is not None and o in flow.outputs[t]:
                grid.dot.edge(b, y)
    for m, reads in flow.memories.items():
        mem = grid.node(f"{m} (memory)", col0 - 1, 0, shape="box", **style("memory"))
        for b, t in zip(run.boxes, shown):
            if t in reads:
                grid.dot.edge(mem, b, color="#999999", style="dotted")
    return grid.text()


def block_unrolled(g, steps: int, shapes: bool) -> str:
    name = g.graph["name"]
    grid = Grid(f"{name} (unrolled)", f"block {name}: {steps} positions, computed in parallel")
    att = [n for n, d in g.nodes(data=True) if d["op"] == Op.ATTENTION]
    causal = bool(att) and all(g.nodes[a]["causal"] for a in att)
    ins = [n for n, d in g.nodes(data=True) if d["op"] == Op.INPUT]
    outs = [d["output"] for _, d in g.nodes(data=True) if d["op"] == Op.OUTPUT]
    shown = shown_steps(steps)
    col0 = grid.axis(len(shown))
    xs = _step_nodes(grid, shown, col0, 0, f"{ins[0] if ins else 'x'}_{{t}}", "input")
    ys = _step_nodes(grid, shown, col0, 2, f"{outs[0] if outs else 'y'}_{{t}}", "output")
    attention_edges(grid.dot, xs, ys, shown, shown, causal, bool(att))
    return grid.text()


def attention_edges(dot, srcs, dsts, src_steps, dst_steps, causal: bool, attends: bool = True) -> None:
    for d, td in zip(dsts, dst_steps):
        if td is None:
            continue
        for s, ts in zip(srcs, src_steps):
            if ts is None or (not attends and ts != td) or (causal and ts > td):
                continue
            dot.edge(s, d, color="#e69138", arrowsize="0.5")


def cell_gates_unrolled(g, steps: int, shapes: bool) -> str:
    """Each step's gates in a box of its own (dot layout, one cluster per step, left to right).

    A value carried from an earlier step enters a step once, as an `h[t-1]` node beside the
    inputs, fed by one edge from the step that computed it."""
    from .passes.unroll import neighbourhood, unroll
    from .render_style import draw_ops, edge_label, op_label

    name = g.graph["name"]
    dot = Dot(f"{name} (unrolled)", rankdir="BT", newrank="true", nodesep="0.25", ranksep="0.3",
              label=f"cell {name}: unrolled over {steps} steps, gates", labelloc="t")
    roles, shown = state_roles(g), shown_steps(steps)
    u = unroll(g, steps, only=neighbourhood(g, steps, {t for t in shown if t is not None}))
    ids: dict = {}
    carry: dict = {}  # (source node, step) -> the entry node of that value in that step
    bottom: list = []
    for t in shown:
        if t is None:
            bottom.append(dot.node("…", shape="plaintext", fontsize="18"))
            continue
        dot.begin_cluster(f"t = {t + 1}", style="rounded", color="#bbbbbb")
        nodes = [n for n in topo_order(u) if u.nodes[n].get("step") == t and u.nodes[n]["op"] not in FOLDED]
        ids.update(draw_ops(dot, u, nodes, roles, shapes))
        row = [ids[n] for n in nodes if u.nodes[n]["op"] == Op.INPUT]
        for a, b, _ in sorted(u.edges(data=True), key=lambda e: (e[0], e[1], str(e[2]["port"]))):
            ta = u.nodes[a].get("step")
            if u.nodes[b].get("step") == t and ta is not None and ta != t and (a, t) not in carry:
                base = u.nodes[a]["origin"] if ta >= 0 else u.nodes[a]["initial_of"]
                label = f"{base}[t-{t - ta}]" if ta >= 0 else op_label(u, a)
                carry[(a, t)] = dot.node(label, shape="box", **style(roles.get(base, "short"), style="filled,dashed"))
                row.append(carry[(a, t)])
        dot.end_cluster()
        bottom += row[:1]
        dot.same_rank(row)
    for a, b in zip(bottom, bottom[1:]):
        dot.edge(a, b, style="invis")  # steps left to right
    dot.same_rank(bottom)
    for a, b, e in sorted(u.edges(data=True), key=lambda e: (e[0], e[1], str(e[2]["port"]))):
        if b not in ids or u.nodes[a]["op"] in FOLDED:
            continue
        tb = u.nodes[b]["step"]
        attrs = edge_label(u, a, b, e["port"], shapes)
        if (a, tb) in carry:
            base = u.nodes[a]["origin"] if u.nodes[a]["step"] >= 0 else u.nodes[a]["initial_of"]
            line = COLORS[roles.get(base, "short")][1]
            dot.edge(carry[(a, tb)], ids[b], color=line, **attrs)
        elif a in ids:
            dot.edge(ids[a], ids[b], **attrs)
    for (a, _t), entry in carry.items():
        if a in ids:  # from the step that computed it; earlier steps behind '…' have no node
            base = u.nodes[a]["origin"]
            line = COLORS[roles.get(base, "short")][1]
            dot.edge(ids[a], entry, color=line, penwidth="1.8", style="dashed", constraint="false")
    legend(dot)
    return dot.text()


# ---- models ----------------------------------------------------------------------------



class Row:
    """A per-step value: its nodes (one per column), time axis, row level, the op words on its way
    and the run it comes from; `observed` when it is the true previous word (teacher forcing)."""

    def __init__(self, ids, axis, row, chain=(), run=None, observed=False):
        self.ids, self.axis, self.row, self.chain, self.run = ids, axis, row, list(chain), run
        self.observed = observed


def _sequence_input(g, u):
    """The model input (a sequence) that a per-step value comes from through position-wise ops
    (`embed(src, V, E)` → src), or None."""
    for _ in range(g.number_of_nodes()):
        d = g.nodes[u]
        if d["op"] == Op.INPUT:
            return u if d["type"].seq else None
        if d["op"] in (Op.CALL, Op.GET, Op.LAST, Op.OUTPUT):
            return None
        ins = [x for x, _, _ in in_edges(g, u) if g.nodes[x]["op"] not in HIDDEN]
        if not ins:
            return None
        u = ins[-1]
    return None


def _sharing(g, flows) -> dict:
    """model input → the input whose columns it is drawn in, side by side: a cell's second
    per-step input (`over (x = embed(src, V, E), mask = m)`) runs on the first one's time axis."""
    beside: dict = {}
    owners: set = set()
    for n in topo_order(g):
        d = g.nodes[n]
        if d["op"] != Op.CALL or d["kind"] != "cell":
            continue
        ports = {p: u for u, p, _ in in_edges(g, n)}
        names = flows[n].input_names
        first = _sequence_input(g, ports[names[0]]) if names[0] in ports else None
        if first is None:
            continue
        first = beside.get(first, first)
        owners.add(first)
        for p in names[1:]:
            o = _sequence_input(g, ports[p]) if p in ports else None
            if o is not None and o != first and o not in owners and o not in beside:
                beside[o] = first
    return beside


def _run_flows(program, g, steps: int, drawn: set) -> dict:
    """run (a call of a cell) → the `StepFlow` of its callee over the steps drawn (a reversed
    run's columns hold its steps right to left); runs of one cell with the same sizes share one."""
    flows: dict = {}
    by_callee: dict = {}
    for n, d in g.nodes(data=True):
        if d["op"] == Op.CALL and d["kind"] == "cell":
            callee = program.instance(d["callee"], d["sizes"])
            key = (id(callee), d["reverse"])
            if key not in by_callee:
                by_callee[key] = step_flow(callee, steps, {steps - 1 - t for t in drawn} if d["reverse"] else drawn)
            flows[n] = by_callee[key]
    return flows


def model_unrolled(program, g, steps: int, shapes: bool) -> str:
    return ModelPicture(program, g, steps, shapes).draw()


def _chain_label(chain) -> dict:
    """An edge's label from the words of the position-wise ops on its way, three to a line."""
    words = [w for w in chain if w]
    lines = [" ".join(words[i:i + 3]) for i in range(0, len(words), 3)]
    return {"label": "\n".join(lines)} if words else {}


def _finals_read(g) -> dict:
    """run → the states whose final values something reads (`from enc.final`)."""
    consumed: dict = {}
    for n, d in g.nodes(data=True):
        if d["op"] == Op.GET and d["field"].startswith("final."):
            src = in_edges(g, n)[0][0]
            consumed.setdefault(src, set()).add(d["field"][6:])
    return consumed


class ModelPicture:
    """A model unrolled on a grid, drawn node by node in dependency order. A per-step value is a
    `Row` in `rows` (its step nodes and the op words on its way); a per-sample one is in `singles`
    as [its node or None until first used, op words, the model node it starts from]."""

    def __init__(self, program, g, steps: int, shapes: bool):
        self.program, self.g, self.steps, self.shapes = program, g, steps, shapes
        name = g.graph["name"]
        widest = max([len(f"{d['instance']}: {d['callee']}") for _, d in g.nodes(data=True) if d["op"] == Op.CALL]
                     or [12])
        self.shown = shown_steps(steps)
        drawn = {t for t in self.shown if t is not None}
        self.flows = _run_flows(program, g, steps, drawn)
        beside = _sharing(g, self.flows)
        self.groups = {n: [n] + [m for m in topo_order(g) if beside.get(m) == n] for n in topo_order(g)
                       if g.nodes[n]["op"] == Op.INPUT and g.nodes[n]["type"].seq and n not in beside}
        self.placed = {n: side_by_side([f"{m}_{steps}" for m in group]) for n, group in self.groups.items()}
        self.grid = Grid(f"{name} (unrolled)", f"model {name}: unrolled over {steps} steps", widest,
                         max([w for _, w in self.placed.values()] or [0.0]),
                         lead=max([f.depth - 1 for f in self.flows.values()] or [0]))
        self.dot = self.grid.dot
        self.rows: dict = {}
        self.singles: dict = {}
        self.axes: dict = {}  # axis id -> column of step 0
        self.used: dict = {}  # axis id -> set of occupied row levels
        self.contexts: list = []  # (run, memory rows, axis): each step's C_t, drawn last, above everything
        self.right: set = set()  # rows taken right of every time axis (per-sample results)
        self.consumed = _finals_read(g)
        self.predicted = predictions_read(g)  # observed input -> the output predicting it (read as y[t-1])

    def level(self, axis, at_least):
        """The lowest free row level of `axis` from `at_least` up, now taken."""
        taken = self.used.setdefault(axis, set())
        lv = at_least
        while lv in taken:
            lv += 1
        taken.add(lv)
        return lv

    def draw(self) -> str:
        g = self.g
        self.inputs()
        for n in topo_order(g):
            d = g.nodes[n]
            op = d["op"]
            ins = [(u, p) for u, p, _ in in_edges(g, n) if g.nodes[u]["op"] not in HIDDEN]
            if op in HIDDEN:
                continue
            if op == Op.INPUT:
                if not d["type"].seq:
                    self.singles[n] = [None, [], n]  # drawn where it is first used
            elif op == Op.CALL and d["kind"] == "cell":
                self.cell_run(n, d)
            elif op == Op.CALL:
                self.block_run(n, d)
            elif op == Op.GET:
                self.get(n, d, ins)
            elif op == Op.LAST:
                self.last(n, ins)
            elif op == Op.OUTPUT:
                self.output(n, d, ins)
            elif op == Op.SHIFT and ins and self.rows.get(ins[0][0]) and self.rows[ins[0][0]].observed:
                self.rows[n] = self.rows[ins[0][0]]  # y[t-1]: its row is drawn one step late already
            else:
                self.position_wise(n, ins)
        for run, mems, axis in self.contexts:
            _contexts(self.grid, run, mems, max(self.used[axis]) + 0.85)
        return self.grid.text()

    def inputs(self) -> None:
        """Sequence inputs first, each on a time axis of its own, or beside the input it runs with."""
        for n, group in self.groups.items():
            self.axes[n] = self.grid.axis(len(self.shown))
            lv = self.level(n, 0)
            for j, (m, dx) in enumerate(zip(group, self.placed[n][0])):
                col0 = self.axes[n] + dx / self.grid.dx
                if m in self.predicted:  # the true previous words: step t reads m_{t-1}, step 1 the start token
                    start = start_label(self.g, next(iter(self.g.successors(m))))
                    start = start if self.g.nodes[m]["type"].dtype == "int" else f"{m}_0 = {start}"
                    self.rows[m] = Row(_step_nodes(self.grid, self.shown, col0, lv,
                                                   lambda t, m=m, start=start: f"{m}_{t}" if t else start,
                                                   "observed", dots=j == 0), n, lv, observed=True)
                else:
                    self.rows[m] = Row(_step_nodes(self.grid, self.shown, col0, lv, f"{m}_{{t}}", "input",
                                                   dots=j == 0), n, lv)

    def cell_run(self, n, d) -> None:
        """A run of a cell: its step boxes above its input, its states, the context C it hands on."""
        ports = {p: u for u, p, _ in in_edges(self.g, n)}
        flow, roles = self.flows[n], state_roles(self.program.instance(d["callee"], d["sizes"]))
        given = {p: self.rows[ports[p]] for p in flow.input_names if p in ports and ports[p] in self.rows}
        x = self.rows[ports[flow.input_names[0]]]
        col0 = self.axes[x.axis]
        lv = self.level(x.axis, max(r.row for r in given.values() if r.axis == x.axis) + 1)
        run = Run(self.grid, f"{d['instance']}: {d['callee']}", flow, roles, self.shown, col0, lv,
                  d["reverse"], prefix=f"{d['instance']}.")
        self.feed(run, given, ports)
        inits = {}
        for s in flow.states:
            if s in ports and flow.initials(s):  # drawn where a step reads it
                inits[s] = _place_single(self.grid, self.singles, ports[s], col0 - 1,
                                         lv + (LONG_DY if roles[s] == "long" else 0))
        run.states(inits, draw_finals=n not in self.consumed)
        if n in self.consumed:
            self.context(run, d, col0, lv)
        mems = {m: self.rows[ports[m]] for m in flow.memories if m in ports and ports[m] in self.rows}
        if mems:
            self.contexts.append((run, mems, x.axis))
        self.rows[n] = Row(run.boxes, x.axis, lv, run=run)

    def feed(self, run, given: dict, ports: dict) -> None:
        """Every per-step input into the run's step boxes, named when there are several."""
        for p, r in given.items():
            per_step = str(self.g.nodes[ports[p]]["type"].with_(seq=False))
            attrs = _chain_label(r.chain + ([per_step] if self.shapes else []))
            if r.observed:
                attrs = learning_edge(**attrs)
            if len(given) > 1:  # which input it is, on a line of its own
                attrs["label"] = "\n".join([attrs.get("label", ""), f"→ {p}"]).strip("\n")
            for a, b, t in zip(r.ids, run.boxes, self.shown):
                if t is not None and a is not None and p in run.flow.inputs[run.turn(t)]:
                    self.dot.edge(a, b, **attrs)

    def context(self, run, d, col0, lv) -> None:
        """The context C right of a run whose final states start another: it stands for them."""
        ctx = self.grid.node(f"context C\n({d['instance']}.final)", col0 + len(self.shown), lv, shape="box",
                             **style("context", penwidth="2"))
        for s in run.flow.states:
            line = COLORS[run.roles[s]][1]
            self.dot.edge(run.box(run.steps - 1), ctx, color=line, penwidth="2")
            run.final_nodes[s] = ctx
        run.context = ctx

    def block_run(self, n, d) -> None:
        """A run of a block: a row of step boxes above its input, attention edges between them."""
        src = self.rows[next(u for u, p, _ in in_edges(self.g, n))]
        callee = self.program.instance(d["callee"], d["sizes"])
        att = [a for a, ad in callee.nodes(data=True) if ad["op"] == Op.ATTENTION]
        causal = bool(att) and all(callee.nodes[a]["causal"] for a in att)
        lv = self.level(src.axis, src.row + 1)
        ids = _step_nodes(self.grid, self.shown, self.axes[src.axis], lv, f"{d['instance']}: {d['callee']}\nt={{t}}",
                          "cell", width="1.15")
        attention_edges(self.dot, src.ids, ids, self.shown, self.shown, causal, bool(att))
        self.rows[n] = Row(ids, src.axis, lv)

    def get(self, n, d, ins) -> None:
        src = self.rows[ins[0][0]]
        if d["field"].startswith("final."):
            self.singles[n] = [src.run.final_nodes[d["field"][6:]], [], n]
        else:
            self.rows[n] = Row(src.ids, src.axis, src.row, [], src.run)

    def last(self, n, ins) -> None:
        """`x[last]`: a run's final h when that is what it is, else a node right of the last step."""
        u = ins[0][0]
        src = self.rows[u]
        run, field = src.run, self.g.nodes[u].get("field") if self.g.nodes[u]["op"] == Op.GET else None
        if run and not src.chain and not run.reverse and run.context is None and field in run.final_nodes:
            self.singles[n] = [run.final_nodes[field], [], n]  # enc.h[last] is enc's final h
            return
        last = next(i for i in reversed(src.ids) if i is not None)
        node = self.grid.node(f"{_name_of(self.g, u)}[last]", self.axes[src.axis] + len(self.shown), src.row - 0.55,
                              shape="box", **style("short"))
        self.dot.edge(last, node, **_chain_label(src.chain))
        self.singles[n] = [node, [], n]

    def output(self, n, d, ins) -> None:
        """An output per step above its source, or a per-sample result right of every time axis; a
        prediction the model reads back (y[t-1]) feeds each step's into the next step's input."""
        src = ins[0][0]
        if src not in self.rows:
            self.per_sample_output(d, src)
            return
        r = self.rows[src]
        lv = self.level(r.axis, r.row + 1)
        label = f"{d['output']}_{{t}}"
        if d.get("dist"):  # a prediction, two lines: word_3, ~ categorical
            label = prediction_label(d, label).replace(" ~ ", "\n~ ")
        ys = _step_nodes(self.grid, self.shown, self.axes[r.axis], lv, label, "output")
        for a, b, t in zip(r.ids, ys, self.shown):
            if t is not None and a is not None:
                edge = _chain_label(r.chain)
                self.dot.edge(a, b, **(learning_edge(**edge) if r.observed else edge))
        fed = next((self.rows[m] for m, o in self.predicted.items() if o == n), None)
        if fed is not None:  # generation: each prediction is the next step's input
            for a, b in zip(ys, fed.ids[1:]):
                if a is not None and b is not None:
                    self.dot.edge(a, b, **generation_edge())

    def per_sample_output(self, d, src) -> None:
        """A per-sample result: right of every time axis, on its source's row."""
        node, chain, _ = self.singles[src]
        col = self.grid.next_col + (1 if node is not None else 2)
        row = self.grid.at[node][1] if node is not None else 1
        while row in self.right:
            row += 0.7
        self.right.add(row)
        via = _place_single(self.grid, self.singles, src, col, row)  # the chain of ops in an ellipse
        out = self.grid.node(prediction_label(d).replace(" ~ ", "\n~ "), col + (1 if any(chain) else 0), row,
                             shape="box", **style("output"))
        self.dot.edge(via, out)

    def position_wise(self, n, ins) -> None:
        """Any other op: a word on the edges of the value it reads (per step or per sample)."""
        row_ins = [u for u, _ in ins if u in self.rows]
        word = op_word(self.g, n)
        if row_ins:
            base = self.rows[row_ins[-1]]
            observed = all(self.rows[u].observed for u in row_ins)  # the true previous words alone
            self.rows[n] = Row(base.ids, base.axis, base.row, base.chain + [word], base.run, observed)
        elif ins:
            src = self.singles[ins[0][0]]
            self.singles[n] = [src[0], src[1] + [word], src[2]]


def _contexts(grid, run, mems: dict, row) -> None:
    """Each decoder step's context C_t, above the decoder (row `row`, between its step and the one
    before), with an edge from every step of each sequence it attends (memory → its row) at that
    step: a fan, not a bundle."""
    for i, (b, t) in enumerate(zip(run.boxes, run.shown)):
        reads = [src for m, src in mems.items() if t is not None and run.turn(t) in run.flow.memories[m]]
        if not reads:
            continue
        c = grid.node(f"C_{t + 1}", run.col0 + i - 0.5, row, shape="circle", width="0.42", fixedsize="true",
                      fontsize="8", **style("context"))
        for src in reads:
            attention_edges(grid.dot, src.ids, [c], run.shown, [t], causal=False)
        grid.dot.edge(c, b, color=COLORS["context"][1])


def _place_single(grid, singles, n, col, row) -> str:
    """A per-sample value (image, enc.h[last], C): draw it on first use, next to its consumer."""
    node, chain, origin = singles[n]
    if node is None:
        node = grid.node(origin, col - 1, row, shape="box", **style("input"))
        singles[n][0] = node
    words = [w for w in chain if w]
    if words:
        via = grid.node(" ".join(words), col, row, shape="ellipse", fontsize="9", **style("op"))
        grid.dot.edge(node, via)
        return via
    return node


def _name_of(g, n, depth: int = 3) -> str:
    """How a model value reads: its name, `enc.y` for a run's field, and a temporary (`temp`) as
    the op words it applies to what it reads (`tanh(enc.y)`), never its generated name."""
    d = g.nodes[n]
    if d["op"] == Op.GET:
        return f"{g.nodes[in_edges(g, n)[0][0]]['instance']}.{d['field']}"
    if d["op"] == Op.SHIFT:  # y[t-1], never its generated name
        return f"{_name_of(g, in_edges(g, n)[0][0], depth - 1) if depth > 0 else '…'}[t-1]"
    if not d.get("temp"):
        return n
    ins = [u for u, _, _ in in_edges(g, n) if g.nodes[u]["op"] not in HIDDEN]
    names = [_name_of(g, u, depth - 1) for u in ins] if depth > 0 else ["…"]
    word = op_word(g, n)
    if len(names) == 2 and len(word) == 1:  # an operator: a + b
        return f"({names[0]} {word} {names[1]})"
    return f"{word}({', '.join(names)})" if word else ", ".join(names)
