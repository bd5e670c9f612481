"""Synthetic tasks written as real data files, for trying models out (`seqdsl data TASK ...`).

In:  a task name, a number of examples, a seed and the task's options (`steps`, `min_len`, `max_len`).
Out: `TASKS`: name → generator `f(n, rng, **options)` → [example dict] (rng a numpy Generator);
     `make_task(task, n, seed, **options)` → the examples, checked options; `write_task(task, n,
     seed, path, **options)` → the .jsonl file written atomically (a temporary file in the same
     folder, fsynced, renamed), one JSON object per line. The same seed gives the same file; a
     held-out set is the same task from another seed. Bad arguments are `SpecError`s.

The keys are the field names the shipped specs use, so no mapping is needed:

    copy       {"src": "3141", "word": "3141"}               specs/tasks.seq Translate, attention.seq
    reverse    {"src": "3141", "word": "1413"}               (digit strings, --min-len/--max-len digits)
    addition   {"src": "535+61", "word": "596"}              (--min-len/--max-len digits per number)
    dates      {"src": "Tuesday, March 5 2019", "word": "2019-03-05"}   (eight formats, 1950 to 2049)
    adding     {"x": [[0.1234, 0], ...], "total": [0.9]}     specs/adding.seq (--steps, default 100)
    sentiment  {"words": "the movie was not very good", "label": "neg"}  tasks.seq Sentiment, --tokens words
"""

from __future__ import annotations

import datetime
import inspect
import json

import numpy as np

from ..errors import SpecError, did_you_mean

MAX_EXAMPLES = 10_000_000
LIMITS = {"steps": (2, 100_000), "min_len": (1, 1000), "max_len": (1, 1000)}

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
FIRST_DATE, LAST_DATE = datetime.date(1950, 1, 1), datetime.date(2049, 12, 31)  # 2-digit years: 50-99 are 19xx


def _digits(rng, k: int) -> str:
    return "".join("0123456789"[d] for d in rng.integers(0, 10, size=k))


def copy(n: int, rng, min_len: int = 1, max_len: int = 10) -> list:
    """A digit string of min_len to max_len digits, and the same string."""
    out = []
    for k in rng.integers(min_len, max_len + 1, size=n):
        s = _digits(rng, int(k))
        out.append({"src": s, "word": s})
    return out


def reverse(n: int, rng, min_len: int = 1, max_len: int = 10) -> list:
    """A digit string of min_len to max_len digits, and the string reversed ("3141" → "1413")."""
    return [{"src": e["src"], "word": e["src"][::-1]} for e in copy(n, rng, min_len, max_len)]


INT64_DIGITS = 18  # the most digits rng.integers draws a number of in one go (10**19 > the int64 maximum)


def _number(rng, k: int) -> int:
    """A number of exactly `k` digits (0 to 9 for one digit, else no leading zero), uniformly. Up to
    INT64_DIGITS digits in one draw (the files those lengths gave stay the same); longer, digit by
    digit: the first 1 to 9, the others 0 to 9 (a Python int, any length)."""
    if k == 1:
        return int(rng.integers(0, 10))
    if k <= INT64_DIGITS:
        return int(rng.integers(10 ** (k - 1), 10 ** k))
    return int(str(int(rng.integers(1, 10))) + _digits(rng, k - 1))


def addition(n: int, rng, min_len: int = 1, max_len: int = 3) -> list:
    """Two numbers of min_len to max_len digits each (no leading zeros), and their sum: "535+61" → "596"."""
    out = []
    for _ in range(n):
        a, b = (_number(rng, int(k)) for k in rng.integers(min_len, max_len + 1, size=2))
        out.append({"src": f"{a}+{b}", "word": str(a + b)})
    return out


DATE_FORMATS = (  # (an example, how to write a date so); English names, never the locale's
    ("Tuesday, March 5 2019", lambda d: f"{DAYS[d.weekday()]}, {MONTHS[d.month - 1]} {d.day} {d.year}"),
    ("5/3/19", lambda d: f"{d.day}/{d.month}/{d.year % 100:02d}"),
    ("March 5, 2019", lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}"),
    ("05 mar 2019", lambda d: f"{d.day:02d} {MONTHS[d.month - 1][:3].lower()} {d.year}"),
    ("5 March 2019", lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}"),
    ("Tue 5 Mar 2019", lambda d: f"{DAYS[d.weekday()][:3]} {d.day} {MONTHS[d.month - 1][:3]} {d.year}"),
    ("05.03.2019", lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}"),
    ("MARCH 5, 2019", lambda d: f"{MONTHS[d.month - 1].upper()} {d.day}, {d.year}"),
)


def dates(n: int, rng) -> list:
    """A date from 1950 to 2049 written by a person in one of DATE_FORMATS, and the ISO date:
    "Tuesday, March 5 2019" → "2019-03-05" (in "5/3/19" the day comes first, and 50 to 99 are 19xx)."""
    span = (LAST_DATE - FIRST_DATE).days + 1
    out = []
    for days, f in zip(rng.integers(0, span, size=n), rng.integers(0, len(DATE_FORMATS), size=n)):
        d = FIRST_DATE + datetime.timedelta(days=int(days))
        out.append({"src": DATE_FORMATS[int(f)][1](d), "word": d.isoformat()})
    return out


