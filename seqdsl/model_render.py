"""The rolled view of a model: its runs as boxes, each with its state loops.

In:  a `Program`, a model's IR graph, steps, shapes flag.
Out: DOT text: inputs (red), position-wise ops, one box per run of a cell or block
     with a loop per state (h blue, c purple, labelled with its delays), outputs (green).
     A run whose final states start another (`from enc.final`) hands them over through a
     yellow "context C" node. Other GET nodes and the bias half of linear() are folded
     into edge labels; an edge into a run names the port it feeds (`→ mask`, `→ h`),
     unless that is the callee's only input.
"""

from __future__ import annotations

from .dot import Dot
from .ir import delays, in_edges, interface, topo_order
from .ops import Op
from .render_style import HIDDEN, legend, op_word, state_loop, state_roles, style


def model_rolled(program, g, shapes: bool) -> str:
    dot = Dot(f"{g.graph['name']} (rolled)", rankdir="BT", nodesep="0.35", ranksep="0.4",
              label=f"model {g.graph['name']}: rolled", labelloc="t")
    ids = {}
    contexts: dict = {}  # run -> its context C node
    for n in topo_order(g):
        d = g.nodes[n]
        op = d["op"]
        if op == Op.GET and d["field"].startswith("final."):
            call = in_edges(g, n)[0][0]
            if call not in contexts:  # one context node per run, whatever reads its final states
                contexts[call] = dot.node(f"context C\n({g.nodes[call]['instance']}.final)", shape="box",
                                          **style("context", penwidth="2"))
                dot.edge(ids[call], contexts[call], label="final")
            ids[n] = contexts[call]
            continue
        if op in HIDDEN or op == Op.GET or (op == Op.ADD and not op_word(g, n)):
            continue
        if op == Op.INPUT:
            ids[n] = dot.node(f"{n}: {d['type']}", shape="box", **style("input"))
        elif op == Op.OUTPUT:
            ids[n] = dot.node(d["output"], shape="box", **style("output"))
        elif op == Op.CALL:
            ids[n] = dot.node(f"{d['instance']}: {d['callee']}" + (" (reversed)" if d["reverse"] else ""),
                              shape="box", width="1.4", height="0.6", **style("cell", penwidth="2"))
            if d["kind"] == "cell":
                callee = program.instance(d["callee"], d["sizes"])
                roles, ks = state_roles(callee), delays(callee)
                for s, role in roles.items():
                    state_loop(dot, ids[n], s, role, ks[s])
        else:
            ids[n] = dot.node(op_word(g, n), shape="ellipse", **style("op", fontsize="10", height="0.3"))
    for n in topo_order(g):
        if n not in ids or ids[n] in contexts.values() and g.nodes[n]["op"] == Op.GET:
            continue  # a context node: drawn with its edge from the run
        _edges_into(program, g, n, ids, dot, shapes)
    legend(dot)
    return dot.text()


def _edges_into(program, g, n, ids, dot, shapes: bool) -> None:
    """The edges into drawn node n, each from the drawn node its value comes from through folded
    ops, labelled with the fields read on the way and, into a run, the port it feeds (unless
    it is the callee's only input: `→ x` says nothing there)."""
    sole = None
    if g.nodes[n]["op"] == Op.CALL:
        ins = interface(program.instance(g.nodes[n]["callee"], g.nodes[n]["sizes"]))["inputs"]
        sole = next(iter(ins)) if len(ins) == 1 else None
    for u, port, _ in in_edges(g, n):
        label = []
        while u not in ids and g.nodes[u]["op"] not in HIDDEN:
            if g.nodes[u]["op"] == Op.GET:
                label.append(g.nodes[u]["field"])
            ins = [x for x, _, _ in in_edges(g, u) if g.nodes[x]["op"] not in HIDDEN]
            if not ins:
                break
            u = ins[0]
        if u in ids:
            text = " ".join(label + ([f"→ {port}"] if isinstance(port, str) and port != sole else []))
            if shapes:
                text = (text + " " if text else "") + str(g.nodes[u]["type"])
            dot.edge(ids[u], ids[n], **({"label": text} if text else {}))


