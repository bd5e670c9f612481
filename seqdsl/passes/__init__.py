"""Passes: graph → graph rewrites shared by the backends, each verified after it runs.

In:  a specialised IR graph (all sizes concrete).
Out: `optimize(g, extra=())` → a new graph after `PIPELINE` (gather hoistable terms of sums,
     fuse shared-operand matmuls, lift elementwise gate math over the fused columns), then a
     backend's own passes, then `hoist` (mark what leaves the step loop);
     `unroll(g, steps)` for the renderer.
"""

from __future__ import annotations

from ..errors import InternalError
from ..ir import verify
from .fuse_matmuls import fuse_matmuls
from .hoist import hoist
from .lift_slices import lift_slices
from .reassociate import reassociate
from .unroll import unroll

PIPELINE = (reassociate, fuse_matmuls, lift_slices)


def optimize(g, passes=PIPELINE, extra=(), early=()):
    """A backend's passes that go first (`early`), the shared passes, then a backend's own
    (`extra`), then `hoist`, verifying after each."""
    for p in (*early, *passes, *extra, hoist):
        try:
            g = p(g)
            verify(g)
        except InternalError as e:  # IRError included: name the pass that broke the IR
            e.pass_name = e.pass_name or p.__name__
            raise
    return g


__all__ = ["optimize", "PIPELINE", "reassociate", "fuse_matmuls", "lift_slices", "hoist", "unroll"]
