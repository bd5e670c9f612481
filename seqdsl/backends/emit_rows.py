"""A cell's loop over only the samples still running (with lengths).

In:  a `CellEmitter` (seqdsl.backends.emit_cell) for a cell that takes lengths: its graph freezes
     each state past a sample's end with `select(_mask, new, s[t-1])` (passes.mask_lengths).
Out: `step_mask(ce)`: the step mask when the loop can run on rows instead (else None), and the
     lines of that loop: the samples are sorted by length, longest first (`_row_runs`, a kernel of
     each backend), so the samples running at step t are the first n; the loop runs stretch by
     stretch, each stretch over the steps at which the same n samples run, on the first n rows of
     every per-sample value. No padded step is computed, and no state is masked: within a stretch
     every row is a real step, so `select(_mask, new, s[t-1])` is `new` (NumPy: a copy, as the
     memory plan gave the select a fresh array). A state's rows go back into its full array,
     `h__all`, at the end of each stretch; samples that ended keep their last values there.
     Outputs and per-step states are zero at padding, and everything the function returns is put
     back in the caller's order.

NumPy inference runs this loop in the cell's function itself, writing into buffers, and computes
the work over all steps (the input projection) per stretch too, on its steps and rows alone,
unless an output is such a value (`CellEmitter.per_stretch`); outputs with a memory axis
(attention weights), which the masked loop collects in a list, go to a buffer (T, B, S, ...)
sized by their memory's length. Its gradient twin keeps the masked loop. Torch
writes the loop as the cell's `__rows` twin, which the masked function calls on a CPU (module
flag `ROWS_ON_CPU__`), with or without autograd: no value is written in place; each stretch's
per-step values are stacked into one block (`_rows_block`, zero rows for the samples not
running), the blocks joined at the end (`_rows_join`), and a state's rows put back with
`_rows_keep`; values computed over all steps are cut for every stretch at once (`_rows_steps`).
On a GPU a step costs its kernel launches whatever the rows, so there stretches only add
launches (an H200: 1.3-1.8 times the unmasked loop, against 1.26-1.38 masked).
Not for generation's step module (one step, nothing to skip) or cells reading a state further
back than t-1: those keep the masked loop.
"""

from __future__ import annotations

from ..ir import in_edges
from ..ops import Op


def step_mask(ce):
    """The step mask node of `ce`'s cell when its loop can run on the rows still running, else None."""
    g, sc = ce.g, ce.sc
    if ce.grad or ce.cg.plan.cache_once or any(k > 1 for k in sc.max_delay.values()):
        return None
    axes = g.graph.get("output_axes", {})
    if any(g.nodes[o]["type"].seq and len(axes.get(g.nodes[o]["output"], ())) != 2 for o in sc.step_outputs):
        return None  # an output with a memory axis, but not one memory's
    steps = [n for n, (kind, _) in g.graph.get("masks", {}).items()
             if kind == "steps" and g.nodes[n]["op"] == Op.INPUT]
    if len(steps) != 1:
        return None
    m = steps[0]
    for _, c, d in g.out_edges(m, data=True):  # each reader a select whose value is its port 1 as it is
        if g.nodes[c]["op"] != Op.SELECT or d["port"] != 0 or not _same(g.nodes[in_edges(g, c)[1][0]]["type"],
                                                                         g.nodes[c]["type"]):
            return None
    return m


def _same(a, b) -> bool:
    return a.dims == b.dims and a.batched == b.batched and a.dtype == b.dtype


def memory_axis(ce, o) -> str:
    """`, S` for an output with a memory axis (attention weights: S the memory's length), else ""."""
    g = ce.g
    if not g.nodes[o]["type"].seq:
        return ""
    memory = g.graph["output_axes"][g.nodes[o]["output"]][1]
    return f", memory__[{memory!r}].shape[1]"


def frozen(ce, n) -> bool:
    """Is step node n a select on the step mask (in a stretch, always its port 1)?"""
    return ce.g.nodes[n]["op"] == Op.SELECT and in_edges(ce.g, n)[0][0] == ce.rows


def frozen_value(ce, args: list) -> str:
    """`select(_mask, a, b)` where every row runs: a (NumPy: a fresh copy, as np.where made)."""
    return ce.em.copy.format(v=args[1]) if ce.mp else args[1]


