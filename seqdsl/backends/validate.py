"""Checks at the executable boundary, shared by the NumPy executable and the torch nn.Module.

In:  a generated module's namespace (`NAME`, `KIND`, `INPUTS`, `STATE_SHAPES`, `DTYPE`), what the
     spec says beyond it (optional: the size names of each declared dim, the memories, each token
     input's vocabulary), and what a caller passes: inputs, initial states, output cotangents,
     `example_inputs` arguments.
Out: `Boundary(ns, symbols)` with `.call(inputs, state, arrays)` → (inputs, state) checked and
     converted (`arrays` is `NumpyArrays(dtype)` or `TorchTensors(dtype, device)`),
     `.cotangents(...)` and `.example_sizes(batch, steps)`. Nothing reaches generated code (or a
     torch._VF kernel) before these checks pass. A failure is ONE `InputError` (a `ValueError`;
     `UnknownName`, for a name the definition does not have or a missing input, is also a
     `TypeError`) whose message names the input, what was expected and what was given,
     identically on every backend and path:

         LSTM: input 'x' has shape (2, 5, 7); expected (B, T, 8) = (batch, steps, I)

Checked: exact input names; rank and per-sample dims; dtype (token inputs integer, float inputs
real floating point; torch: a tensor, of the module's dtype, on its device); batch size ≥ 1 and the
same for every input, memory and state; sequence length ≥ 1; token ids in [0, vocab) where the
vocabulary is known; state names and shapes (B, *dims); cotangent names and exact shapes. NaN
values are allowed.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import numpy as np

from ..errors import did_you_mean

MAX_EXAMPLE_ELEMENTS = 2 ** 31  # numbers in one input drawn by example_inputs


class InputError(ValueError):
    """A bad argument at an executable's boundary (shape, dtype, batch, token id, ...)."""


class UnknownName(InputError, TypeError):
    """A name the definition does not have (input, state, output), or a missing input; also a
    `TypeError`, like an unexpected or missing keyword argument."""


@dataclass(frozen=True)
class Port:
    """One array crossing the boundary: an input, a memory or an initial state."""

    name: str
    role: str  # "input" | "memory" | "state"
    dims: tuple  # concrete per-sample dims
    symbols: tuple  # the spec's names for dims ("I", "4*H"), same length as dims
    seq: bool  # has a time (input) or memory (memory) axis after the batch axis
    tokens: bool
    vocab: int | None

    def layout(self) -> tuple:
        """(B, T, 8) and (batch, steps, I): the expected shape, concrete and named."""
        axis = ("S", "memory steps") if self.role == "memory" else ("T", "steps")
        head = ("B", axis[0]) if self.seq else ("B",)
        names = ("batch", axis[1]) if self.seq else ("batch",)
        return head + tuple(str(d) for d in self.dims), names + self.symbols

    def expected(self) -> str:
        shape, names = self.layout()
        return f"{_tuple(shape)} = {_tuple(names)}"


def _tuple(items) -> str:
    items = [str(i) for i in items]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def _names(items) -> str:
    return ", ".join(items) if items else "none"


def _typename(v) -> str:
    t = type(v)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _whole(value) -> int:
    if isinstance(value, bool):
        raise TypeError
    return operator.index(value)


