"""A cell's generated function, printed from its schedule (seqdsl.schedule).

In:  a `Codegen` (its emitter, `assign` and `args_of`), a cell's unit (optimised graph and
     variable names) and whether the function is the gradient twin.
Out: `CellEmitter(cg, u, grad).lines()`: the source lines of the function. It takes one
     batch-first argument per input (`x__in`, `mask__in`, ... in declaration order, all with
     the same batch and number of steps), the parameters `P__` (under the prefix `pre__`),
     initial states `init__` and memories `memory__`, and returns a `_Run` (codegen.RUN_TYPES):
     outputs, per-step states and final states by name, and for the gradient twin the
     backward function, which returns a `_Grads` (inputs, initial states, memories).

The body follows the schedule: what runs once (parameters, memories and what depends only on
them), then what runs over all steps at once (time-major), then the step loop (states rotate
through `h__d1`, `h__d2`, ... at its end), then the outputs. With a memory plan (NumPy
inference) step values are written in place or into buffers allocated before the loop, and
outputs are copied out as soon as they are computed.
"""

from __future__ import annotations

from ..ir import in_edges, output_source, outputs
from ..ops import Op
from . import emit_rows


def buffer_offset(g, n, plan) -> str:
    """The slice of n's root buffer that holds n ("" for the whole buffer)."""
    dims = g.nodes[n]["type"].dims
    start, sliced = 0, False
    while n != plan.root[n]:
        d = g.nodes[n]
        if d["op"] == Op.SLICE:
            start, sliced = start + d["start"].value, True
            n = in_edges(g, n)[0][0]
        else:  # written in place into an operand, or an identity
            n = in_edges(g, n)[plan.inplace.get(n, 0)][0]
    return f"[..., {start}:{start + dims[-1].value}]" if sliced else ""  # (a number [] is never a slice)


