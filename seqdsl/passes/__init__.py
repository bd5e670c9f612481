"""Passes: graph → graph rewrites shared by the backends, each verified after it runs.

In:  a specialised IR graph (all sizes concrete).
Out: `optimize(g)` → a new graph after `PIPELINE` (fuse shared-operand matmuls, then mark
     what can be hoisted out of the step loop); `unroll(g, steps)` for the renderer.
"""

from __future__ import annotations

from ..ir import verify
from .fuse import fuse_matmuls
from .hoist import hoist
from .unroll import unroll

PIPELINE = (fuse_matmuls, hoist)


def optimize(g, passes=PIPELINE):
    for p in passes:
        g = p(g)
        verify(g)
    return g


__all__ = ["optimize", "PIPELINE", "fuse_matmuls", "hoist", "unroll"]
