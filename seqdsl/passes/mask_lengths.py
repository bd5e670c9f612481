"""mask_lengths: a definition made to run on padded batches of sequences of different lengths.

In:  a specialised IR graph, and for models and blocks `callee_masks(call node attrs)` → the
     masks (below) of the definition a `call` node runs, already masked itself.
Out: a new graph that takes, besides its inputs, one hidden 0/1 mask per time axis it needs and
     is exact on every sample's real positions. `g.graph["masks"]` lists them: hidden node
     → (kind, key), kind "steps" (1 at a real position, 0 at padding) or "last" (1 at the
     sample's last real position), key the input or memory whose lengths it is made from. The
     runtime builds each from `lengths=` (absent: full length); generated code never sees a
     length. `g.graph["output_axes"]`: output name → the inputs or memories whose lengths its
     axes after the batch follow, in order (`()`: not a sequence; a cell's attention weights
     have two: the steps', then the memory's).

What changes, by kind of definition:

- **cell** (a step loop; its per-step inputs share one time axis, mask `_mask`, type `[]`):
  every state becomes `select(_mask, <new value>, s[t-1])`, so it stops changing after the
  sample's last step (`final` is the value at that step; a `reversed` run, which steps from T-1
  down, keeps its initial state through the padding and starts at the last real token). Its
  per-step outputs are zeroed at padding by whoever takes the whole sequence, in one select
  (`g.graph["unzeroed"]`: the caller, or for a cell compiled alone the runtime); an output with
  a memory axis (attention weights) is `select(_mask_m, select(_mask, y, 0), 0)` in the loop.
  For each memory m (an attended sequence with lengths of its own, mask `_mask_m`, `seq[]`): a
  softmax over its positions reads `select(_mask_m, x, -inf)`, a sum `select(_mask_m, x, 0)`,
  `x[last]` the sum of `select(_last_m, x, 0)`, attention gets the mask as its key-padding mask.
  A dropout mask over a memory's positions (`passes.dropout`) follows that memory's lengths.
- **model / block** (values batch-first over whole sequences; one axis per sequence input):
  each value's time axis is that of the first sequence it is computed from. A run of a cell or
  block gets the masks of the axes its inputs and memories have; a sum over time reads
  `select(_mask_x, v, 0)`; `v[last]` becomes the sum of `select(_last_x, v, 0)`; attention
  gets the key-padding mask of its keys' axis; per-step states read from a run and every
  sequence output are `select(_mask_x, v, 0)`: padded positions are zero, with zero gradient.
  `g.graph["follows"]`: a sequence input read by a run at another's steps → that other input
  (the runtime refuses other lengths for it, and zeroes its padding by the other's).
"""

from __future__ import annotations

from ..analysis.time_axes import cell_axes, output_axes, straight_axes
from ..errors import SpecError
from ..ir import add_node, add_temp, fresh_name, in_edges, interface, outputs, topo_order
from ..ops import Op, infer
from ..types import VType

STEP_MASK = VType((), False, "float", True)  # a cell's per-step flag: [] per sample
SEQ_MASK = VType((), True, "float", True)  # a 0/1 per position: seq[]
SCALAR = VType((), False, "float", False)  # shared[]


class _Masks:
    """The hidden mask nodes of one graph, made on first use."""

    def __init__(self, g, op_for_key):
        self.g = g
        self.op_for_key = op_for_key  # key -> (Op.INPUT | Op.MEMORY, type) of its masks
        self.made: dict = {}  # (kind, key) -> node

    def get(self, kind: str, key: str) -> str:
        if (kind, key) not in self.made:
            op, typ = self.op_for_key(key)
            stem = "_mask" if (kind, key) == ("steps", None) else f"_{'mask' if kind == 'steps' else 'last'}_{key}"
            name = fresh_name(self.g, stem.lstrip("_")) if stem in self.g else stem
            add_node(self.g, name, op, typ, self.g.graph["span"], temp=True)
            self.made[(kind, key)] = name
        return self.made[(kind, key)]

    def table(self, step_key: str | None = None) -> dict:
        return {n: (kind, step_key if key is None else key) for (kind, key), n in self.made.items()}


def _const(g, value: float, span) -> str:
    return add_temp(g, "zero" if value == 0 else "neg_inf", Op.CONST, SCALAR, span, value=value)