def adding(n: int, rng, steps: int = 100) -> list:
    """Hochreiter & Schmidhuber's adding problem: `steps` pairs [value in [0, 1) (4 decimals), marker],
    exactly two marked (one in each half), and the sum of the two marked values as a 1-vector."""
    values = np.round(rng.random((n, steps)), 4).tolist()
    first = rng.integers(0, steps // 2, size=n)
    second = rng.integers(steps // 2, steps, size=n)
    out = []
    for v, a, b in zip(values, first.tolist(), second.tolist()):
        x = [[value, 0] for value in v]
        x[a][1] = x[b][1] = 1
        out.append({"x": x, "total": [round(v[a] + v[b], 4)]})
    return out


POSITIVE = ("good", "great", "excellent", "wonderful", "brilliant", "superb", "enjoyable", "delightful",
            "moving", "charming", "fun", "beautiful")
NEGATIVE = ("bad", "awful", "terrible", "boring", "dull", "poor", "horrible", "weak", "tedious",
            "disappointing", "bland", "clumsy")
NOUNS = ("movie", "film", "plot", "story", "acting", "cast", "ending", "script", "soundtrack", "dialogue",
         "pacing", "music")
VERBS = ("was", "is", "seemed", "felt")
INTENSIFIERS = ("very", "really", "quite", "truly", "rather", "so")
OPENERS = ("honestly", "i think", "overall", "in my opinion", "well", "to be fair")
CLOSERS = ("overall", "to me", "in the end", "if you ask me", "for sure")


def _pick(rng, words) -> str:
    return words[int(rng.integers(0, len(words)))]


def sentiment(n: int, rng) -> list:
    """A short review sentence and its label, "pos" or "neg": the adjective's sentiment, flipped by
    "not" ("the movie was not very good" → "neg"); openers, intensifiers and closers are noise."""
    out = []
    for _ in range(n):
        positive = bool(rng.integers(0, 2))
        negated = rng.random() < 0.3
        words = [_pick(rng, OPENERS)] if rng.random() < 0.3 else []
        words += [_pick(rng, ("the", "this", "that")), _pick(rng, NOUNS), _pick(rng, VERBS)]
        words += ["not"] if negated else []
        words += [_pick(rng, INTENSIFIERS)] if rng.random() < 0.4 else []
        words += [_pick(rng, POSITIVE if positive else NEGATIVE)]
        words += [_pick(rng, CLOSERS)] if rng.random() < 0.3 else []
        out.append({"words": " ".join(words), "label": "pos" if positive != negated else "neg"})
    return out


TASKS = {"copy": copy, "reverse": reverse, "addition": addition, "dates": dates, "adding": adding,
         "sentiment": sentiment}


def _flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def options_of(task: str) -> dict:
    """{option: default} of `task`'s generator."""
    params = list(inspect.signature(TASKS[task]).parameters.values())[2:]
    return {p.name: p.default for p in params}


def _check(task: str, n, seed, options: dict) -> dict:
    if task not in TASKS:
        raise SpecError(f"unknown task '{task}': the tasks are {', '.join(TASKS)}", None,
                        did_you_mean(str(task), TASKS))
    for what, v, low, high in (("the number of examples (-n)", n, 1, MAX_EXAMPLES), ("the seed", seed, 0, None)):
        if not isinstance(v, int) or isinstance(v, bool) or v < low or (high is not None and v > high):
            raise SpecError(f"{what} must be a whole number " + (f"from {low} to {high}" if high else f">= {low}")
                            + f", got {v!r}")
    known = options_of(task)
    given = {k: v for k, v in options.items() if v is not None}
    for k, v in given.items():
        if k not in known:
            takes = ", ".join(_flag(o) for o in known) or "no options"
            users = [t for t in TASKS if k in options_of(t)]
            raise SpecError(f"{_flag(k)} does not apply to the task '{task}' (it takes {takes})"
                            + (f"; {_flag(k)} is for {', '.join(users)}" if users else ""))
        low, high = LIMITS[k]
        if not isinstance(v, int) or isinstance(v, bool) or not low <= v <= high:
            raise SpecError(f"{_flag(k)} must be a whole number from {low} to {high}, got {v!r}")
    merged = {**known, **given}
    if "min_len" in merged and merged["min_len"] > merged["max_len"]:
        default = "" if given.get("max_len") else " (the default)"
        raise SpecError(f"--min-len {merged['min_len']} is more than --max-len {merged['max_len']}{default}")
    return merged


def make_task(task: str, n: int, seed: int, **options) -> list:
    """The `n` examples of `task` from `seed` (options that are None take their defaults)."""
    merged = _check(task, n, seed, options)
    return TASKS[task](n, np.random.default_rng(seed), **merged)


def write_task(task: str, n: int, seed: int, path, **options):
    """Write `n` examples of `task` from `seed` to the .jsonl file `path`, whole or not at all; → its Path."""
    from ..files import write_file

    examples = make_task(task, n, seed, **options)
    data = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples).encode("utf-8")
    return write_file(path, lambda f: f.write(data), "the data file")
