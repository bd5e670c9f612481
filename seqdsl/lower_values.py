"""What a name or an expression stands for while a definition is lowered.

In:  nothing (small typed classes); made and read by seqdsl.lower and seqdsl.lower_runs.
Out: the values of the lowerer's scope and of its expressions besides plain IR nodes (`str`):
     `State` (a declared state), `Equation` (a cell equation not lowered yet), `Pending`
     (a name whose equation is lowered when a value is needed), `Delayed` (`h[t-k]`),
     `RunHandle` (a run in a model) and `Interface` (what a model knows of a cell or block).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import Span
from .types import VType


@dataclass(frozen=True)
class State:
    """`state h: [H] = init`, before and after its equation is lowered (its node is named `name`)."""

    name: str
    type: VType
    init: float
    span: Span


@dataclass(frozen=True)
class Equation:
    """A name a cell assigns (not a state): lowered the first time it is read."""

    name: str


@dataclass(frozen=True)
class Pending:
    """A read of a state (at t) or an equation: resolved to its node on use."""

    name: str


@dataclass(frozen=True)
class Delayed:
    """`h[t-k]`: the state node read k steps back."""

    node: str
    delay: int


@dataclass
class Interface:
    """What a model needs to know of a cell or block it runs (types in the callee's sizes)."""

    kind: str
    name: str
    size_params: list
    defaults: dict
    inputs: dict  # name -> VType
    states: dict  # name -> VType
    memories: dict
    outputs: dict
    span: Span = None


@dataclass
class RunHandle:
    """A name bound to a run in a model: its fields are read with `enc.y`, `enc.final`."""

    calls: list  # one call node, or two (forward, backward) for a bidirectional run
    iface: Interface
    env: dict
    span: Span
    cache: dict = field(default_factory=dict)
