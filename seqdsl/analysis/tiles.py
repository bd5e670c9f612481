"""tiling: the slices of a value that cover it exactly, in column order.

In:  an IR graph and a node.
Out: `tiling(g, n)` → the slice nodes reading `n` (no delay), sorted by start, when they are
     all of its readers and cover its last axis without gaps or overlaps; otherwise None.
     Backends use it to take all the slices in one call (torch's `split`).
"""

from __future__ import annotations

from ..ops import Op


def tiling(g, n):
    readers = [(v, d) for _, v, d in g.out_edges(n, data=True)]
    if len(readers) < 2 or any(d["delay"] or g.nodes[v]["op"] != Op.SLICE for v, d in readers):
        return None
    parts = sorted({v for v, _ in readers}, key=lambda v: g.nodes[v]["start"].value)
    pos = 0
    for v in parts:
        if g.nodes[v]["start"].value != pos:
            return None
        pos = g.nodes[v]["stop"].value
    dims = g.nodes[n]["type"].dims
    return parts if dims and pos == dims[-1].value else None
