"""Step-wise execution of a model that reads its previous prediction: `begin` and `step`.

In:  an executable (`runtime.NumpyExecutable` or `torch_module.SeqModule`) of a model whose
     `PREDICTED` outputs are read at t-1, which lends its parameters and a few array hooks
     (`_part_ns`, `_forward_ns`, `_arrays`, `_tensor_in`, `_to_numpy`, `_take`).
Out: `Stepper(exe)`: `begin(inputs, lengths)` → a state, a plain dict of arrays (tensors for
     torch), every entry batch-first: the values the steps read from the inputs (an attended
     memory `dec.m`, ...), each run's states (`dec.h`, `dec.c`: its `final` so far) and, for a
     sequence given with lengths, its lengths under `lengths:<name>`. `step(state, previous)` →
     (distribution parameters and other outputs of that step by name, each (B, ...), the new
     state). The state can be copied, and reordered along the batch axis (`reorder`), as beam
     search does.

What runs once (the encoder, memory projections that do not depend on a prediction) is the
`begin` module and what runs per step the `step` module, both generated from the model by
`passes.split_steps`; the step module runs the cells' generated step once (never a fused sequence
kernel: its set-up costs more than one step; a recognised cell runs torch's cell kernel). Torch's
step module takes and returns one step's values, (B, ...) (`STEP_VALUES`): its cells are
straight-line code with nothing to stack or unstack; NumPy's takes sequences of one step, (B, 1, ...).
"""

from __future__ import annotations

import contextlib

import numpy as np

from .hidden import hidden_inputs
from .validate import Boundary, InputError, UnknownName

LENGTHS = "lengths:"


