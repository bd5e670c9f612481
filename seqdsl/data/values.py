"""One value of one field, as a data file writes it, checked against the field's kind.

In:  a `Field` and a value: a decoded JSON value (a .jsonl line's entry) or a cell's text (.tsv).
Out: `json_value(field, v)` / `tsv_value(field, text)` → (mode, payload): ("text", str) for text
     still to be tokenised (token and label fields), ("ids", np.int64 array) for ids given as whole
     numbers, ("numbers", np.float64 array of shape (T,) + dims or dims) for number fields. What is
     wrong is a `Bad` exception whose message the reader places at the file, line and field.

Text is checked here, where the reader can still place the error: a label is text with something
other than whitespace in it (an empty label or TSV cell is an error, not a class named ""), and no
text holds a lone surrogate (JSON's "\\ud800" escapes: not Unicode that UTF-8 can write, so no
vocabulary could hold it).

JSON: a token field takes text or a list of ids, a label text or a class id, a vector field a list
of numbers (a sequence of vectors: a list of lists), a value a number. TSV cells are text: tokens
and labels as they are, a vector as numbers separated by spaces, a sequence of vectors as steps
separated by ';' (each step's numbers by spaces), a sequence of numbers by spaces.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np

MAX_ID = (1 << 31) - 1
SURROGATE = re.compile("[\ud800-\udfff]")


class Bad(Exception):
    """What is wrong with a value (the message, without the file, line or field)."""


def kind_of(v) -> str:
    """A JSON value's kind in words, with an excerpt: 'a string ("abc")', 'a number (4.5)', 'a list'."""
    if isinstance(v, bool):
        return f"{json.dumps(v)} (a boolean)"
    if v is None:
        return "null"
    if isinstance(v, str):
        return f"text ({_excerpt(v)})"
    if isinstance(v, (int, float)):
        return f"a number ({v!r})"
    return {dict: "an object", list: "a list"}.get(type(v), type(v).__name__)


def _excerpt(text: str, n: int = 30) -> str:
    return json.dumps(text[:n] + ("..." if len(text) > n else ""), ensure_ascii=False)


def _n(k: int, what: str) -> str:
    return f"{k} {what}{'' if k == 1 else 's'}"