def batched_once(ce) -> list:
    """Per-sample values computed once (from memories) that the loop reads: sliced to each stretch."""
    g, sc = ce.g, ce.sc
    return [n for n in sc.once if g.nodes[n]["type"].batched
            and any(sc.where.get(c) == "step" for c in g.successors(n))]


def sort_rows(ce) -> list:
    """Sort the samples by length, longest first: every per-sample argument of the function."""
    g, sc = ce.g, ce.sc
    lines = [f"_order__, _inv__, _runs__ = _row_runs({ce.in_arg(ce.rows)}, reverse__)", "if _order__ is not None:"]
    lines += [f"    {ce.in_arg(x)} = {ce.in_arg(x)}[_order__]" for x in sc.inputs]
    for s in sc.states:
        lines.append(f"    if init__.get({s!r}) is not None: init__ = {{**init__, {s!r}: init__[{s!r}][_order__]}}")
    for m in sc.memories:
        if g.nodes[m]["type"].batched:
            lines.append(f"    memory__ = {{**memory__, {m!r}: memory__[{m!r}][_order__]}}")
    return lines


def keep_full(ce) -> list:
    """Per-sample values computed once, kept whole; (torch) the steps of each value computed over
    all steps, cut into the stretches' steps and rows at once (`_rows_steps`)."""
    v, g = ce.v, ce.g
    lines = [f"{v(n)}__full = {v(n)}" for n in batched_once(ce)]
    if not ce.mp:
        lines += [f"{v(n)}__cut = _rows_steps({v(n)}, _runs__, reverse__, {g.nodes[n]['type'].batched!r})"
                  for n in ce.sc.step_views if n != ce.rows]
    return lines


def stretch_loop(ce) -> str:
    return "for t0__, t1__, n__ in _runs__:" if ce.mp else "for k__, (t0__, t1__, n__) in enumerate(_runs__):"


def stretch_start(ce, views: list) -> list:
    """Bind a stretch's rows: static buffers and their views, the steps of values computed over all
    steps, per-sample values, states."""
    v, mp, sc, g = ce.v, ce.mp, ce.sc, ce.g
    lines = [f"{v(n)}__buf = {v(n)}__full[:n__]" for n in (mp.static if mp else ())]
    lines += views
    lines += [f"{v(n)} = {v(n)}__full[:n__]" for n in batched_once(ce)]
    if ce.per_stretch:  # the work over all steps, on the stretch's steps and rows alone
        lines += [f"{v(x)} = {v(x)}__all[t0__:t1__, :n__]" for x in sc.inputs] + ce.all_steps()
    for n in sc.step_views:
        if n == ce.rows:
            continue
        if not mp:  # (cut once for every stretch: one slice per stretch would cost a whole gradient each)
            lines.append(f"{v(n)}__steps = {v(n)}__cut[k__]")
            continue
        rows = ", :n__" if g.nodes[n]["type"].batched else ""
        part = v(n) if ce.per_stretch else f"{v(n)}[t0__:t1__{rows}]"
        lines.append(f"{v(n)}__steps = {ce.em.steps.format(v=part)}")
    if mp:  # (the loop may write into a state's array: a copy of its rows)
        return lines + [f"{v(s)}__d1 = {ce.em.copy.format(v=f'{v(s)}__all[:n__]')}" for s in sc.states]
    lines += [f"{v(o)}__list = []" for o in ce.listed]
    lines += [f"{v(s)}__list = [] if seqs__ else None" for s in sc.states]
    return lines + [f"{v(s)}__d1 = {v(s)}__all[:n__]" for s in sc.states]


def stretch_end(ce) -> list:
    """A state's rows back into its whole array; (torch) the stretch's values kept as one block."""
    v = ce.v
    if ce.mp:
        return [f"{v(s)}__all[:n__] = {v(s)}__d1" for s in ce.sc.states]
    lines = [f"{v(o)}__runs.append(_rows_block({v(o)}__list, B, reverse__))" for o in ce.listed]
    lines += [f"if seqs__: {v(s)}__runs.append(_rows_block({v(s)}__list, B, reverse__))" for s in ce.sc.states]
    return lines + [f"{v(s)}__all = _rows_keep({v(s)}__d1, {v(s)}__all)" for s in ce.sc.states]


def after_loop(ce) -> list:
    """Per-sample values whole again."""
    return [f"{ce.v(n)} = {ce.v(n)}__full" for n in batched_once(ce)]


def unsorted(expr: str) -> str:
    return f"_unsort({expr}, _inv__)"
