"""Passes: graph → graph rewrites shared by the backends, each verified after it runs.

In:  a specialised IR graph (all sizes concrete).
Out: `optimize(g)` → a new graph after `PIPELINE`: gather hoistable terms of sums, fuse
     shared-operand matmuls, lift elementwise gate math over the fused columns, then mark
     what can be hoisted out of the step loop; `unroll(g, steps)` for the renderer.
"""

from __future__ import annotations

from ..ir import verify
from .fuse import fuse_matmuls
from .hoist import hoist
from .lift import lift_slices
from .reassociate import reassociate
from .unroll import unroll

PIPELINE = (reassociate, fuse_matmuls, lift_slices, hoist)


def optimize(g, passes=PIPELINE):
    for p in passes:
        g = p(g)
        verify(g)
    return g


__all__ = ["optimize", "PIPELINE", "reassociate", "fuse_matmuls", "lift_slices", "hoist", "unroll"]
