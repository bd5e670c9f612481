"""The IR: one networkx.MultiDiGraph per definition, its verifier and its text form.

In:  graphs built by `seqdsl.lower` (and rewritten by `seqdsl.passes`).
Out: `new_graph()`, `add_node()`, `verify(g)` (raises `IRError` on a broken invariant),
     `to_text(g)` (deterministic, for golden tests and `seqdsl ir`), `to_json(g)`
     (node-link JSON) and traversal helpers (`inputs_of`, `topo_order`).

Node and edge attributes are documented in docs/ir.md. In short: every node has `op`
(`seqdsl.ops.Op`), `name` (unique; the variable name in generated code), `type`
(`VType`) and `span`; a node that defines a state has `state=True` and `init`; a
temporary the compiler made (not a name of the spec) has `temp=True`. Every
edge has `port` (argument position, or for `call` nodes the name of the callee's input,
state or memory it feeds) and `delay` (0, or k for a reference `h[t-k]`). Graph
attributes: `kind`, `name`, `sizes`.
"""

from __future__ import annotations

import json

import networkx as nx

from .errors import InternalError, Span
from .ops import OPS, Op, infer
from .sizes import Size
from .types import VType


class IRError(InternalError):
    """An IR invariant is broken (a bug in lowering or a pass, not in the spec).

    An `InternalError`, not a `SpecError`: handlers of spec mistakes never swallow it."""


def new_graph(kind: str, name: str, sizes: dict, span: Span) -> nx.MultiDiGraph:
    return nx.MultiDiGraph(kind=kind, name=name, sizes=dict(sizes), span=span)


def add_node(g: nx.MultiDiGraph, name: str, op: Op, type: VType, span: Span, inputs=(), **attrs) -> str:
    """Add node `name`; `inputs` is a list of (source, delay) or (source, delay, port)."""
    if name in g:
        raise IRError(f"IR node '{name}' defined twice", span)
    g.add_node(name, op=op, name=name, type=type, span=span, **attrs)
    for i, item in enumerate(inputs):
        src, delay = item[0], item[1]
        port = item[2] if len(item) > 2 else i
        g.add_edge(src, name, port=port, delay=delay)
    return name


def add_temp(g: nx.MultiDiGraph, name: str, op: Op, type: VType, span: Span, **attrs) -> str:
    """Add a new temporary for a pass, named `fresh_name(g, name)` and marked `temp=True` (the
    renderer draws it as an unnamed operation); its edges are the caller's to add."""
    return add_node(g, fresh_name(g, name), op, type, span, temp=True, **attrs)


def fresh_name(g, name: str) -> str:
    """A new temporary for a pass: `_` + `name` made an identifier without "__" (other
    characters become `_`, runs of `_` one), or that with 2, 3, ... appended, whichever is not
    yet a node of g. Like lowering's temporaries it starts with `_`, which no spec name does, so
    it never takes a spec name; without "__" it never takes a name that generated code makes
    for itself (see "Names in generated code" in docs/ir.md)."""
    import re

    base = "_" + re.sub(r"_+", "_", re.sub(r"[^0-9A-Za-z_]", "_", name)).lstrip("_")
    k, out = 1, base
    while out in g:
        k += 1
        out = f"{base}{k}"
    return out


def in_edges(g, n):
    """Incoming edges of `n` as (source, port, delay), sorted by port."""
    edges = [(u, d["port"], d["delay"]) for u, _, d in g.in_edges(n, data=True)]
    return sorted(edges, key=lambda e: (str(type(e[1])), e[1]))


def inputs_of(g, n) -> list:
    return [u for u, _, _ in in_edges(g, n)]


def without_delays(g) -> nx.DiGraph:
    dag = nx.DiGraph()
    dag.add_nodes_from(g.nodes)
    dag.add_edges_from((u, v) for u, v, d in g.edges(data=True) if d["delay"] == 0)
    return dag


def topo_order(g) -> list:
    """Nodes in dependency order (delayed edges ignored), ties broken by insertion order."""
    index = {n: i for i, n in enumerate(g.nodes)}
    return list(nx.lexicographical_topological_sort(without_delays(g), key=lambda n: index[n]))


def nodes_with(g, op: Op) -> list:
    return [n for n, d in g.nodes(data=True) if d["op"] == op]


def states(g) -> list:
    """State nodes in declaration order (a state's span is its declaration's)."""
    found = [n for n, d in g.nodes(data=True) if d.get("state")]
    return sorted(found, key=lambda n: (g.nodes[n]["decl"].line, g.nodes[n]["decl"].col))


def output_source(g, o) -> str:
    """The node whose value output node `o` returns."""
    return in_edges(g, o)[0][0]


def outputs(g) -> list:
    """Output nodes in declaration order."""
    return sorted(nodes_with(g, Op.OUTPUT), key=lambda n: (g.nodes[n]["span"].line, g.nodes[n]["span"].col))


def interface(g) -> dict:
    """A definition's inputs, memories, outputs (by output name) and states (in order), with types."""
    return {"inputs": {n: d["type"] for n, d in g.nodes(data=True) if d["op"] == Op.INPUT},
            "memories": {n: d["type"] for n, d in g.nodes(data=True) if d["op"] == Op.MEMORY},
            "outputs": {g.nodes[o]["output"]: g.nodes[o]["type"] for o in outputs(g)},
            "states": {s: g.nodes[s]["type"] for s in states(g)}}


def delays(g) -> dict:
    """state → the delays it is read with, sorted (at least [1]: a state carries to the next step)."""
    found: dict = {s: set() for s in states(g)}
    for u, _, d in g.edges(data=True):
        if d["delay"]:
            found[u].add(d["delay"])
    return {s: sorted(k or {1}) for s, k in found.items()}