def _select(g, mask: str, a: tuple, b: str, span, stem: str) -> str:
    """A new node select(mask, a, b); `a` is (node, delay)."""
    typ = infer(Op.SELECT, {}, [g.nodes[x]["type"] for x in (mask, a[0], b)], span)
    n = add_temp(g, stem, Op.SELECT, typ, span)
    g.add_edge(mask, n, port=0, delay=0)
    g.add_edge(a[0], n, port=1, delay=a[1])
    g.add_edge(b, n, port=2, delay=0)
    return n


def _reroute(g, n, port, new_src) -> None:
    """Make operand `port` of node n read `new_src` (no delay)."""
    for u, _, key, d in list(g.in_edges(n, keys=True, data=True)):
        if d["port"] == port:
            g.remove_edge(u, n, key)
    g.add_edge(new_src, n, port=port, delay=0)


def _guard_operand(g, n, port, mask, fill: float) -> None:
    """Operand `port` of n (read without delay) becomes select(mask, operand, fill)."""
    (src, _, delay), = [e for e in in_edges(g, n) if e[1] == port]
    span = g.nodes[n]["span"]
    sel = _select(g, mask, (src, delay), _const(g, fill, span), span, f"{src}_masked")
    _reroute(g, n, port, sel)


def _last_to_sum(g, n, last_mask) -> None:
    """`x[last]` → sum(select(last_mask, x, 0)): the value at each sample's own last position."""
    _guard_operand(g, n, 0, last_mask, 0.0)
    g.nodes[n]["op"] = Op.SUM


def _time_ops(g, n, masks, axis_of) -> None:
    """Softmax and sum over a time or memory axis, `[last]` and attention: read only real positions."""
    d = g.nodes[n]
    op = d["op"]
    edges = in_edges(g, n)
    if op in (Op.SOFTMAX, Op.SUM, Op.LAST):
        t = g.nodes[edges[0][0]]["type"]
        if not t.seq or (op == Op.SOFTMAX and t.dims):  # a softmax over features is per position
            return
        key = axis_of(edges[0][0], n)
        if op == Op.LAST:
            _last_to_sum(g, n, masks.get("last", key))
        else:
            _guard_operand(g, n, 0, masks.get("steps", key), float("-inf") if op == Op.SOFTMAX else 0.0)
    elif op == Op.ATTENTION and len(edges) == 3:
        g.add_edge(masks.get("steps", axis_of(edges[1][0], n)), n, port=3, delay=0)


def mask_lengths(g, callee_masks=None):
    g = g.copy()
    if g.graph["kind"] == "cell":
        _mask_cell(g)
    else:
        _mask_straight(g, callee_masks)
    return g


# ---- cells ---------------------------------------------------------------------------

def _mask_cell(g) -> None:
    iface = interface(g)
    step_key, axis = cell_axes(g)
    g.graph["output_axes"] = output_axes(g, None)  # before anything is rerouted

    def op_for_key(key):
        return (Op.INPUT, STEP_MASK) if key is None else (Op.MEMORY, SEQ_MASK)

    drops = g.graph.get("dropouts", {})  # a dropout mask over a memory's positions follows that memory

    def axis_of(u, n):
        if axis.get(u) is None:
            raise SpecError(f"cannot tell which memory the positions of '{u}' belong to, so lengths cannot mask them",
                            g.nodes[n]["span"])
        return drops[axis[u]][2] if axis[u] in drops else axis[u]

    masks = _Masks(g, op_for_key)
    for n in topo_order(g):
        _time_ops(g, n, masks, axis_of)
    step = masks.get("steps", None)
    for s in list(iface["states"]):
        _freeze_state(g, s, step)
    unzeroed = []
    for o in outputs(g):
        if not g.nodes[o]["type"].seq:  # zeroed at once over the whole sequence by whoever takes it
            unzeroed.append(g.nodes[o]["output"])
            continue
        src, _, delay = in_edges(g, o)[0]
        span = g.nodes[o]["span"]
        sel = _select(g, step, (src, delay), _const(g, 0.0, span), span, f"{src}_out")
        axes = g.graph["output_axes"].get(g.nodes[o]["output"], ())
        if len(axes) == 2:  # and zero at its memory's padding (a softmax's already is; tanh(m) is not)
            sel = _select(g, masks.get("steps", axes[1]), (sel, 0), _const(g, 0.0, span), span, f"{src}_out")
        _reroute(g, o, 0, sel)
        g.nodes[o]["type"] = g.nodes[sel]["type"]
    g.graph["unzeroed"] = unzeroed
    for m in iface["memories"]:  # every memory takes its masks, used or not: one calling convention
        if m not in drops:  # (a dropout mask is no memory of the caller's)
            masks.get("steps", m)
    g.graph["masks"] = masks.table(step_key)


