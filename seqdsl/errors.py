"""Errors: mistakes in a spec (`SpecError`) and bugs in seqdsl (`InternalError`).

In:  a message, a `Span` (file, line, column, and the source text it points into),
     an optional hint.
Out: `SpecError`, whose `str()` is ``file:line:col: error: message`` followed by
     the source line and a caret under the column (and ``hint: ...`` when given).
     Warnings use the same format with ``warning:``. `InternalError` (a broken
     invariant inside the compiler, e.g. `ir.IRError`) is deliberately *not* a
     `SpecError`: nothing that handles user mistakes may swallow it, and the CLI reports
     it as ``internal error: ...`` with exit status 2 (see `cli.main`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache


@dataclass(frozen=True)
class Span:
    """A position in a `.seq` source: 1-based line and column, plus an end column."""

    file: str
    line: int
    col: int
    end_col: int = 0
    source: str = field(default="", repr=False, compare=False)

    def source_line(self) -> str:
        lines = _lines(self.source)
        return lines[self.line - 1] if 1 <= self.line <= len(lines) else ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


NO_SPAN = Span("<seqdsl>", 0, 0)


@lru_cache(maxsize=16)
def _lines(source: str) -> tuple:
    """The lexer's notion of lines (not str.splitlines), split once per source: code generation
    asks for the line of every node."""
    return tuple(line.rstrip("\r") for line in source.split("\n"))


SHOWN_LINE = 160  # characters of a source line shown under a message


def format_diagnostic(kind: str, message: str, span: Span | None, hint: str | None = None) -> str:
    """``file:line:col: kind: message`` + source line + caret (+ hint)."""
    span = span or NO_SPAN
    where = "seqdsl" if span.line == 0 and span.file == NO_SPAN.file else (
        span.file if span.line == 0 else str(span))
    out = [f"{where}: {kind}: {message}"]
    text = span.source_line()
    if text:
        shown, col = text.expandtabs(1), span.col
        width = max(1, (span.end_col - span.col) if span.end_col > span.col else 1)
        if len(shown) > SHOWN_LINE:  # a window round the caret, not a 400 KB line
            start = max(0, min(col - 1 - SHOWN_LINE // 4, len(shown) - SHOWN_LINE))
            shown = ("..." if start else "") + shown[start:start + SHOWN_LINE] + (
                "..." if start + SHOWN_LINE < len(shown) else "")
            col = col - start + (3 if start else 0)
        out.append("    " + shown)
        width = min(width, max(1, len(shown) - col + 1), SHOWN_LINE)
        out.append("    " + " " * (col - 1) + "^" + "~" * (width - 1))
    if hint:
        out.append(f"    hint: {hint}")
    return "\n".join(out)


class SpecError(Exception):
    """A mistake in a spec (or in how it is used), with where it is."""

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span or NO_SPAN
        self.hint = hint

    @property
    def file(self) -> str:
        return self.span.file

    @property
    def line(self) -> int:
        return self.span.line

    @property
    def col(self) -> int:
        return self.span.col

    def __str__(self) -> str:
        return format_diagnostic("error", self.message, self.span, self.hint)


REPORT_AT = "the seqdsl issue tracker"  # where internal errors ask to be reported


class InternalError(Exception):
    """A broken invariant inside seqdsl (lowering, a pass, codegen): a bug, never the spec's fault.

    `span` points at the spec line being compiled when it is known; `pass_name` names the pass
    after which the invariant broke, when known (the CLI also looks for it in the traceback)."""

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None,
                 pass_name: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span or NO_SPAN
        self.hint = hint
        self.pass_name = pass_name

    @property
    def file(self) -> str:
        return self.span.file

    @property
    def line(self) -> int:
        return self.span.line

    @property
    def col(self) -> int:
        return self.span.col

    def __str__(self) -> str:
        return format_diagnostic("internal error", self.message, self.span, self.hint)


@dataclass(frozen=True)
class Warning_:
    """A diagnostic that does not stop the load (e.g. an unused parameter)."""

    message: str
    span: Span
    hint: str | None = None

    def __str__(self) -> str:
        return format_diagnostic("warning", self.message, self.span, self.hint)


def closest(name: str, candidates) -> str | None:
    """The candidate nearest to `name` (edit distance), for 'did you mean' hints."""
    import difflib

    found = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.5)
    return found[0] if found else None


def did_you_mean(name: str, candidates) -> str | None:
    best = closest(name, candidates)
    return f"did you mean '{best}'?" if best else None