def verify(g: nx.MultiDiGraph) -> None:
    """Check every invariant of docs/ir.md; raise `IRError` naming the broken one."""
    for key in ("kind", "name", "sizes"):
        if key not in g.graph:
            raise IRError(f"IR graph lacks attribute '{key}'")
    if g.graph["kind"] == "cell" and not nodes_with(g, Op.INPUT):
        raise IRError(f"cell {g.graph['name']} has no input node", g.graph.get("span"))
    for n, d in g.nodes(data=True):
        span = d.get("span")
        for key in ("op", "name", "type", "span"):
            if key not in d:
                raise IRError(f"IR node '{n}' lacks attribute '{key}'", span)
        if not isinstance(d["op"], Op):
            raise IRError(f"IR node '{n}' has unknown op {d['op']!r}", span)
        if d["name"] != n:
            raise IRError(f"IR node '{n}' is named '{d['name']}'", span)
        if not isinstance(d["type"], VType):
            raise IRError(f"IR node '{n}' has no type", span)
        if d.get("state") and "init" not in d:
            raise IRError(f"state '{n}' has no init", span)
        _verify_naming(g, n, d, span)
        if d["op"] == Op.OUTPUT and g.out_degree(n):
            raise IRError(f"output '{n}' feeds other nodes", span)
        edges = in_edges(g, n)
        for u, _port, delay in edges:
            if not isinstance(delay, int) or delay < 0:
                raise IRError(f"edge {u} -> {n} has bad delay {delay!r}", span)
            if delay and not g.nodes[u].get("state"):
                raise IRError(f"delayed edge {u} -> {n} does not start at a state", span)
        if d["op"] == Op.CALL:
            continue
        ports = [p for _, p, _ in edges]
        if ports != list(range(len(ports))):
            raise IRError(f"IR node '{n}' has ports {ports}", span)
        arity = OPS[d["op"]].arity
        if arity is not None and len(ports) != arity:
            raise IRError(f"IR node '{n}' ({d['op'].value}) has {len(ports)} inputs, expects {arity}", span)
        if d["op"] not in (Op.GET,) and arity != 0:
            expect = infer(d["op"], d, [g.nodes[u]["type"] for u, _, _ in edges], span)
            if expect != d["type"]:
                raise IRError(f"IR node '{n}' has type {d['type']}, its inputs give {expect}", span)
    if not nx.is_directed_acyclic_graph(without_delays(g)):
        cycle = nx.find_cycle(without_delays(g))
        raise IRError("IR has a cycle without delay: " + " -> ".join(u for u, _ in cycle))


def _verify_naming(g, n, d, span) -> None:
    """`temp` is True when present, on a name no spec name can take (it starts with `_`);
    `origin`, the cell node an unrolled copy was made from, only in unrolled graphs."""
    if "temp" in d and d["temp"] is not True:
        raise IRError(f"IR node '{n}' has temp={d['temp']!r}; a temporary has temp=True", span)
    if d.get("temp") and not n.startswith("_"):
        raise IRError(f"temporary '{n}' does not start with '_' and could take a spec name", span)
    if "origin" in d and ("unrolled" not in g.graph or not isinstance(d["origin"], str)):
        raise IRError(f"IR node '{n}' has origin={d['origin']!r} outside an unrolled graph", span)


# ---- text and JSON ----------------------------------------------------------------

# `temp` and `origin` are not printed: a temporary's `_` name already says what `temp` does, and
# unrolled graphs are not printed as text
_SKIP = {"op", "name", "type", "span", "state", "init", "decl", "temp", "origin"}


def fmt_value(v) -> str:
    if isinstance(v, (Size, VType)):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}={fmt_value(x)}" for k, x in sorted(v.items())) + "}"
    if isinstance(v, tuple):
        return "(" + ", ".join(fmt_value(x) for x in v) + ")"
    return str(v)


def fmt_scalar(s) -> str:
    """An initializer's scale (`seqdsl.scalars` tree) as text that reads back as the same tree
    (`seqdsl.ir_parse`)."""
    from .scalars import scalar_str

    return scalar_str(s)


def fmt_init(init) -> str:
    if isinstance(init, tuple) and init and init[0] in ("uniform", "normal", "const"):
        return f"{init[0]}({fmt_scalar(init[1])})"
    return fmt_value(init)


def node_line(g, n) -> str:
    d = g.nodes[n]
    args = []
    for u, port, delay in in_edges(g, n):
        ref = u + (f"[t-{delay}]" if delay else "")
        args.append(f"{port}={ref}" if isinstance(port, str) else ref)
    attrs = [f"{k}={fmt_value(v)}" for k, v in sorted(d.items()) if k not in _SKIP]
    if d["op"] == Op.PARAM:
        attrs.insert(0, f"init={fmt_init(d['init'])}")
    inner = ", ".join(args + attrs)
    state = f" state(init={fmt_init(d['init'])})" if d.get("state") else ""
    return f"  {n}: {d['type']}{state} = {d['op'].value}({inner})  # line {d['span'].line}"


def to_text(g) -> str:
    sizes = ", ".join(f"{k}={fmt_value(v)}" for k, v in g.graph["sizes"].items())
    lines = [f"{g.graph['kind']} {g.graph['name']}({sizes})"]
    lines += [node_line(g, n) for n in topo_order(g)]
    return "\n".join(lines) + "\n"


def _jsonable(v):
    if isinstance(v, (Size, VType, Span)):
        return str(v)
    if isinstance(v, Op):
        return v.value
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (tuple, list)):
        return [_jsonable(x) for x in v]
    return v


def to_json(g) -> str:
    data = nx.node_link_data(g, edges="edges")
    return json.dumps(_jsonable(data), indent=1, sort_keys=True, ensure_ascii=False)
