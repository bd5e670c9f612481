"""Symbolic sizes: integer polynomials over size names (`I`, `H`, `4*H`, `I+H`).

In:  size names and integers, combined with + - * (and exact division by a constant).
Out: `Size`, a normal form (monomial → coefficient) with equality, hashing, `subs()`
     to bind names, `value` for a concrete size, and a stable `str()` ("4*H", "H + I").
     A symbolic size has at most `MAX_TERMS` terms: multiplying sums of sizes grows them
     exponentially, (A+B+C+D)*(A+B+C+D)*... would otherwise take minutes or gigabytes.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_SIZE = 1 << 31  # no dimension may exceed this
MAX_TERMS = 1000  # terms of one symbolic size


def _too_complex(n: int):
    from .errors import SpecError

    return SpecError(f"a size expression expands to {n} terms or more; the limit is {MAX_TERMS}", None,
                     "give the sizes values (defaults or --set), or simplify the expression")


@dataclass(frozen=True)
class Size:
    terms: tuple  # sorted tuple of (monomial: tuple[str, ...], coeff: int), coeff != 0

    @staticmethod
    def const(n: int) -> "Size":
        return Size((((), int(n)),)) if n else Size(())

    @staticmethod
    def name(s: str) -> "Size":
        return Size((((s,), 1),))

    @staticmethod
    def _norm(d: dict) -> "Size":
        terms = tuple(sorted((m, c) for m, c in d.items() if c))
        if len(terms) > MAX_TERMS:
            raise _too_complex(len(terms))
        return Size(terms)

    def __add__(self, other: "Size") -> "Size":
        d = dict(self.terms)
        for m, c in other.terms:
            d[m] = d.get(m, 0) + c
        return Size._norm(d)

    def __neg__(self) -> "Size":
        return Size(tuple((m, -c) for m, c in self.terms))

    def __sub__(self, other: "Size") -> "Size":
        return self + (-other)

    def __mul__(self, other: "Size") -> "Size":
        if len(self.terms) * len(other.terms) > 20 * MAX_TERMS:
            raise _too_complex(max(len(self.terms), len(other.terms)) + 1)
        d: dict = {}
        for m1, c1 in self.terms:
            for m2, c2 in other.terms:
                m = tuple(sorted(m1 + m2))
                d[m] = d.get(m, 0) + c1 * c2
        return Size._norm(d)

    def div_exact(self, k: int) -> "Size | None":
        if k == 0 or any(c % k for _, c in self.terms):
            return None
        return Size(tuple((m, c // k) for m, c in self.terms))

    @property
    def is_const(self) -> bool:
        return all(not m for m, _ in self.terms)

    @property
    def value(self) -> int | None:
        if not self.is_const:
            return None
        return sum(c for _, c in self.terms)

    @property
    def names(self) -> set:
        return {n for m, _ in self.terms for n in m}

    def subs(self, env: dict) -> "Size":
        """Replace names by Sizes from `env` (names not in env stay symbolic)."""
        out = Size(())
        for m, c in self.terms:
            term = Size.const(c)
            for n in m:
                term = term * (env[n] if n in env else Size.name(n))
            out = out + term
        return out

    def __str__(self) -> str:
        if not self.terms:
            return "0"
        parts = []
        for m, c in sorted(self.terms, key=lambda t: (-len(t[0]), t[0])):
            body = "*".join(m)
            if not m:
                parts.append(str(c))
            elif c == 1:
                parts.append(body)
            elif c == -1:
                parts.append("-" + body)
            else:
                parts.append(f"{c}*{body}")
        s = " + ".join(parts)
        return s.replace("+ -", "- ")

    __repr__ = __str__


def dims_str(dims) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"
