"""time_axes: which sequence's time axis each value of a definition runs along.

In:  a specialised IR graph; for models and blocks, `callee(call node attrs)` → what a `call`
     node's definition says of its own axes: {"output_axes": output → the callee's inputs or
     memories whose axes its axes after the batch follow, "step_inputs": a cell's per-step
     inputs, in order}.
Out: `callee_axes(vg)`: what a caller's `callee(...)` gives of definition graph vg;
     `cell_axes(g)` → (the cell's step axis: its first input, {sequence value → the memory whose
     positions it runs over}); `straight_axes(g, callee)` → ({sequence value → the sequence input
     whose time axis it follows}, {value → its axes, for a run's output with two (attention
     weights: the run's steps, then the memory's positions)}). A value computed from several
     sequences follows the first; one computed from none (positions alone) has no entry. Lengths
     (`passes/mask_lengths`) and dropout masks (`passes/dropout`) are made per axis.
"""

from __future__ import annotations

from ..ir import in_edges, interface, outputs, topo_order
from ..ops import Op


def cell_axes(g) -> tuple:
    step = next(iter(interface(g)["inputs"]))
    axis: dict = {}
    for n in topo_order(g):
        d = g.nodes[n]
        if not d["type"].seq:
            continue
        if d["op"] == Op.MEMORY:
            if not d.get("temp"):  # a hidden mask is no axis of its own
                axis[n] = n
        else:
            found = next((axis[u] for u, _, k in in_edges(g, n) if not k and u in axis), None)
            if found is not None:
                axis[n] = found
    return step, axis


def straight_axes(g, callee) -> tuple:
    axis: dict = {}
    nested: dict = {}
    for n in topo_order(g):
        d = g.nodes[n]
        if d["op"] == Op.INPUT:
            if d["type"].seq and not d.get("temp"):
                axis[n] = n
        elif d["op"] == Op.GET:
            _field_axes(g, n, callee, axis, nested)
        elif d["op"] != Op.CALL and d["type"].seq:
            found = next((axis[u] for u, _, _ in in_edges(g, n) if u in axis), None)
            if found is not None:
                axis[n] = found
    return axis, nested


def _field_axes(g, n, callee, axis: dict, nested: dict) -> None:
    """A field of a run: an output has the axes of the inputs its callee says; a per-step state
    the axis of the run's first input; a final state none."""
    (src,) = [u for u, _, _ in in_edges(g, n)]
    field = g.nodes[n]["field"]
    if field.startswith("final.") or not g.nodes[n]["type"].seq:
        return
    info = callee(g.nodes[src])
    feeds = {port: u for u, port, _ in in_edges(g, src)}
    if field in info["output_axes"]:
        axes = tuple(axis.get(feeds[p]) for p in info["output_axes"][field])
    else:
        axes = (axis.get(feeds[info["step_inputs"][0]]),)
    if len(axes) == 1:
        if axes[0] is not None:
            axis[n] = axes[0]
    elif axes:
        nested[n] = axes


def callee_axes(vg) -> dict:
    """What `straight_axes` needs of a called definition's graph `vg` (its `output_axes` recorded):
    {"output_axes", "step_inputs": its inputs other than hidden masks and dropout masks, in order}."""
    hidden = set(vg.graph.get("masks", {})) | set(vg.graph.get("dropouts", {}))
    return {"output_axes": vg.graph["output_axes"],
            "step_inputs": [n for n in interface(vg)["inputs"] if n not in hidden]}


def output_axes(g, callee) -> dict:
    """output name → the inputs or memories whose axes its axes after the batch follow, in order
    (`()` not a sequence; a cell's attention weights: its steps, then the memory's positions)."""
    if g.graph["kind"] == "cell":
        step, axis = cell_axes(g)
        return {g.nodes[o]["output"]: (step,) + ((axis.get(in_edges(g, o)[0][0]),) if g.nodes[o]["type"].seq else ())
                for o in outputs(g)}
    axis, nested = straight_axes(g, callee)
    out = {}
    for o in outputs(g):
        src = in_edges(g, o)[0][0]
        out[g.nodes[o]["output"]] = (axis[src],) if src in axis else nested.get(src, ())
    return out
