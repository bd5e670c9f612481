"""DOT text building: generated node ids, escaped labels, deterministic output.

In:  nodes, edges, clusters and rank groups added through `Dot`'s methods.
Out: `Dot.text()`, a DOT digraph. Node ids are generated (n0, n1, ...), never taken
     from the spec, and every label is escaped, so any name or comment renders safely.
     A drawing may have at most `MAX_ITEMS` nodes, edges and clusters: past that, building
     it stops with a SpecError (graphviz would take minutes, or hours, to lay it out).
"""

from __future__ import annotations

MAX_ITEMS = 10_000


def esc(s) -> str:
    """Escape a label for a double-quoted DOT string (backslash, quote, newlines; other control
    characters and lone surrogates become spaces or escapes, so dot never sees invalid text)."""
    s = str(s).replace("\\", "\\\\").replace('"', '\\"')
    s = s.replace("\r", "").replace("\n", "\\n")
    if not s.isprintable():
        s = "".join(ch if ch.isprintable() else " " for ch in s)
    return s.encode("utf-8", "backslashreplace").decode("utf-8")


def _attrs(d: dict) -> str:
    if not d:
        return ""
    return " [" + ", ".join(f'{k}="{esc(v)}"' for k, v in d.items()) + "]"


class Dot:
    def __init__(self, title: str, **graph_attrs):
        self.title = title
        self.graph_attrs = graph_attrs
        self.lines: list = []
        self.edges: list = []
        self.home: dict = {}  # node id -> the cluster it was declared in
        self.count = 0
        self.items = 0
        self.stack: list = []

    def _grow(self) -> None:
        self.items += 1
        if self.items > MAX_ITEMS:
            from .errors import SpecError

            raise SpecError(f"the drawing of {self.title} would have more than {MAX_ITEMS} nodes and edges; "
                            "graphviz would take too long to lay it out", None,
                            "draw fewer steps (--steps), one cell or block of it (--def), the rolled view, "
                            "or fewer layers (--set)")

    def node(self, label: str, **attrs) -> str:
        self._grow()
        nid = f"n{self.count}"
        self.count += 1
        self.home[nid] = self.stack[-1] if self.stack else None
        self._emit(f"{nid}{_attrs({'label': label, **attrs})};")
        return nid

    def edge(self, a: str, b: str, **attrs) -> None:
        # NOTE: an edge written inside a cluster makes both ends members of it, so an edge
        # leaving the cluster is written at the top level instead
        self._grow()
        here = self.stack[-1] if self.stack else None
        if here is not None and self.home.get(a) == here and self.home.get(b) == here:
            self._emit(f"{a} -> {b}{_attrs(attrs)};")
        else:
            self.edges.append(f"  {a} -> {b}{_attrs(attrs)};")

    def same_rank(self, ids) -> None:
        ids = [i for i in ids if i]
        if len(ids) > 1:
            self._emit("{rank=same; " + "; ".join(ids) + ";}")

    def begin_cluster(self, label: str, **attrs) -> None:
        self._grow()
        cid = f"cluster_{self.count}"
        self.count += 1
        self._emit(f"subgraph {cid} {{")
        self.stack.append(cid)
        for k, v in {"label": label, **attrs}.items():
            self._emit(f'{k}="{esc(v)}";')

    def end_cluster(self) -> None:
        self.stack.pop()
        self._emit("}")

    def _emit(self, line: str) -> None:
        self.lines.append("  " * (len(self.stack) + 1) + line)

    def text(self) -> str:
        head = [f'digraph "{esc(self.title)}" {{']
        head += [f'  {k}="{esc(v)}";' for k, v in self.graph_attrs.items()]
        head += ['  node [fontname="Helvetica", fontsize="11"];', '  edge [fontname="Helvetica", fontsize="9"];']
        return "\n".join(head + self.lines + self.edges + ["}"]) + "\n"