def _whole(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def text_value(field, text: str, cell: bool = False) -> tuple:
    """("text", `text`) of a token or label field, checked: a label is not empty or whitespace only,
    and no text holds a lone surrogate. `cell`: the text is a TSV cell (for the message)."""
    if field.kind == "label" and not text.strip():
        what = ("an empty cell" if cell else "empty text") if not text else f"only whitespace ({_excerpt(text)})"
        raise Bad(f"is {what}; a label is non-empty text" + ("" if cell else " or a class id (a whole number)"))
    if not text.isascii():
        m = SURROGATE.search(text)
        if m:
            raise Bad(f"character {m.start()} of its text is \\u{ord(m.group()):04x}, a lone surrogate: not a "
                      "character UTF-8 can write")
    return "text", text


def json_value(field, v) -> tuple:
    """(mode, payload) of the JSON value `v` of `field` (see the module docstring)."""
    if field.kind == "tokens":
        if isinstance(v, str):
            return text_value(field, v)
        if isinstance(v, list):
            for i, x in enumerate(v):
                if not _whole(x):
                    raise Bad(f"item {i} of its list is {kind_of(x)}; a list of token ids holds whole numbers")
                if not 0 <= x <= MAX_ID:
                    raise Bad(f"id {x} (item {i}) is out of range: ids are whole numbers from 0 to {MAX_ID}")
            return "ids", np.asarray(v, dtype=np.int64)
        raise Bad(f"is {kind_of(v)}; expected text or a list of token ids")
    if field.kind == "label":
        if isinstance(v, str):
            return text_value(field, v)
        if _whole(v):
            if not 0 <= v <= MAX_ID:
                raise Bad(f"class id {v} is out of range: class ids are whole numbers from 0")
            return "ids", np.asarray(v, dtype=np.int64)
        raise Bad(f"is {kind_of(v)}; expected a label (text) or a class id (a whole number)")
    return "numbers", numbers(field, v)


def numbers(field, v) -> np.ndarray:
    """`v` (nested lists of numbers) as a float64 array of the field's shape: (T,) + dims for a
    sequence (T >= 1), dims otherwise."""
    if isinstance(v, str):
        raise Bad(f"is {kind_of(v)}; expected {expected(field)}")
    if field.seq and isinstance(v, list) and not v:
        raise Bad("holds no steps (an empty list); a sequence has at least one step")
    shape = ((None,) if field.seq else ()) + tuple(field.dims)
    try:
        arr = np.asarray(v)
    except (ValueError, TypeError, OverflowError):
        arr = None
    if arr is None or arr.dtype.kind not in "iuf" or arr.ndim != len(shape) or any(
            d is not None and d != n for d, n in zip(shape, arr.shape)):
        raise Bad(_problem(field, v, shape, ()) or f"is {kind_of(v)}; expected {expected(field)}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise Bad(f"{_where(field, where)} is {arr[where]}: numbers must be finite")
    return arr


def expected(field) -> str:
    """What a value of `field` looks like, for messages."""
    d = field.dims
    if field.kind == "value":
        return "a number"
    if field.kind == "vector":
        return f"a list of {_n(d[0], 'number')}" if len(d) == 1 else f"nested lists of shape {list(d)}"
    if not d:
        return "a list of numbers (one per step)"
    return (f"a list of steps, each a list of {_n(d[0], 'number')}" if len(d) == 1
            else f"a list of steps, each nested lists of shape {list(d)}")


def _where(field, path: tuple) -> str:
    if not path:
        return "the value"
    if field.seq:
        head = f"step {path[0]}"
        return head + "".join(f", item {i}" for i in path[1:])
    return ", ".join(f"item {i}" for i in path)


def _problem(field, v, shape: tuple, path: tuple) -> str | None:
    """The first thing wrong with `v` against `shape` (None: any length), or None."""
    if not shape:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return f"{_where(field, path)} is {kind_of(v)}, not a number" + (
                f"; expected {expected(field)}" if not path else "")
        if not math.isfinite(v) or (isinstance(v, int) and abs(v) > 1 << 1023):
            return f"{_where(field, path)} is {v!r}: numbers must be finite"
        return None
    if not isinstance(v, list):
        return f"{_where(field, path)} is {kind_of(v)}; expected " + (
            expected(field) if not path else f"a list of {_n(shape[0], 'number')}")
    if shape[0] is not None and len(v) != shape[0]:
        what = "number" if len(shape) == 1 else "item"
        return (f"{_where(field, path)} has {_n(len(v), what)}, expected {shape[0]} ({field.name} is "
                f"{field.describe()})")
    for i, x in enumerate(v):
        p = _problem(field, x, shape[1:], path + (i,))
        if p:
            return p
    return None


def tsv_value(field, text: str) -> tuple:
    """(mode, payload) of a TSV cell of `field` (see the module docstring)."""
    if field.kind in ("tokens", "label"):
        return text_value(field, text, cell=True)
    if len(field.dims) > 1:
        raise Bad(f"has {len(field.dims)} axes ({field.describe()}); a TSV cell holds at most a sequence of "
                  "vectors: write this data as .jsonl")
    if field.kind == "value":
        return "numbers", numbers(field, _number(text.strip()))
    if field.kind == "vector" or not field.dims:
        return "numbers", numbers(field, [_number(t) for t in text.split()])
    steps = text.split(";")
    if steps and not steps[-1].strip():
        steps.pop()  # a trailing ';'
    return "numbers", numbers(field, [[_number(t) for t in s.split()] for s in steps])


def _number(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise Bad(f"{_excerpt(text) if text else 'an empty cell'} is not a number") from None
    if not math.isfinite(x):
        raise Bad(f"{_excerpt(text)} is not a finite number")
    return x