class CellEmitter:
    def __init__(self, cg, u, grad: bool, rows: bool = False):
        self.cg, self.u, self.grad = cg, u, grad
        self.g = g = u.graph
        self.em = cg.em
        self.v = cg.v = u.names.__getitem__
        cg.pre_t = {}  # set for the loop; the code before it reads weights as they are
        cg.last_line = None
        self.sc = sc = u.grad_schedule if grad else u.schedule
        self.mp = sc.plan
        # outputs (and per-step states) are copied into preallocated time-major arrays, except
        # those with a memory axis, whose length is only known at run time: they go to a list
        self.buffered = {o for o in sc.step_outputs if self.mp and not g.nodes[o]["type"].seq}
        self.listed = [o for o in sc.step_outputs if o not in self.buffered]
        self.taped = set(sc.tape)
        # generation's step module on one step's values (torch, `Codegen.step_values`): its cells take
        # and return (B, ...) values, straight-line code with no loop, lists or stacking
        self.one = cg.step_values and not grad and not self.mp
        # with lengths the loop runs on the samples still running (emit_rows): NumPy inference in
        # the function itself, every output in a buffer (one with a memory axis sized by its
        # memory's length); torch in a `__rows` twin (rows=True) that the masked function calls on a
        # CPU, every output in a list per stretch
        mask = emit_rows.step_mask(self)
        self.rows = mask if self.mp or rows else None
        self.dispatch = mask is not None and cg.em.rows_twin and not rows
        self.name = u.twin("grad") if grad else u.twin("rows") if rows else u.fname
        if self.rows and self.mp:
            self.buffered, self.listed = set(sc.step_outputs), []
        # NumPy on rows computes the work over all steps per stretch too, on its steps and rows alone
        # (the padding's input projection skipped), unless an output is such a value
        self.per_stretch = bool(self.rows and self.mp) and "time" not in sc.outputs.values()

    def lines(self) -> list:
        if self.one:
            return self.header() + ["    " + b for b in self.one_step()]
        if self.rows:
            return self.header() + ["    " + b for b in self.rows_body()]
        body = self.once_and_all_steps() + self.state_history() + self.buffers()
        body += self.buffer_views()
        body.append("for t in (range(T - 1, -1, -1) if reverse__ else range(T)):")
        body += ["    " + x for x in self.loop()] or ["    pass  # nothing depends on the previous step"]
        body += self.returns()
        return self.header() + ["    " + b for b in body]

    def rows_body(self) -> list:
        """The loop stretch by stretch, on the first n__ samples sorted by length (emit_rows)."""
        body = emit_rows.sort_rows(self) + self.once_and_all_steps() + emit_rows.keep_full(self)
        body += self.state_history() + self.buffers()
        body.append(emit_rows.stretch_loop(self))
        stretch = emit_rows.stretch_start(self, self.buffer_views())
        stretch.append("for t in (range(t1__ - 1, t0__ - 1, -1) if reverse__ else range(t0__, t1__)):")
        stretch += ["    " + x for x in self.loop()]
        body += ["    " + x for x in stretch + emit_rows.stretch_end(self)]
        return body + emit_rows.after_loop(self) + self.returns()

    def in_arg(self, x) -> str:
        return f"{self.v(x)}__in"

    def header(self) -> list:
        u, xnames, in_arg = self.u, self.sc.inputs, self.in_arg
        x0 = in_arg(xnames[0])
        args = "".join(f"{in_arg(x)}, " for x in xnames)
        lines = [f"def {self.name}(P__, pre__, {args}init__, memory__, "
                 f"reverse__=False, seqs__={self.grad!r}):"]
        if self.dispatch:  # on a CPU, the loop runs on the samples still running
            lines += [f"    if ROWS_ON_CPU__ and {in_arg(xnames[0])}.device.type == 'cpu':",
                      f"        return {u.twin('rows')}(P__, pre__, {args}init__, memory__, reverse__, seqs__)"]
        if self.one:  # one step's values: (B, ...) each
            rank = 1 + self.g.nodes[xnames[0]]["type"].rank
            lines += [f"    if {x0}.dim() != {rank}:",
                      f"        raise ValueError(f'{u.defn}: the step module takes the values of one step, (B, ...), "
                      f"got {{tuple({x0}.shape)}}')",
                      f"    B, T = {x0}.shape[0], 1"]
            for x in xnames[1:]:
                lines += [f"    if {in_arg(x)}.shape[0] != B:",
                          f"        raise ValueError(f'{u.defn}: input {x} has batch {{{in_arg(x)}.shape[0]}}, "
                          f"input {xnames[0]} has {{B}}')"]
            return lines
        lines.append(f"    B, T = {x0}.shape[0], {x0}.shape[1]")
        for x in xnames[1:]:
            lines += [f"    if tuple({in_arg(x)}.shape[:2]) != (B, T):",
                      f"        raise ValueError(f'{u.defn}: input {x} has batch and steps "
                      f"{{tuple({in_arg(x)}.shape[:2])}}, input {xnames[0]} has {{(B, T)}}')"]
        return lines + ["    if T == 0:",
                        f"        raise ValueError('{u.defn}: sequences must have at least one step')"]

    def once_and_all_steps(self) -> list:
        g, v, em, sc = self.g, self.v, self.em, self.sc
        whole = lambda s, k: v(s)
        once = []
        for n in sc.once:  # parameters, memories and everything computed from them alone
            op = g.nodes[n]["op"]
            if op == Op.PARAM:
                once.append(f"{v(n)} = P__[pre__ + {n!r}]")
            elif op == Op.MEMORY:
                once.append(f"{v(n)} = memory__[{n!r}]")
            else:
                once.extend(self.cg.assign(g, n, whole).split("\n"))
        for w in sorted({w for _, w in sc.pre_transposed.values()}, key=sc.order.index):
            once.append(f"{v(w)}__T = {em.pre_transpose.format(v=v(w))}")  # read by the loop's matmuls
        body = self.cached(once) if self.cg.plan.cache_once and not self.grad else once
        for x in sc.inputs:  # time-parallel work, time-major (one step: the step's values, (B, ...))
            body.append(f"{v(x)} = {self.in_arg(x)}" if self.one else
                        f"{v(x)}{'__all' if self.per_stretch else ''} = {em.to_time_major.format(v=self.in_arg(x))}")
        body += [] if self.per_stretch else self.all_steps()
        for n in sc.step_views if not self.rows else ():  # (rows: taken per stretch, emit_rows.stretch_start)
            body.append(f"{v(n)}__steps = ({v(n)},)" if self.one else f"{v(n)}__steps = {em.steps.format(v=v(n))}")
        return body

    def all_steps(self) -> list:
        """The values computed over all steps at once (per stretch: over the stretch's)."""
        whole = lambda s, k: self.v(s)
        return [line for n in self.sc.time for line in self.cg.assign(self.g, n, whole).split("\n")]

    def one_step(self) -> list:
        """The cell's step once (t = 0) on one step's values: its outputs and states (B, ...)."""
        g, v, sc, em = self.g, self.v, self.sc, self.em
        body = self.once_and_all_steps() + self.state_history() + ["t = 0"]
        self.cg.pre_t = sc.pre_transposed
        self.cg.last_line = None
        body += [f"{v(n)}__t = {v(n)}__steps[t]" for n in sc.step_views if self.view_at_t(n)]
        for n in sc.step:
            body += self.step_node(n)

        def value(o) -> str:
            src = output_source(g, o)
            if sc.where[src] != "once" or g.nodes[src]["type"].batched:
                return v(src)
            every = em.as_array.format(v=v(src)) + "[None]"  # made of parameters: the same for every sample
            return f"{every}.expand((B,) + tuple({every}.shape[1:]))"

        outs = "{" + ", ".join(f"{g.nodes[o]['output']!r}: {value(o)}" for o in outputs(g)) + "}"
        seqs = "{" + ", ".join(f"{s!r}: {v(s)}" for s in sc.states) + "}"
        finals = "{" + ", ".join(f"{s!r}: {v(s)}" for s in sc.states) + "}"
        return body + [f"return _Run(outputs={outs}, states=({seqs} if seqs__ else {{}}), final={finals})"]

    def cached(self, once: list) -> list:
        """Generation's step module: what runs once is computed at the first step and kept in
        `_CACHE` (by parameter prefix) while generation steps, then read back at every later step."""
        v, sc = self.v, self.sc
        names = [v(n) for n in sc.once] + [f"{v(w)}__T" for w in sorted({w for _, w in sc.pre_transposed.values()},
                                                                           key=sc.order.index)]
        if not names:
            return once
        kept = ", ".join(names) + ("," if len(names) == 1 else "")
        return ["_once__ = _CACHE.get(pre__) if _CACHE is not None else None", "if _once__ is None:",
                *["    " + x for x in once], "    if _CACHE is not None:", f"        _CACHE[pre__] = ({kept})",
                "else:", f"    ({kept}) = _once__"]

    def state_history(self) -> list:
        """s__d1 is s[t-1], s__d2 is s[t-2], ...: the initial states before the first step."""
        g, v, sc = self.g, self.v, self.sc
        body = []
        for s in sc.states:
            init, shape = g.nodes[s]["init"], g.nodes[s]["type"].concrete_dims()
            # the loop overwrites it in place, or (rows) each stretch writes its rows back: copy the caller's array
            owned = s in sc.owned_states or self.rows
            given = self.em.copy.format(v=f"init__[{s!r}]") if owned else f"init__[{s!r}]"
            body.append(f"{v(s)}__{'all' if self.rows else 'd1'} = {given} if init__.get({s!r}) is not None else "
                        f"_full((B,) + {shape!r}, {float(init)!r}, {self.in_arg(sc.inputs[0])})")
            for k in range(2, sc.max_delay[s] + 1):
                body.append(f"{v(s)}__d{k} = {v(s)}__d1" + (".copy()" if owned else ""))
            if self.grad:
                body.append(f"{v(s)}__init = {v(s)}__d1")
        return body

    def buffers(self) -> list:
        g, v, em, sc, mp = self.g, self.v, self.em, self.sc, self.mp
        if self.rows and not mp:  # each stretch's values, joined at the end (emit_rows)
            return [f"{v(o)}__runs = []" for o in self.listed] + [f"{v(s)}__runs = [] if seqs__ else None"
                                                                   for s in sc.states]
        body = [f"{v(o)}__list = []" for o in self.listed]
        if mp:
            # (rows: zero at the padding no stretch reaches, and static buffers sliced per stretch)
            seq_empty = em.zeros if self.rows else em.empty
            for o in sorted(self.buffered, key=sc.step_outputs.index):
                shape = f"(T, B{emit_rows.memory_axis(self, o)}) + {g.nodes[o]['type'].concrete_dims()!r}"
                body.append(f"{v(o)}__buf = {seq_empty.format(shape=shape)}")
            for s in sc.states:
                shape = f"(T, B) + {g.nodes[s]['type'].concrete_dims()!r}"
                body.append(f"{v(s)}__seq = {seq_empty.format(shape=shape)} if seqs__ else None")
            for n in mp.static:
                shape = f"(B,) + {g.nodes[n]['type'].concrete_dims()!r}"
                body.append(f"{v(n)}__{'full' if self.rows else 'buf'} = {em.empty.format(shape=shape)}")
        else:
            body += [f"{v(s)}__list = [] if seqs__ else None" for s in sc.states]
        return body + [f"{v(n)}__tape = []" for n in sc.tape]

    def buffer_views(self) -> list:
        """Values living in static buffers, and their slices, bound before the loop (or stretch)."""
        g, v, sc, mp = self.g, self.v, self.sc, self.mp
        return [f"{v(n)} = {v(mp.root[n])}__buf{buffer_offset(g, n, mp)}"
                for n in sc.step if mp and n in mp.root and n not in mp.static]

    def view_at_t(self, n) -> bool:
        """Is hoisted value n read at step t through a named view (several readers, or a tape)?"""
        return self.sc.readers[n] > 1 or self.grad

    def ctx(self, s, k) -> str:
        """How the loop reads value s delayed by k."""
        v = self.v
        if k:
            return f"{v(s)}__d{k}"
        if self.sc.where[s] == "time":
            return f"{v(s)}__t" if self.view_at_t(s) else f"{v(s)}__steps[{self.step_index}]"
        return v(s)

    @property
    def step_index(self) -> str:
        """Step t's index into a hoisted value's steps (rows: those of the current stretch)."""
        return "t - t0__" if self.rows else "t"

    def copy_out(self, o) -> str:
        v, src = self.v, self.v(output_source(self.g, o))
        if o in self.buffered:
            return f"{v(o)}__buf[t{', :n__' if self.rows else ''}] = {src}"
        # with a memory plan, a later step node may overwrite this value in place
        return f"{v(o)}__list.append({src}{'.copy()' if self.mp else ''})"

    def loop(self) -> list:
        sc, mp, v = self.sc, self.mp, self.v
        self.cg.pre_t = sc.pre_transposed
        self.cg.last_line = None  # the loop notes its spec lines afresh
        loop = [f"{v(n)}__t = {v(n)}__steps[{self.step_index}]" for n in sc.step_views
                if self.view_at_t(n) and n != self.rows]  # (rows: the step mask is read by no one)
        # with a memory plan, each output is copied out as soon as it is computed, before a later
        # node of the step can overwrite its buffer in place (or a state its delayed buffer)
        copies: dict = {}
        for o in sc.step_outputs if mp else ():
            copies.setdefault(output_source(self.g, o), []).append(o)
        for n in sc.step:
            if not (mp and n in mp.views):  # (a view is a slice of a static buffer, taken before the loop)
                loop += self.step_node(n)
            loop.extend(self.copy_out(o) for o in copies.get(n, ()))
        if not mp:
            loop.extend(self.copy_out(o) for o in sc.step_outputs)
        return loop + self.rotate_states()

    def step_node(self, n) -> list:
        g, v, mp, cg = self.g, self.v, self.mp, self.cg
        into = None
        if mp and n in mp.inplace:
            into = cg.args_of(g, n, self.ctx)[0][mp.inplace[n]]
        elif mp and n in mp.static:
            into = f"{v(n)}__buf"
        elif mp and n in mp.own:
            into = f"{v(n)}__d{mp.own[n]}"
        if into is not None:
            args, types = cg.args_of(g, n, self.ctx)
            lines = cg.source_note(g.nodes[n])
            lines.append(f"{v(n)} = {self.em.into[g.nodes[n]['op']](g.nodes[n], args, types, into)}")
        elif self.rows and emit_rows.frozen(self, n):  # every row of a stretch runs: the new value
            args = cg.args_of(g, n, self.ctx)[0]
            lines = cg.source_note(g.nodes[n]) + [f"{v(n)} = {emit_rows.frozen_value(self, args)}"]
        else:
            lines = cg.assign(g, n, self.ctx).split("\n")
        if n in self.taped:
            lines.append(f"{v(n)}__tape.append({v(n)})")
        return lines

    def rotate_states(self) -> list:
        """Keep each state's per-step value, then shift its history by one step."""
        v, mp, sc = self.v, self.mp, self.sc
        loop = []
        for s in sc.states:
            if mp:
                loop.append(f"if seqs__: {v(s)}__seq[t{', :n__' if self.rows else ''}] = {v(s)}")
            elif self.grad:
                loop.append(f"{v(s)}__list.append({v(s)})")
            else:
                loop.append(f"if seqs__: {v(s)}__list.append({v(s)})")
            for k in range(sc.max_delay[s], 1, -1):
                loop.append(f"{v(s)}__d{k} = {v(s)}__d{k - 1}")
            if not (mp and sc.max_delay[s] == 1 and mp.holds_own(self.g, s)):  # else s already is s__d1
                loop.append(f"{v(s)}__d1 = {v(s)}")
        return loop

    def output_value(self, o) -> str:
        g, v, em = self.g, self.v, self.em
        src = output_source(g, o)
        if o in self.buffered:
            return em.to_batch_first.format(v=v(o) + "__buf")
        where = self.sc.where[src]
        if where == "step":
            return f"_rows_join({v(o)}__runs, T, reverse__)" if self.rows else em.stack.format(items=v(o) + "__list")
        if where == "time":
            return em.to_batch_first.format(v=v(src))
        # computed once (from parameters and memories): the same value at every step
        batched = g.nodes[src]["type"].batched  # else a number, or made of parameters: one for every sequence
        return em.every_step.format(v=v(src) if batched else em.as_array.format(v=v(src)) + "[None]")

    def returns(self) -> list:
        g, v, em, sc, mp = self.g, self.v, self.em, self.sc, self.mp
        flips = [f"    {v(o)}__list.reverse()" for o in self.listed if not self.rows]
        for s in sc.states if not (mp or self.rows) else ():
            flips.append(f"    {v(s)}__list.reverse()" if self.grad else f"    seqs__ and {v(s)}__list.reverse()")
        body = ["if reverse__:"] + flips if flips else []
        back = emit_rows.unsorted if self.rows else (lambda x: x)  # (rows: in the caller's order again)
        outs = "{" + ", ".join(f"{g.nodes[o]['output']!r}: {back(self.output_value(o))}" for o in outputs(g)) + "}"
        if mp:
            seqs = ", ".join(f"{s!r}: {back(em.to_batch_first.format(v=v(s) + '__seq'))}" for s in sc.states)
        elif self.rows:
            seqs = ", ".join(f"{s!r}: {back(f'_rows_join({v(s)}__runs, T, reverse__)')}" for s in sc.states)
        else:
            seqs = ", ".join(f"{s!r}: {em.stack.format(items=v(s) + '__list')}" for s in sc.states)
        seqs = "{" + seqs + "}"
        if not self.grad and sc.states:
            seqs = f"({seqs} if seqs__ else {{}})"  # per-step states only when asked for
        finals = "{" + ", ".join(f"{s!r}: {back(v(s) + ('__all' if self.rows else '__d1'))}" for s in sc.states) + "}"
        if not self.grad:
            return body + [f"return _Run(outputs={outs}, states={seqs}, final={finals})"]
        from .numpy_grad import cell_backward

        body += ["", "def backward__(d_outs__, d_seqs__, d_final__, G__):"]
        body += ["    " + x for x in cell_backward(g, v, sc)]
        return body + [f"return _Run(outputs={outs}, states={seqs}, final={finals}, backward=backward__)"]