class NumpyArrays:
    """The NumPy executable's view of arrays: anything np.asarray reads; floats are cast to `dtype`."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)

    def convert(self, b: "Boundary", port: Port, value):
        try:
            a = np.asarray(value)
        except Exception as e:  # ragged lists, tensors that require grad, ...
            raise InputError(f"{b.name}: {port.role} '{port.name}' cannot be read as an array ({e})") from None
        kind = a.dtype.kind
        if port.tokens:
            if kind not in "iu":
                raise InputError(f"{b.name}: {port.role} '{port.name}' has dtype {a.dtype}; "
                                 f"expected integer token ids")
            return a
        if kind != "f":
            raise InputError(f"{b.name}: {port.role} '{port.name}' has dtype {a.dtype}; expected real "
                             f"floating-point values (they are converted to {self.dtype})")
        return a

    def finish(self, port: Port, a):
        return a.astype(np.intp, copy=False) if port.tokens else a.astype(self.dtype, copy=False)

    @staticmethod
    def bad_token(a, vocab: int):
        bad = (a < 0) | (a >= vocab)
        if not bad.any():
            return None
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        return int(a[idx]), idx


class TorchTensors:
    """The torch module's view: tensors only, floats of the module's dtype, on its device."""

    def __init__(self, dtype, device):
        self.dtype, self.device = dtype, device

    def convert(self, b: "Boundary", port: Port, value):
        import torch

        if not isinstance(value, torch.Tensor):
            hint = " (wrap it with torch.from_numpy)" if isinstance(value, np.ndarray) else ""
            raise InputError(f"{b.name}: {port.role} '{port.name}' is a {_typename(value)}; "
                             f"expected a torch.Tensor{hint}")
        if port.tokens:
            if value.dtype.is_floating_point or value.dtype.is_complex or value.dtype == torch.bool:
                raise InputError(f"{b.name}: {port.role} '{port.name}' has dtype {value.dtype}; "
                                 f"expected integer token ids")
        elif value.dtype != self.dtype:
            raise InputError(f"{b.name}: {port.role} '{port.name}' has dtype {value.dtype}; expected "
                             f"{self.dtype}, the module's dtype (convert the tensor with .to({self.dtype}), "
                             f"or the module with .to({value.dtype}))")
        if value.device != self.device:
            raise InputError(f"{b.name}: {port.role} '{port.name}' is on device {value.device}; "
                             f"expected {self.device}, the module's device")
        return value

    def finish(self, port: Port, t):
        import torch

        return t.long() if port.tokens and t.dtype != torch.long else t

    @staticmethod
    def bad_token(t, vocab: int):
        bad = (t < 0) | (t >= vocab)
        if not bool(bad.any()):
            return None
        idx = tuple(int(i) for i in bad.nonzero()[0])
        return int(t[idx]), idx


class Boundary:
    """What a compiled definition accepts, and the checks of everything passed to it."""

    def __init__(self, ns: dict, symbols: dict | None = None):
        self.name, self.kind, self.dtype = ns["NAME"], ns["KIND"], ns["DTYPE"]
        symbols = symbols or {}
        memories = set(symbols.get("memories", ns.get("MEMORIES", ())))
        self.inputs = []
        for name, (_text, dims, dtype, seq, vocab) in ns["INPUTS"].items():
            vocab = symbols["vocab"].get(name) if "vocab" in symbols else vocab
            role = "memory" if name in memories else "input"
            self.inputs.append(Port(name, role, tuple(dims), self._symbols(symbols, name, dims), bool(seq),
                                    dtype == "int", vocab))
        tokens = set(ns.get("STATE_TOKENS", ()))  # `<y>.last` of a categorical prediction: token ids
        classes = {f"{k}.last": p["classes"] for k, p in ns.get("PREDICTED", {}).items()}
        self.states = [Port(name, "state", tuple(dims), self._symbols(symbols, name, dims), False, name in tokens,
                            classes.get(name) if name in tokens else None)
                       for name, dims in ns["STATE_SHAPES"].items()]

    def vocab(self) -> dict:
        """Token input → the number of ids it may hold (None: not range-checked)."""
        return {p.name: p.vocab for p in self.inputs if p.tokens}

    @staticmethod
    def _symbols(symbols: dict, name: str, dims) -> tuple:
        given = tuple(symbols.get("dims", {}).get(name, ()))
        return given if len(given) == len(dims) else tuple(str(d) for d in dims)

    # ---- a call: inputs and initial states --------------------------------------------
    def call(self, inputs: dict, state, arrays) -> tuple:
        """Check and convert `inputs` and `state` (None or a dict); returns both, converted."""
        want = [p.name for p in self.inputs]
        for k in inputs:
            if k not in want:
                hint = did_you_mean(k, want)
                raise UnknownName(f"{self.name}: unknown input '{k}'" + (f" ({hint})" if hint else "")
                                  + f"; its inputs are: {_names(want)}")
        for p in self.inputs:
            if p.name not in inputs:
                raise UnknownName(f"{self.name}: missing {p.role} '{p.name}'; its inputs are: {_names(want)}")
        if state is not None and not isinstance(state, dict):
            raise InputError(f"{self.name}: state must be a dict of initial states by name, "
                             f"got a {_typename(state)}")
        state = {k: v for k, v in (state or {}).items() if v is not None}
        have = [p.name for p in self.states]
        for k in state:
            if k not in have:
                hint = did_you_mean(k, have)
                what = f"its states are: {_names(have)}" if have else f"a {self.kind} takes no initial states"
                raise UnknownName(f"{self.name}: unknown state '{k}'" + (f" ({hint})" if hint else "")
                                  + f"; {what}")
        batch = steps = None
        out_inputs, out_state = {}, {}
        for p, v in [(p, inputs[p.name]) for p in self.inputs] + [(p, state[p.name]) for p in self.states
                                                                  if p.name in state]:
            a = arrays.convert(self, p, v)
            batch = self._shape(p, tuple(int(d) for d in a.shape), batch)
            if self.kind == "cell" and p.role == "input":  # a cell's inputs are read at the same steps
                steps = self._steps(p, tuple(int(d) for d in a.shape), steps)
            if p.tokens and p.vocab:
                bad = arrays.bad_token(a, p.vocab)
                if bad is not None:
                    raise InputError(f"{self.name}: {p.role} '{p.name}' holds token id {bad[0]} at index "
                                     f"{_tuple(bad[1])}; expected ids in [0, {p.vocab})")
            (out_state if p.role == "state" else out_inputs)[p.name] = arrays.finish(p, a)
        return out_inputs, (out_state or None)

    def _shape(self, p: Port, shape: tuple, batch):
        want_rank = 1 + p.seq + len(p.dims)
        if len(shape) != want_rank or shape[1 + p.seq:] != p.dims:
            raise InputError(f"{self.name}: {p.role} '{p.name}' has shape {_tuple(shape)}; "
                             f"expected {p.expected()}")
        if shape[0] < 1:
            raise InputError(f"{self.name}: {p.role} '{p.name}' has shape {_tuple(shape)}; expected "
                             f"{p.expected()} with at least one sample in the batch")
        if p.seq and shape[1] < 1:
            axis = "S" if p.role == "memory" else "T"
            raise InputError(f"{self.name}: {p.role} '{p.name}' has shape {_tuple(shape)}; expected "
                             f"{p.expected()} with {axis} >= 1 (a sequence needs at least one step)")
        if batch is None:
            return shape[0], f"{p.role} '{p.name}'"
        if shape[0] != batch[0]:
            raise InputError(f"{self.name}: {p.role} '{p.name}' has batch size {shape[0]} "
                             f"(shape {_tuple(shape)}); expected {batch[0]}, the batch size of {batch[1]}")
        return batch

    def _steps(self, p: Port, shape: tuple, steps):
        if steps is None:
            return shape[1], f"input '{p.name}'"
        if shape[1] != steps[0]:
            raise InputError(f"{self.name}: input '{p.name}' has {shape[1]} steps (shape {_tuple(shape)}); "
                             f"expected {steps[0]}, the steps of {steps[1]} (a cell reads all its inputs at "
                             f"every step)")
        return steps

    # ---- lengths= -------------------------------------------------------------------------
    def lengths(self, lengths, inputs: dict) -> dict:
        """`lengths=`: a sequence input's (or memory's) name → whole numbers of shape (B,), each in
        [1, that sequence's steps]. A cell's inputs share one time axis: lengths given for several
        of them must agree, and are returned under its first input's name. Returns numpy int64, without
        the time axes whose lengths are all their full steps (as if not given)."""
        if not isinstance(lengths, dict):
            raise InputError(f"{self.name}: lengths must be a dict from a sequence input's name to an int array "
                             f"of shape (B,), got a {_typename(lengths)}")
        seqs = [p for p in self.inputs if p.seq]
        names = [p.name for p in seqs]
        out: dict = {}
        steps: dict = {}
        for k, v in lengths.items():
            if k not in names:
                hint = did_you_mean(k, names)
                raise UnknownName(f"{self.name}: lengths for '{k}', which is not a sequence input"
                                  + (f" ({hint})" if hint else "") + f"; its sequences are: {_names(names)}")
            if v is None:
                continue
            a = self._length_array(k, v, inputs[k])
            key = self._step_inputs()[0] if self.kind == "cell" and k in self._step_inputs() else k
            if key in out and not np.array_equal(out[key], a):
                other = next(j for j in lengths if j != k and lengths[j] is not None
                             and (self._step_inputs()[0] if j in self._step_inputs() else j) == key)
                raise InputError(f"{self.name}: lengths['{k}'] is {a.tolist()} but lengths['{other}'] is "
                                 f"{out[key].tolist()}; a cell reads all its inputs at the same steps, so give "
                                 "the lengths of one of them")
            out[key], steps[key] = a, int(inputs[k].shape[1])
        # a length that is every sample's whole sequence is no length: the plain module runs
        return {k: a for k, a in out.items() if not (a == steps[k]).all()}

    def seed(self, training, seed):
        """`training=` and `seed=` of a NumPy call: a bool, and None or a whole number >= 0 (only
        with training: it draws the dropout masks)."""
        if not isinstance(training, (bool, np.bool_)):
            raise InputError(f"{self.name}: training must be True or False, got {_typename(training)} {training!r}")
        if seed is None:
            return None
        try:
            s = _whole(seed)
        except TypeError:
            s = -1
        if s < 0:
            raise InputError(f"{self.name}: seed must be a whole number >= 0, got {seed!r}")
        if not training:
            raise InputError(f"{self.name}: seed={seed!r} is for the dropout masks of training; "
                             "pass training=True with it (torch: module.train())")
        return s

    def _step_inputs(self) -> list:
        return [p.name for p in self.inputs if p.role == "input"]

    def _length_array(self, k: str, v, given) -> np.ndarray:
        try:
            a = np.asarray(v.detach().cpu() if hasattr(v, "detach") else v)
        except Exception as e:
            raise InputError(f"{self.name}: lengths['{k}'] cannot be read as an array ({e})") from None
        batch, steps = int(given.shape[0]), int(given.shape[1])
        if a.dtype.kind not in "iu":
            raise InputError(f"{self.name}: lengths['{k}'] has dtype {a.dtype}; expected whole numbers (int)")
        if a.shape != (batch,):
            raise InputError(f"{self.name}: lengths['{k}'] has shape {_tuple(a.shape)}; expected ({batch},), "
                             f"one length per sample of '{k}'")
        bad = np.nonzero((a < 1) | (a > steps))[0]
        if bad.size:
            i = int(bad[0])
            raise InputError(f"{self.name}: lengths['{k}'][{i}] is {int(a[i])}; expected 1 <= length <= {steps}, "
                             f"the steps of '{k}'")
        return a.astype(np.int64)

    @staticmethod
    def masks(table: dict, lengths: dict, inputs: dict) -> dict:
        """The hidden inputs of a module that takes lengths (its `MASKS`: name → (kind, key)): a
        boolean array (B, T) per mask, true at the real positions ("steps") or at the last one ("last")."""
        out = {}
        for name, (kind, key) in table.items():
            batch, steps = int(inputs[key].shape[0]), int(inputs[key].shape[1])
            n = lengths.get(key, np.full(batch, steps, dtype=np.int64))
            t = np.arange(steps)[None, :]
            out[name] = (t < n[:, None]) if kind == "steps" else (t == n[:, None] - 1)
        return out

    # ---- value_and_grad: output cotangents ----------------------------------------------
    def cotangents(self, what: str, given, actual: dict, label: str, dtype) -> dict:
        """`d_outputs` / `d_final`: known names, exact shapes (no broadcasting), real numbers."""
        if given is None:
            return {}
        if not isinstance(given, dict):
            raise InputError(f"{self.name}: {what} must be a dict of arrays by {label} name, "
                             f"got a {_typename(given)}")
        out = {}
        for k, v in given.items():
            if k not in actual:
                hint = did_you_mean(k, actual)
                raise UnknownName(f"{self.name} has no {label} '{k}'" + (f" ({hint})" if hint else "")
                                  + f"; its {label}s are: {_names(list(actual))}")
            try:
                a = np.asarray(v)
            except Exception as e:
                raise InputError(f"{self.name}: {what}['{k}'] cannot be read as an array ({e})") from None
            if a.dtype.kind not in "iuf":
                raise InputError(f"{self.name}: {what}['{k}'] has dtype {a.dtype}; expected real numbers")
            want = tuple(actual[k].shape)
            if tuple(a.shape) != want:
                raise InputError(f"{self.name}: {what}['{k}'] has shape {_tuple(a.shape)}; expected "
                                 f"{_tuple(want)}, the shape of {label} '{k}'")
            out[k] = a.astype(dtype, copy=False)
        return out

    # ---- example_inputs ------------------------------------------------------------------
    def example_sizes(self, batch, steps) -> tuple:
        out = []
        for what, v in (("batch", batch), ("steps", steps)):
            try:
                n = _whole(v)
            except TypeError:
                raise InputError(f"{self.name}: example_inputs({what}={v!r}): expected a whole number >= 1") from None
            if n < 1:
                raise InputError(f"{self.name}: example_inputs({what}={n}): expected a whole number >= 1")
            out.append(n)
        batch, steps = out
        for p in self.inputs:
            count = batch * (steps if p.seq else 1) * math.prod(p.dims)
            if count > MAX_EXAMPLE_ELEMENTS:
                raise InputError(f"{self.name}: example_inputs(batch={batch}, steps={steps}): input '{p.name}' "
                                 f"would hold {count} numbers, more than the limit of {MAX_EXAMPLE_ELEMENTS} "
                                 "(2**31); use a smaller batch or fewer steps")
        return tuple(out)
