"""Scalar expressions over sizes, for initializer scales such as `1/sqrt(H)`.

In:  an AST expression made of numbers, size names, + - * /, sqrt().
Out: a small tuple tree (`("num", 0.5)`, `("size", Size)`, `("bin", "/", a, b)`,
     `("sqrt", a)`, `("neg", a)`), printed by `scalar_str` and evaluated by
     `scalar_eval(tree, sizes)` — never by Python's eval. `check_scale` refuses, with a
     position, an initializer whose scale is not finite (1/0, sqrt(0 - 1), 1e308 * 10), is
     outside float32's range, or is a negative standard deviation; `check_number` does the
     same for a constant or an initial state.
"""

from __future__ import annotations

import math

FLOAT32_MAX = 3.4028234663852886e38  # parameters are drawn in float64, then cast to the dtype


_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}


def _prec(s) -> int:
    """How tightly a scalar tree's text binds: 1 a sum, 2 a product, 3 a negation, 4 an atom."""
    if s[0] == "bin":
        return _PREC[s[1]]
    if s[0] == "neg":
        return 3
    if s[0] == "size" and len(s[1].terms) > 1:
        return 1
    if s[0] == "size" and s[1].terms and (s[1].terms[0][1] != 1 or len(s[1].terms[0][0]) > 1):
        return 2  # 4*H, H*I, -H, -3
    return 4


def scalar_str(s) -> str:
    """The tree as text that reads back as the same tree, with parentheses wherever precedence
    needs them (`(1 + 2) * 3`, `-(H - 1)`, `1/(4*H)`; the usual `1/sqrt(H)` has none)."""
    kind = s[0]
    if kind == "num":
        v = s[1]
        return str(int(v)) if float(v).is_integer() else repr(float(v))
    if kind == "size":
        return str(s[1])
    if kind == "sqrt":
        return f"sqrt({scalar_str(s[1])})"
    if kind == "neg":
        inner = scalar_str(s[1])
        return f"-({inner})" if _prec(s[1]) < 3 else f"-{inner}"
    p = _PREC[s[1]]
    a, b = scalar_str(s[2]), scalar_str(s[3])
    if _prec(s[2]) < p:
        a = f"({a})"
    if s[3][0] == "bin" or _prec(s[3]) <= p:
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
    if not b:
        return math.nan if (not a or math.isnan(a)) else math.copysign(math.inf, a)
    return a / b


def check_number(v, what: str, span) -> None:
    """A constant or an initial state: finite and within float32's range."""
    from .errors import SpecError

    if v is None or isinstance(v, bool):
        return
    v = float(v)
    if not math.isfinite(v):
        raise SpecError(f"{what} {v} is not a finite number", span)
    if abs(v) > FLOAT32_MAX:
        raise SpecError(f"{what} {v:g} is outside the float32 range (at most {FLOAT32_MAX:.4g})", span)


def check_scale(kind: str, s, span, env: dict | None = None) -> float | None:
    """The value of an initializer's scale, refused with a position unless it is usable:
    finite, within float32's range, and >= 0 for normal()'s standard deviation and uniform()'s
    bound (uniform(a) draws from [-a, a]). Returns None
    (and checks nothing) while a size in it has no value."""
    from .errors import SpecError

    try:
        v = scalar_eval(s, env)
    except ValueError:  # a symbolic size: checked again once sizes are bound
        return None
    except (OverflowError, ZeroDivisionError):
        v = math.inf
    what = {"uniform": "uniform() bound", "normal": "normal() standard deviation", "const": "initial value"}.get(
        kind, "initializer scale")
    text = scalar_str(s)
    if not math.isfinite(v):
        raise SpecError(f"{what} {text} is not a finite number (it evaluates to {v})", span,
                        "an initializer scale must evaluate to a finite number, e.g. uniform(1/sqrt(H))")
    if abs(v) > FLOAT32_MAX:
        raise SpecError(f"{what} {text} = {v:g} is outside the float32 range (at most {FLOAT32_MAX:.4g})", span)
    if kind == "normal" and v < 0:
        raise SpecError(f"{what} {text} is negative ({v:g}); a standard deviation is >= 0", span)
    if kind == "uniform" and v < 0:
        raise SpecError(f"{what} {text} is negative ({v:g}); uniform(a) draws from [-a, a], a >= 0", span)
    return v
