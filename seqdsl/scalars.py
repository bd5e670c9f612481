"""Scalar expressions over sizes, for initializer scales such as `1/sqrt(H)`.

In:  an AST expression made of numbers, size names, + - * /, sqrt().
Out: a small tuple tree (`("num", 0.5)`, `("size", Size)`, `("bin", "/", a, b)`,
     `("sqrt", a)`, `("neg", a)`), printed by `scalar_str` and evaluated by
     `scalar_eval(tree, sizes)` — never by Python's eval.
"""

from __future__ import annotations

import math


def scalar_str(s) -> str:
    kind = s[0]
    if kind == "num":
        v = s[1]
        return str(int(v)) if float(v).is_integer() else repr(float(v))
    if kind == "size":
        return str(s[1])
    if kind == "sqrt":
        return f"sqrt({scalar_str(s[1])})"
    if kind == "neg":
        return f"-{scalar_str(s[1])}"
    a, b = scalar_str(s[2]), scalar_str(s[3])
    if s[3][0] == "bin":
        b = f"({b})"
    return f"{a}{s[1]}{b}" if s[1] == "/" else f"{a} {s[1]} {b}"


def scalar_subs(s, env: dict):
    kind = s[0]
    if kind == "num":
        return s
    if kind == "size":
        return ("size", s[1].subs(env))
    if kind in ("sqrt", "neg"):
        return (kind, scalar_subs(s[1], env))
    return ("bin", s[1], scalar_subs(s[2], env), scalar_subs(s[3], env))


def scalar_eval(s, env: dict | None = None) -> float:
    kind = s[0]
    if kind == "num":
        return float(s[1])
    if kind == "size":
        size = s[1].subs(env or {})
        if size.value is None:
            raise ValueError(f"size {size} has no value")
        return float(size.value)
    if kind == "sqrt":
        v = scalar_eval(s[1], env)
        return math.sqrt(v) if v >= 0 else math.nan
    if kind == "neg":
        return -scalar_eval(s[1], env)
    a, b = scalar_eval(s[2], env), scalar_eval(s[3], env)
    op = s[1]
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return a / b if b else math.inf
