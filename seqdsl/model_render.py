"""The rolled view of a model: its runs as boxes, each with its state loops.

In:  a `Program`, a model's IR graph, steps, shapes flag.
Out: DOT text: inputs (red), position-wise ops, one box per run of a cell or block
     with a loop per state (h blue, c purple, labelled with its delays), outputs (green).
     A run whose final states start another (`from enc.final`) hands them over through a
     yellow "context C" node. Other GET nodes and the bias half of linear() are folded
     into edge labels; an edge into a run names the port it feeds (`→ mask`, `→ h`),
     unless that is the callee's only input.
     A model that reads its previous prediction (`out word ~ categorical(...)`, `word[t-1]`)
     draws the observed `word` (the true words, orange), the shift as `word[t-1]` (<s> at
     t=1), fed by the true words in learning (teacher forcing) and, dashed, by the prediction
     `word ~ categorical` in generation.
"""

from __future__ import annotations

from .dot import Dot
from .ir import delays, in_edges, interface, topo_order
from .ops import Op
from .render_style import (
    HIDDEN,
    generation_edge,
    learning_edge,
    legend,
    op_word,
    prediction_label,
    predictions_read,
    previous_label,
    state_loop,
    state_roles,
    style,
)


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
        ids[n] = _node(program, g, n, dot)
    for n in topo_order(g):
        if n not in ids or ids[n] in contexts.values() and g.nodes[n]["op"] == Op.GET:
            continue  # a context node: drawn with its edge from the run
        _edges_into(program, g, n, ids, dot, shapes)
    for inp, out in predictions_read(g).items():  # generation: the prediction is the next step's word[t-1]
        for shift in sorted(g.successors(inp)):
            dot.edge(ids[out], ids[shift], **generation_edge(label="generation", constraint="false"))
    legend(dot)
    return dot.text()


def _node(program, g, n, dot: Dot) -> str:
    """The node of model node n: an input, a run (with its state loops), an output or an op."""
    d = g.nodes[n]
    op = d["op"]
    if op == Op.INPUT:
        if d.get("observed"):
            return dot.node(f"{n}: {d['type']}\n(observed)", shape="box", **style("observed"))
        return dot.node(f"{n}: {d['type']}", shape="box", **style("input"))
    if op == Op.SHIFT:
        return dot.node(previous_label(g, n), shape="box", **style("input"))
    if op == Op.OUTPUT:
        return dot.node(prediction_label(d), shape="box", **style("output"))
    if op == Op.CALL:
        box = dot.node(f"{d['instance']}: {d['callee']}" + (" (reversed)" if d["reverse"] else ""),
                       shape="box", width="1.4", height="0.6", **style("cell", penwidth="2"))
        if d["kind"] == "cell":
            callee = program.instance(d["callee"], d["sizes"])
            roles, ks = state_roles(callee), delays(callee)
            for s, role in roles.items():
                state_loop(dot, box, s, role, ks[s])
        return box
    return dot.node(op_word(g, n), shape="ellipse", **style("op", fontsize="10", height="0.3"))


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
            if g.nodes[u].get("observed") and g.nodes[n]["op"] == Op.SHIFT:  # the true words: teacher forcing
                text = " ".join(w for w in ("learning", text) if w)
            if shapes:
                text = (text + " " if text else "") + str(g.nodes[u]["type"])
            attrs = {"label": text} if text else {}
            dot.edge(ids[u], ids[n], **(learning_edge(**attrs) if g.nodes[u].get("observed") else attrs))


