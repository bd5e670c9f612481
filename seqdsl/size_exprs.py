"""Size expressions of a spec evaluated: `4*H`, `I + H`, `D/heads`, flags, initializer scales.

In:  AST expressions of a definition's header, types and calls, and a size environment
     (name → `Size`, possibly symbolic, or a bool for a flag).
Out: `SizeScope(defn, env)` with `.size(e)`, `.positive(e)`, `.flag(e)`, `.scalar(e)` (an
     initializer scale, see seqdsl.scalars) and `.number(e)` (a number written as an expression of
     numbers: an exponent, clip's bounds); `size_env(defn, given)` binds a definition's size
     parameters: given values, then defaults, else symbols. Errors are `SpecError`s at the
     expression, with a hint naming the header to declare an unknown size in.
"""

from __future__ import annotations

import math

from . import ast as A
from .errors import SpecError, did_you_mean
from .sizes import MAX_SIZE, Size


class SizeScope:
    def __init__(self, defn: A.Definition, env: dict):
        self.defn = defn
        self.env = env

    def size(self, e, what: str = "size") -> Size:
        if isinstance(e, A.Num):
            if not e.is_int:
                raise SpecError(f"{what} must be a whole number, got {e.value}", e.span)
            if e.value > MAX_SIZE:
                raise SpecError(f"{what} {e.value} is absurdly large (the limit is {MAX_SIZE})", e.span)
            return Size.const(e.value)
        if isinstance(e, A.Name):
            return self._name(e)
        if isinstance(e, A.BinOp) and e.op in "+-*":
            a, b = self.size(e.left, what), self.size(e.right, what)
            r = a + b if e.op == "+" else a - b if e.op == "-" else a * b
            v = r.value
            if v is not None and abs(v) > MAX_SIZE:
                raise SpecError(f"{what} {v} is absurdly large (the limit is {MAX_SIZE})", e.span)
            return r
        if isinstance(e, A.BinOp) and e.op == "/":
            a, b = self.size(e.left, what), self.size(e.right, what)
            r = a.div_exact(b.value) if b.value is not None else None
            if r is None:
                raise SpecError(f"{what} {a}/{b} is not a whole number", e.span,
                                "sizes are integers; division must be exact")
            return r
        if isinstance(e, A.Neg):
            return Size.const(0) - self.size(e.operand, what)
        raise SpecError(f"expected a {what} (a number or a size name like H, 4*H), got an expression",
                        e.span)

    def _name(self, e: A.Name) -> Size:
        if e.id in self.env:
            v = self.env[e.id]
            if isinstance(v, bool):
                raise SpecError(f"'{e.id}' is a flag (true/false), not a size", e.span)
            return v
        hint = did_you_mean(e.id, [k for k, v in self.env.items() if not isinstance(v, bool)])
        raise SpecError(f"unknown size '{e.id}'", e.span,
                        hint or f"declare it in the header: {self.defn.kind} {self.defn.name}(..., {e.id})")

    def positive(self, e, what: str = "size") -> Size:
        s = self.size(e, what)
        v = s.value
        if v is not None and v <= 0:
            raise SpecError(f"{what} must be positive, got {v}", e.span)
        return s

    def flag(self, e) -> bool:
        if isinstance(e, A.Bool):
            return e.value
        if isinstance(e, A.Name) and isinstance(self.env.get(e.id), bool):
            return self.env[e.id]
        raise SpecError("expected true or false", e.span)

    def scalar(self, e):
        """An initializer scale: numbers, sizes, + - * /, sqrt() (a tree seqdsl.scalars evaluates)."""
        if isinstance(e, A.Num):
            return ("num", float(e.value))
        if isinstance(e, A.Name):
            return ("size", self.size(e))
        if isinstance(e, A.Neg):
            return ("neg", self.scalar(e.operand))
        if isinstance(e, A.BinOp) and e.op in "+-*/":
            return ("bin", e.op, self.scalar(e.left), self.scalar(e.right))
        if isinstance(e, A.Call) and e.func == "sqrt" and len(e.args) == 1 and not e.kwargs:
            return ("sqrt", self.scalar(e.args[0]))
        raise SpecError("an initializer scale is made of numbers, sizes, + - * / and sqrt()", e.span)

    def number(self, e, what: str, hint: str) -> float:
        """A number written with numbers, + - * / **, unary minus and sqrt() (`0.5`, `-1`, `1/3`):
        finite, or a `SpecError` at `e` saying what it is for (`what`) and how to write one (`hint`)."""
        v = self._number(e, what, hint)
        if not math.isfinite(v):
            raise SpecError(f"{what} is not a finite number", e.span, hint)
        return v

    def _number(self, e, what: str, hint: str) -> float:
        if isinstance(e, A.Num):
            return float(e.value)
        if isinstance(e, A.Neg):
            return -self._number(e.operand, what, hint)
        if isinstance(e, A.Call) and e.func == "sqrt" and len(e.args) == 1 and not e.kwargs:
            v = self._number(e.args[0], what, hint)
            if v < 0:
                raise SpecError(f"{what}: sqrt of a negative number ({v:g})", e.span)
            return math.sqrt(v)
        if isinstance(e, A.Pow) or (isinstance(e, A.BinOp) and e.op in ("+", "-", "*", "/")):
            op, parts = ("**", (e.base, e.exponent)) if isinstance(e, A.Pow) else (e.op, (e.left, e.right))
            a, b = (self._number(x, what, hint) for x in parts)
            return _arith(op, a, b, e, what)
        if isinstance(e, A.Name) and e.id in self.env and not isinstance(self.env[e.id], bool):
            raise SpecError(f"{what} must be a number, not the size '{e.id}'", e.span, hint)
        raise SpecError(f"{what} must be a number", e.span, hint)


def _arith(op: str, a: float, b: float, e, what: str) -> float:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0:
            raise SpecError(f"{what}: division by zero", e.span)
        return a / b
    if a == 0 and b < 0:
        raise SpecError(f"{what}: 0 to a negative power", e.span)
    if a < 0 and not float(b).is_integer():
        raise SpecError(f"{what}: a negative number to a fractional power", e.span)
    try:
        return a ** b
    except OverflowError:
        return math.inf


def size_env(defn: A.Definition, given: dict | None, symbolic: bool = False) -> dict:
    """Bind a definition's size parameters: given values, then defaults, else symbols."""
    given = dict(given or {})
    env: dict = {}
    seen = set()
    for p in defn.params:
        if p.name in seen:
            raise SpecError(f"size '{p.name}' is declared twice", p.span)
        seen.add(p.name)
    scope = SizeScope(defn, env)
    for p in defn.params:
        if p.name in given and not symbolic:
            v = given.pop(p.name)
            if isinstance(v, bool) or isinstance(v, Size):
                env[p.name] = v
            elif isinstance(v, int) and 0 < v <= MAX_SIZE:
                env[p.name] = Size.const(v)
            else:
                raise SpecError(f"size {p.name}={v!r} must be a whole number between 1 and {MAX_SIZE}", p.span)
            continue
        if p.default is None or (symbolic and not isinstance(p.default, A.Bool)):
            env[p.name] = Size.name(p.name)
        elif isinstance(p.default, A.Bool):
            env[p.name] = p.default.value
        else:
            env[p.name] = scope.positive(p.default, f"size {p.name}")
    return env


def symbolic_env(defn: A.Definition) -> dict:
    """Every size of `defn` as its own symbol (`H` → H): types in the definition's own names."""
    return {p.name: Size.name(p.name) for p in defn.params}
