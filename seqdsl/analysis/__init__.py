"""Analyses: facts read off an IR graph, never a rewrite of it.

In:  a specialised, optimised IR graph.
Out: `recognize(g)` → a `Standard` when the cell is exactly torch's RNN/LSTM/GRU (the torch
     backend then calls its fused kernel); `tiling(g, n)` → how a value splits into the
     slices its readers take; `time_axes`: which sequence's time axis each value follows
     (`cell_axes`, `straight_axes`), for lengths and dropout masks.
"""

from .recognize import Standard, recognize
from .tiles import tiling

__all__ = ["Standard", "recognize", "tiling"]
