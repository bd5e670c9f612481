"""last_state: `enc.h[last]`, a state of a forward run read at its last step, becomes the run's final
state (`enc.final.h`): the same value, also with lengths (a run stops updating a sample's states after
its last real step), and one the run returns anyway.

In:  a specialised model graph and `states_of(call node attrs)` → {state: (type, initial value)} of
     the cell a call runs.
Out: the graph in which each `last` of a `get` of such a state reads a `get` of `final.<state>`
     instead (a new node, or the one the model already has). The run then keeps no per-step states
     (codegen asks for them only when they are read), so a standard cell stays on its fused kernel
     (AttnTranslate's encoder, Sentiment's). A reversed or bidirectional run is left alone: its last
     step is not its final one. The driver runs it on every model before the pipeline; the
     renderer never sees it (it draws the spec's `[last]`).
"""

from __future__ import annotations

from ..ir import add_temp, in_edges, verify
from ..ops import Op


def last_state(g, states_of):
    h = g.copy()
    changed = False
    for n in [n for n, d in g.nodes(data=True) if d["op"] == Op.LAST]:
        src = in_edges(h, n)[0][0]
        ds = h.nodes[src]
        if ds["op"] != Op.GET or str(ds["field"]).startswith("final."):
            continue
        call = in_edges(h, src)[0][0]
        dc = h.nodes[call]
        if dc["op"] != Op.CALL or dc["kind"] != "cell" or dc.get("reverse") or ds["field"] not in states_of(dc):
            continue
        final = _final_get(h, call, ds["field"], h.nodes[n])
        for _, v, _k, attrs in list(h.out_edges(n, keys=True, data=True)):
            h.add_edge(final, v, **attrs)
        h.remove_node(n)
        changed = True
    if changed:
        h.remove_nodes_from([u for u in list(h) if h.nodes[u]["op"] == Op.GET and not h.out_degree(u)])
        verify(h)
    return h


def _final_get(h, call, state: str, like: dict) -> str:
    for v in h.successors(call):
        if h.nodes[v]["op"] == Op.GET and h.nodes[v]["field"] == f"final.{state}":
            return v
    name = add_temp(h, f"{call}_final_{state}", Op.GET, like["type"], like["span"], field=f"final.{state}")
    h.add_edge(call, name, port=0, delay=0)
    return name