class Stepper:
    def __init__(self, exe):
        self.exe = exe
        self._parts: dict = {}
        self._boundaries: dict = {}
        self._params = None  # the executable's parameters while generation steps (`cached`)
        self._cached: list = []  # the step modules whose once-values are kept meanwhile
        plain = exe._part_ns("step", False)
        self.info = plain["STEP"]
        self.predicted = {k: v for k, v in exe._ns["PREDICTED"].items()}
        self.previous = dict(self.info["previous"])  # predicted output read at t-1 -> its first value
        self.state_names = list(self.info["states"])
        self.context = list(self.info["context"])
        self.inputs_from_state = self.context + self.state_names
        self.length_keys = [LENGTHS + name for name in self.context]  # (begin: a context's lengths)
        self.step_outputs = list(plain["OUTPUTS"])
        # the step module takes and returns one step's values, (B, ...) (torch), or sequences of one
        # step, (B, 1, ...) (NumPy)
        self.step_values = bool(plain.get("STEP_VALUES"))

    @contextlib.contextmanager
    def cached(self):
        """While generation steps: each cell of the step module computes what it runs once (weights
        put together, the attended memory's projection) at the first step and keeps it (`_CACHE`;
        within one generation the parameters and the memory do not change: beam search only
        reorders copies of a sample's rows)."""
        made = self._cached = [self.ns("step", m) for m in (False, True)]
        for ns in made:
            ns["_CACHE"] = {}
            self.exe._forward_ns(ns, None, check_only=True)  # the module's dtype and device, set once
        self._params = self.exe.params  # (torch builds the dict of its parameters anew on each read)
        try:
            yield
        finally:
            self._params, self._cached = None, []
            for ns in made:
                ns["_CACHE"] = None

    def ns(self, part: str, masked: bool) -> dict:
        key = (part, masked)
        if key not in self._parts:
            self._parts[key] = self.exe._part_ns(part, masked)
            self._boundaries[key] = Boundary(self._parts[key])
        return self._parts[key]

    def begin(self, inputs: dict, lengths=None) -> dict:
        """Run what does not depend on a prediction, once; the state of the first step."""
        exe = self.exe
        ns = self.ns("begin", lengths is not None)
        b = self._boundaries[("begin", lengths is not None)]
        extra = [k for k in inputs if k in self.predicted]
        if extra:
            raise UnknownName(f"{exe.name}: begin() takes the inputs only; {', '.join(map(repr, extra))} "
                              "is predicted: pass the previous one to step()")
        if not ns["INPUTS"]:  # (CharLM) nothing runs before the first step: only the batch size is needed
            batch = self.batch_only(inputs, lengths)
            outputs = {}
        else:
            cast, _ = b.call(inputs, None, exe._arrays())
            if lengths is not None:
                lengths = b.lengths(lengths, cast)
                cast = {**cast, **exe._tensor_in(hidden_inputs(b, ns, cast, lengths, None), ns)}
            outputs, _final = exe._forward_ns(ns, cast)
            batch = int(next(iter(cast.values())).shape[0])
        state = {}
        for name, (dims, init) in self.info["states"].items():
            state[name] = outputs[name] if init is None else exe._full((batch,) + tuple(dims), init)
        for name in self.context:
            state[name] = outputs[name]
            axes = ns["OUTPUT_AXES"].get(name) or ()
            if lengths and axes and axes[0] in lengths:
                state[LENGTHS + name] = lengths[axes[0]]
        return state

    def batch_only(self, inputs: dict, lengths) -> int:
        """The batch size of a model with no inputs: begin(batch=B)."""
        name = self.exe.name
        extra = sorted(k for k in inputs if k != "batch")
        if extra or lengths is not None:
            raise UnknownName(f"{name}: the model has no inputs; begin() takes only batch=B, got "
                              f"{extra + (['lengths'] if lengths is not None else [])}")
        b = inputs.get("batch", 1)
        if not isinstance(b, (int, np.integer)) or isinstance(b, bool) or b < 1:
            raise InputError(f"{name}: batch must be a whole number >= 1, got {b!r}")
        return int(b)

    def step(self, state: dict, previous: dict, check: bool = True) -> tuple:
        """One step: `previous` holds each predicted output read at t-1 (ids (B,) for categorical, (B, D)
        for normal). Returns ({output: (B, ...)}, the new state)."""
        exe = self.exe
        if check:
            self.check(state, previous)
        masked = bool(self.length_keys) and any(k in state for k in self.length_keys)
        ns = self.ns("step", masked)
        inputs = {name: state[name] for name in self.inputs_from_state}
        prev = {name: exe._step_value(previous[name]) for name in self.previous}
        one_step = (lambda: {k: v[:, None] for k, v in prev.items()})  # as sequences of one step, (B, 1, ...)
        inputs.update(prev if self.step_values else one_step())
        if masked:
            lengths = {k[len(LENGTHS):]: np.asarray(v) for k, v in state.items() if k.startswith(LENGTHS)}
            masks = Boundary.masks(ns["MASKS"], lengths, {**inputs, **one_step()})
            if self.step_values:  # the masks over the step itself: this step's, (B,)
                masks = {k: m[:, 0] if ns["MASKS"][k][1] in self.previous else m for k, m in masks.items()}
            inputs.update(exe._tensor_in(masks, ns))
        if self._params is None:
            outputs, final = exe._forward_ns(ns, inputs)
        else:  # generation: the module's context is set once (`cached`), the step runs as it is
            outputs, final = ns["forward"](self._params, inputs, None)
        new = dict(state)
        new.update({k: final[k] for k in self.state_names})
        return (outputs if self.step_values else {k: v[:, 0] for k, v in outputs.items()}), new

    def check(self, state, previous) -> None:
        """Names and batch sizes of a state and the previous predictions given to step()."""
        name = self.exe.name
        if not isinstance(state, dict):
            raise InputError(f"{name}: step() takes the state begin() or step() returned, a dict; got "
                             f"{type(state).__name__}")
        want = set(self.context) | set(self.state_names)
        missing = sorted(want - set(state))
        unknown = sorted(k for k in state if k not in want and k not in self.length_keys)
        if missing or unknown:
            raise UnknownName(f"{name}: the state " + (f"lacks {missing}" if missing else "") +
                              (" and " if missing and unknown else "") + (f"has unknown entries {unknown}" if unknown
                                                                           else "") +
                              f"; a state holds {sorted(want)} (from begin())")
        for k in previous:
            if k not in self.previous:
                raise UnknownName(f"{name}: step() takes the previous {', '.join(self.previous)}; got '{k}'")
        for k in self.previous:
            if k not in previous:
                raise UnknownName(f"{name}: step() needs the previous '{k}' ({k}=..., the start token "
                                  f"{int(self.previous[k])} at the first step)")
        batch = {k: int(v.shape[0]) for k, v in state.items()}
        batch.update({k: int(np.shape(v)[0]) for k, v in previous.items()})
        if len(set(batch.values())) != 1:
            raise InputError(f"{name}: the state and the previous predictions differ in batch size: {batch}")
        for k, v in previous.items():
            p = self.predicted[k]
            want_shape = (batch[k],) + (() if p["dist"] == "categorical" else tuple(p["dims"]))
            if tuple(np.shape(v)) != want_shape:
                raise InputError(f"{name}: the previous '{k}' has shape {tuple(np.shape(v))}; expected {want_shape}")
            if p["dist"] == "categorical":
                a = self.exe._to_numpy(v)
                if a.dtype.kind not in "iu" or (a < 0).any() or (a >= p["classes"]).any():
                    raise InputError(f"{name}: the previous '{k}' must hold token ids in [0, {p['classes']})")

    def reorder(self, state: dict, index) -> dict:
        """The state with its batch axis indexed by `index` (numpy ints): beams picked, repeated or dropped.
        The once-values kept while generating (an attended memory's projection, one row per sample)
        hold for rows reordered within their sample (beams); a new batch size (the beams of a prompt
        fed to each sample once) makes them anew at the next step."""
        if self._cached and state and len(index) != next(iter(state.values())).shape[0]:
            for ns in self._cached:
                ns["_CACHE"].clear()
        return {k: self.exe._take(v, index) for k, v in state.items()}
