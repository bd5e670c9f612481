"""Variable names of IR values in generated code: the spec's names, and temporaries named after them.

In:  an optimised IR graph and the names the generated code reads besides its values (`reserved`).
Out: `variable_names(g, reserved)` → node → its variable in generated code.

- A spec name keeps its name when it is an identifier free of "__" and not reserved; otherwise
  it is escaped to a fresh one (`enc.W` → `enc_W`, `a__y` → `a_y`, `_mm` → `_mm_2`).
- A temporary (`temp` set: lowering's `_h3`, or a node a pass made) is named after the spec
  values it holds, then its op: `_` + names + `_` + op, e.g. in the fused LSTM
  `_i_f_o_g_matmul` (the recurrent matmul of all four gates), `_i_f_o_g_tanh`, `_c_mul`
  (`f * c[t-1]` in `c = f * c[t-1] + i * g`), `_h_tanh`. What a value holds is read from the
  graph, never from its name: a value computed per step or over all steps holds what it
  becomes (the spec values its slices are, or what its only reader holds); a value computed
  once from parameters holds what it is made of (`_W_hi_W_hf_W_ho_W_hg_concat`,
  `_b_ii_b_hi_add`) when that is at most four spec names, else what it becomes. A temporary
  that holds nothing named keeps its own name (`_half`).

No variable named after the IR contains "__": generated code keeps "__" for the names it makes
for itself (docs/ir.md, "Names in generated code"). Escaped spec names are given first, in sorted
order, then temporaries in topological order, so a repeated name is numbered in the order the
code computes it (`_c_mul`, `_c_mul_2`).
"""

from __future__ import annotations

import re

from ..analysis.tiles import tiling
from ..ir import in_edges, topo_order

MOST_NAMES = 4  # a temporary named after more spec values than this is named after the first and last


def _ok(name: str, reserved) -> bool:
    return name.isidentifier() and "__" not in name and name not in reserved


def _identifier(text: str) -> str:
    base = re.sub(r"_+", "_", re.sub(r"[^0-9A-Za-z_]", "_", text.replace("@", "_at_")))
    return "_" + base if not base or base[0].isdigit() else base


class _Holders:
    """Which spec values a node holds: downward (what it becomes) and upward (what it is made of)."""

    def __init__(self, g):
        self.g = g
        self.down_memo: dict = {}
        self.up_memo: dict = {}

    def named(self, n) -> bool:
        return not self.g.nodes[n].get("temp")

    def down(self, n) -> tuple:
        if n not in self.down_memo:
            self.down_memo[n] = ()  # a cycle through a delayed edge holds nothing
            self.down_memo[n] = self._down(n)
        return self.down_memo[n]

    def _down(self, n) -> tuple:
        if self.named(n):
            return (n,)
        parts = tiling(self.g, n)
        if parts:
            held = tuple(h for p in parts for h in self.down(p))
            return held if all(self.down(p) for p in parts) else ()
        readers = [v for _, v, d in self.g.out_edges(n, data=True) if not d["delay"]]
        return self.down(readers[0]) if len(readers) == 1 else ()

    def up(self, n) -> tuple:
        if n not in self.up_memo:
            if self.named(n):
                self.up_memo[n] = (n,)
            else:
                held = [h for u, _, _ in in_edges(self.g, n) for h in self.up(u)]
                self.up_memo[n] = tuple(dict.fromkeys(held))
        return self.up_memo[n]

    def of(self, n) -> tuple:
        if self.g.nodes[n].get("hoist") == "once":
            up = self.up(n)
            if 0 < len(up) <= MOST_NAMES:
                return up
        return self.down(n)


def _temp_base(g, n, holders: _Holders) -> str:
    held = list(dict.fromkeys(holders.of(n)))
    if not held:
        return _identifier(n)
    if len(held) > MOST_NAMES:
        held = [held[0], "to", held[-1]]
    return _identifier("_" + "_".join(held) + "_" + g.nodes[n]["op"].value)


def variable_names(g, reserved) -> dict:
    """Node → its variable in generated code (see the module docstring)."""
    names = {n: n for n in g.nodes if not g.nodes[n].get("temp") and _ok(n, reserved)}
    taken = set(names)
    holders = _Holders(g)
    escaped = sorted(n for n in g.nodes if n not in names and not g.nodes[n].get("temp"))
    temps = [n for n in topo_order(g) if g.nodes[n].get("temp")] if len(escaped) + len(names) < len(g) else []
    for n in escaped + temps:
        base = _temp_base(g, n, holders) if g.nodes[n].get("temp") else _identifier(n)
        cand, k = base, 1
        while cand in taken or not _ok(cand, reserved):
            k += 1
            cand = f"{base}{k}" if base.endswith("_") else f"{base}_{k}"
        names[n] = cand
        taken.add(cand)
    return names