def _freeze_state(g, s, step) -> None:
    """State s becomes select(step, <its new value>, s[t-1]): it keeps its value past the end."""
    d = g.nodes[s]
    keep = {"state", "init", "decl", "name", "op", "type", "span"}
    new = add_temp(g, f"{s}_next", d["op"], d["type"], d["span"],
                   **{k: v for k, v in d.items() if k not in keep and k != "temp"})
    for u, _, key, ed in list(g.in_edges(s, keys=True, data=True)):
        g.add_edge(u, new, **ed)
        g.remove_edge(u, s, key)
    d["op"] = Op.SELECT
    for k in [k for k in d if k not in keep]:
        del d[k]
    g.add_edge(step, s, port=0, delay=0)
    g.add_edge(new, s, port=1, delay=0)
    g.add_edge(s, s, port=2, delay=1)


# ---- models and blocks -----------------------------------------------------------------

def _mask_straight(g, callee_masks) -> None:
    axis, _ = straight_axes(g, callee_masks)  # node -> the sequence input whose time axis it has
    g.graph["output_axes"] = output_axes(g, callee_masks)  # before the outputs are rerouted
    masks = _Masks(g, lambda key: (Op.INPUT, SEQ_MASK))

    def axis_of(u, n):
        if axis.get(u) is None:
            raise SpecError("cannot tell which input's lengths the positions of this value follow",
                            g.nodes[n]["span"], "lengths follow a sequence input through every value computed from it")
        return axis[u]

    for n in topo_order(g):
        d = g.nodes[n]
        if d["op"] == Op.CALL:
            feeds = {port: u for u, port, _ in in_edges(g, n)}
            for hidden, (kind, port) in callee_masks(d)["masks"].items():
                g.add_edge(masks.get(kind, axis_of(feeds[port], n)), n, port=hidden, delay=0)
        elif d["op"] == Op.GET:
            _zero_field(g, n, masks, axis, callee_masks)
        else:
            _time_ops(g, n, masks, axis_of)
    g.graph["follows"] = _follows(g, axis, callee_masks)
    for o in outputs(g):
        src = in_edges(g, o)[0][0]
        if g.nodes[o]["type"].seq and axis.get(src) is not None:
            span = g.nodes[o]["span"]
            sel = _select(g, masks.get("steps", axis[src]), (src, 0), _const(g, 0.0, span), span, f"{src}_out")
            _reroute(g, o, 0, sel)
    g.graph["masks"] = masks.table()


def _follows(g, axis, callee_masks) -> dict:
    """Sequences read by a run at the steps of another (`over (x = a, u = b)`: b follows a, whose
    lengths the run takes): sequence input → the one it follows."""
    out: dict = {}
    for n, d in g.nodes(data=True):
        if d["op"] != Op.CALL:
            continue
        feeds = {port: u for u, port, _ in in_edges(g, n)}
        keys = [axis.get(feeds[p]) for p in callee_masks(d).get("step_inputs") or () if p in feeds]
        for k in keys[1:]:
            if k is not None and keys[0] is not None and k != keys[0]:
                out.setdefault(k, keys[0])
    return out


def _zero_field(g, n, masks, axis, callee_masks) -> None:
    """A run's per-step state, or an output its cell leaves for its caller to zero (per step they
    hold each sample's last values past its end), reads zero at padding: one select over the
    whole sequence."""
    (src,) = [u for u, _, _ in in_edges(g, n)]
    field = g.nodes[n]["field"]
    info = callee_masks(g.nodes[src])
    if (field.startswith("final.") or (field in info["output_axes"] and field not in info["unzeroed"])
            or axis.get(n) is None):
        return
    span = g.nodes[n]["span"]
    readers = [(v, k, ed) for _, v, k, ed in g.out_edges(n, keys=True, data=True)]
    sel = _select(g, masks.get("steps", axis[n]), (n, 0), _const(g, 0.0, span), span, f"{n}_zeroed")
    for v, k, ed in readers:
        g.remove_edge(n, v, k)
        g.add_edge(sel, v, **ed)
    axis[sel] = axis[n]
