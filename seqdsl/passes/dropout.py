"""dropout: a definition for inference, where dropout is the identity, or for training, where it
multiplies by a mask the runtime draws.

In:  a specialised IR graph; for training, models and blocks also need `callee(call attrs)` → the
     definition a `call` node runs, already made for training: {"dropouts": its table (below),
     "output_axes", "step_inputs" (as `analysis.time_axes` wants)}.
Out: `without_dropout(g)`: every `dropout` node an `identity`. `with_dropout(g, callee)`: every
     `dropout(x, p)` node `x * keep`, keep a hidden input (`_keep_<name>`) of x's dims holding 0
     or 1/(1-p) (so the expected value is x); a run gets one such input per mask its callee
     takes. `g.graph["dropouts"]`: hidden input → (p, variational, axis), axis the input or memory
     whose steps or positions the mask runs along (None: one per sample). The runtime draws each
     mask: (B, T, *dims) along an axis, (B, *dims) without; `variational` (Gal & Ghahramani) draws
     one per sample and repeats it along the axis: a cell's recurrent connection then drops the
     same units at every step.

In a cell a mask on a per-step value is a per-step input (the axis is the cell's steps), on a
value over a memory's positions a memory; in a model or block, a mask on a sequence is a sequence
input along that sequence's axis, on a per-sample value a per-sample input.
"""

from __future__ import annotations

from ..analysis.time_axes import cell_axes, straight_axes
from ..errors import SpecError
from ..ir import add_temp, in_edges, nodes_with
from ..ops import Op, infer
from ..types import VType


def without_dropout(g):
    g = g.copy()
    for n in nodes_with(g, Op.DROPOUT):
        d = g.nodes[n]
        d["op"] = Op.IDENTITY
        del d["p"], d["variational"]
    return g


def _keep_input(g, n, op: Op, typ: VType) -> str:
    return add_temp(g, f"keep_{n}", op, typ, g.nodes[n]["span"])


def _multiply(g, n, keep: str) -> None:
    """dropout node n becomes x * keep (its name, readers and delay-free operand kept)."""
    d = g.nodes[n]
    g.add_edge(keep, n, port=1, delay=0)
    d["op"] = Op.MUL
    d["type"] = infer(Op.MUL, {}, [g.nodes[u]["type"] for u, _, _ in in_edges(g, n)], d["span"])
    del d["p"], d["variational"]


def with_dropout(g, callee=None):
    g = g.copy()
    table: dict = {}
    if g.graph["kind"] == "cell":
        step, axis = cell_axes(g)
        for n in nodes_with(g, Op.DROPOUT):
            d = g.nodes[n]
            x = in_edges(g, n)[0][0]
            t = d["type"]
            seq = t.seq
            keep = _keep_input(g, n, Op.MEMORY if seq else Op.INPUT, VType(t.dims, seq, "float", True))
            table[keep] = (d["p"], d["variational"], axis.get(x) if seq else step)
            _multiply(g, n, keep)
    else:
        axis, _ = straight_axes(g, callee)
        for n in nodes_with(g, Op.DROPOUT):
            d = g.nodes[n]
            x = in_edges(g, n)[0][0]
            along = axis.get(x) if d["type"].seq else None
            if d["type"].seq and along is None:
                raise SpecError("cannot tell which sequence this dropout's positions follow", d["span"],
                                "dropout in a model or block needs a value computed from a sequence input")
            keep = _keep_input(g, n, Op.INPUT, VType(d["type"].dims, d["type"].seq, "float", True))
            table[keep] = (d["p"], d["variational"], along)
            _multiply(g, n, keep)
        for n in nodes_with(g, Op.CALL):
            _feed_call(g, n, callee(g.nodes[n]), axis, table)
    g.graph["dropouts"] = table
    return g


def _feed_call(g, n, info: dict, axis: dict, table: dict) -> None:
    """A run gets, for each mask its callee takes, a hidden input of the caller along the axis of
    the value the callee's mask follows."""
    feeds = {port: u for u, port, _ in in_edges(g, n)}
    for hidden, (p, variational, port) in info["dropouts"].items():
        along = axis.get(feeds[port]) if port is not None else None
        if port is not None and along is None:
            raise SpecError(f"cannot tell which sequence the steps of run '{g.nodes[n]['instance']}' follow, "
                            "so its dropout masks cannot be drawn", g.nodes[n]["span"])
        dims = info["types"][hidden].dims
        keep = add_temp(g, f"keep_{g.nodes[n]['instance']}_{hidden.lstrip('_')}", Op.INPUT,
                        VType(dims, port is not None, "float", True), g.nodes[n]["span"])
        table[keep] = (p, variational, along)
        g.add_edge(keep, n, port=hidden, delay=0)
