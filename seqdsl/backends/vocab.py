"""Token vocabularies: which ids an int input may hold.

In:  a `Program`, a specialised IR graph and one of its int inputs.
Out: `token_vocab(...)` → the smallest vocabulary among the input's readers, or None.
"""

from __future__ import annotations

from ..ir import in_edges
from ..ops import Op


def token_vocab(program, g, node: str, depth: int = 0) -> int | None:
    """The ids token input `node` of graph `g` may hold: the smallest vocabulary among its readers
    (embed, onehot, and through runs of blocks, their readers); None when a reader is anything else
    or nothing reads it (then ids are not range-checked)."""
    found = []
    for c in g.successors(node):
        d = g.nodes[c]
        if d["op"] == Op.EMBED:
            found.append(g.nodes[in_edges(g, c)[1][0]]["type"].dims[0].value)
        elif d["op"] == Op.ONEHOT:
            found.append(d["size"].value)
        elif d["op"] == Op.SHIFT and depth < 64:  # y[t-1] of a prediction: the shifted ids' readers
            found.append(token_vocab(program, g, c, depth + 1))
        elif d["op"] == Op.CALL and depth < 64:
            callee = program.instance(d["callee"], d["sizes"])
            for src, port, _ in in_edges(g, c):
                if src == node:
                    found.append(token_vocab(program, callee, port, depth + 1) if port in callee else None)
        else:
            return None
    return None if not found or None in found else min(found)
