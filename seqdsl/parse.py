"""Parse: `.seq` source text → AST (`seqdsl.ast.Module`).

In:  source bytes or text and a file name for messages.
Out: a `Module` whose nodes carry spans; or `SpecError` with file:line:col.

Before Lark sees the text, the source is checked: at most `MAX_SOURCE_BYTES`, strict
UTF-8, no bidi-control characters, bracket nesting at most `MAX_NESTING`. The LALR
parser is iterative and the AST is built with `Transformer_NonRecursive`; every node
records the height of its subtree and an expression deeper than `MAX_EXPR_DEPTH` is
an error, so later stages can recurse over the AST without meeting a RecursionError.

The LALR tables are not built from the grammar at run time: `seqdsl/_seq_parser.py` is
generated from `grammar/seq.lark` (the one source of truth) by Lark's standalone generator,
and is loaded in a few milliseconds without importing `lark`. After editing the grammar,
regenerate it with

    python -m seqdsl.parse --regenerate

(`--check` exits with status 1 when the committed module is stale, and tests/test_parse.py
fails). Both commands import this module, which imports `_seq_parser.py`: if that file is
missing or broken, restore it with git first. `parser()` still builds a real `lark.Lark` from
the grammar, for tools that need one (hypothesis' `from_lark` in tests/test_fuzz.py); parsing
never uses it.
"""

from __future__ import annotations

import keyword
import math
import sys
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from . import ast as A
from ._seq_parser import (
    Lark_StandAlone,
    Token,
    Transformer_NonRecursive,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
    v_args,
)
from .errors import Span, SpecError

if TYPE_CHECKING:
    from lark import Lark

MAX_SOURCE_BYTES = 1 << 20
MAX_NESTING = 64
MAX_EXPR_DEPTH = 200

BIDI_CONTROLS = {
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
    "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f", "\u061c",
}

# NOTE: names the generated code uses itself; a spec may not use them as identifiers.
GENERATED_NAMES = frozenset({
    "np", "torch", "nn", "F", "math", "self", "t", "B", "T", "S", "P", "params", "state",
    "inputs", "outputs", "final", "grads", "steps", "last", "seq", "zeros", "ones", "true",
    "false", "run", "cell", "block", "model", "param", "memory", "repeat", "over", "attend",
    "reversed", "bidirectional", "use", "out", "dtype", "tape", "lengths", "training", "seed",
})


def _grammar_path() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "grammar" / "seq.lark", here.parent / "grammar" / "seq.lark"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("seq.lark not found next to the seqdsl package")


# The options of both the generated parser and `parser()`. NOTE: no cache=True: Lark's cache pickles into /tmp.
LARK_OPTIONS = {"parser": "lalr", "lexer": "contextual", "propagate_positions": True, "maybe_placeholders": True}
GENERATED = Path(__file__).resolve().parent / "_seq_parser.py"


@lru_cache(maxsize=1)
def _standalone():
    """The parser generated from the grammar (`seqdsl/_seq_parser.py`); what `parse` uses."""
    return Lark_StandAlone()


@lru_cache(maxsize=1)
def _terminals() -> dict:
    return {t.name: t for t in _standalone().terminals}


@lru_cache(maxsize=1)
def parser() -> Lark:
    """A `lark.Lark` built from `grammar/seq.lark` (about 0.1 s); for tools that need Lark itself.

    `parse` does not use it: it runs the parser generated from the same grammar."""
    from lark import Lark

    text = _grammar_path().read_text(encoding="utf-8")
    return Lark(text, **LARK_OPTIONS)


def grammar_sha256(text: str | None = None) -> str:
    import hashlib

    if text is None:
        text = _grammar_path().read_text(encoding="utf-8")
    return hashlib.sha256(text.replace("\r\n", "\n").encode("utf-8")).hexdigest()


def _canonicalize(lark_inst) -> None:
    """Renumber the LALR states breadth first from the start state, actions in token-name order.

    Lark numbers states in set-iteration order, which changes from one run to the next; this
    makes the generated module a function of the grammar (and Lark's version) alone."""
    lalr = lark_inst.parser.parser
    table = lalr._parse_table
    order: dict = {}
    queue = [table.start_states[s] for s in sorted(table.start_states)]
    queue += [table.end_states[s] for s in sorted(table.end_states)]
    for state in queue:
        if state in order:
            continue
        order[state] = len(order)
        queue.extend(arg for _, (action, arg) in sorted(table.states[state].items()) if action.name == "Shift")
    assert len(order) == len(table.states), "unreachable LALR states"
    shift = lambda action, arg: (action, order[arg]) if action.name == "Shift" else (action, arg)
    states = {order[old]: {tok: shift(*acts[tok]) for tok in sorted(acts)}
              for old, acts in sorted(table.states.items(), key=lambda kv: order[kv[0]])}
    lalr._parse_table = type(table)(states, {k: order[v] for k, v in table.start_states.items()},
                                    {k: order[v] for k, v in table.end_states.items()})


def generate_parser_source() -> str:
    """The text of `seqdsl/_seq_parser.py`, generated from the grammar with Lark's standalone tool."""
    import pprint

    import lark
    from lark.tools.standalone import gen_standalone

    grammar = _grammar_path().read_text(encoding="utf-8")
    inst = lark.Lark(grammar, **LARK_OPTIONS)
    _canonicalize(inst)
    lines = [
        "# GENERATED FILE, do not edit: the LALR(1) parser of grammar/seq.lark, written by",
        "#     python -m seqdsl.parse --regenerate",
        f"# with Lark {lark.__version__}'s standalone generator (lark.tools.standalone),",
        f"# options {LARK_OPTIONS}.",
        "# tests/test_parse.py fails when it is stale. The code below is Lark's, under the Mozilla Public",
        "# License 2.0 (see its notice).",
        f'GRAMMAR_SHA256 = "{grammar_sha256(grammar)}"',
        "",
        "# Transformer_NonRecursive.transform calls typing.cast, which Lark's standalone header does not import",
        "from typing import cast",
        "",
    ]

    def output(*args) -> None:
        if args == ("import pickle, zlib, base64",):  # only for compressed tables, which seqdsl does not use
            return
        if len(args) == 1 and isinstance(args[0], dict):  # DATA and MEMO: one line per entry, for diffs
            lines.append(pprint.pformat(args[0], width=120, sort_dicts=False))
        else:
            lines.append(" ".join(map(str, args)))

    gen_standalone(inst, output=output)
    return "\n".join(lines) + "\n"


def _main(argv: list[str]) -> int:
    if argv == ["--regenerate"]:
        GENERATED.write_text(generate_parser_source(), encoding="utf-8")
        print(f"wrote {GENERATED}")
        return 0
    if argv == ["--check"]:
        import lark

        from . import _seq_parser

        fresh = GENERATED.read_text(encoding="utf-8") == generate_parser_source()
        why = "" if _seq_parser.__version__ == lark.__version__ else \
            f" (generated with lark {_seq_parser.__version__}; lark {lark.__version__} is installed)"
        print(f"{GENERATED}: {'up to date' if fresh else 'STALE' + why + ': run python -m seqdsl.parse --regenerate'}")
        return 0 if fresh else 1
    print("usage: python -m seqdsl.parse --regenerate | --check", file=sys.stderr)
    return 2


def check_identifier(name: str, span: Span, what: str = "name", reserved: bool = True) -> None:
    """Identifiers reach generated code: ASCII, not a keyword/builtin/generated name.

    Definition names only appear behind a prefix (`cell_LSTM_...`), so they are checked
    with reserved=False: any ASCII identifier that is not a Python keyword.
    """
    import builtins

    if not name.isascii() or not (name[0].isalpha()) or not all(c.isalnum() or c == "_" for c in name):
        raise SpecError(f"'{name}' is not a valid {what}", span,
                        "names are ASCII letters, digits and '_', starting with a letter")
    if keyword.iskeyword(name) or (reserved and (hasattr(builtins, name) or name in GENERATED_NAMES)):
        raise SpecError(f"'{name}' is reserved and cannot be used as a {what}", span,
                        f"it is a Python keyword or builtin, or a name seqdsl's generated code "
                        f"uses; try '{name}_' or another name")
    if "__" in name:
        raise SpecError(f"'{name}' contains '__', which seqdsl reserves", span)


def _decode(data: bytes | str, file: str) -> str:
    if isinstance(data, str):
        text = data
        size = len(text.encode("utf-8", errors="surrogatepass"))
    else:
        size = len(data)
        if size > MAX_SOURCE_BYTES:
            raise SpecError(f"file is {size} bytes; the limit is {MAX_SOURCE_BYTES}", Span(file, 1, 1))
        try:
            text = data.decode("utf-8", errors="strict")
        except UnicodeDecodeError as e:
            line = data[: e.start].count(b"\n") + 1
            col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
            raise SpecError(f"source is not valid UTF-8 (byte 0x{data[e.start]:02x})",
                            Span(file, line, col)) from None
    if size > MAX_SOURCE_BYTES:
        raise SpecError(f"file is {size} bytes; the limit is {MAX_SOURCE_BYTES}", Span(file, 1, 1))
    text = text.lstrip("\ufeff")
    for lineno, line in enumerate(text.split("\n"), 1):
        for col, ch in enumerate(line, 1):
            if ch in BIDI_CONTROLS:
                raise SpecError(f"bidirectional control character U+{ord(ch):04X} in source",
                                Span(file, lineno, col, source=text),
                                "these characters can make code read differently than it runs")
            if ch == "\x00" or (ord(ch) < 32 and ch not in "\t\r\f"):
                raise SpecError(f"control character U+{ord(ch):04X} in source",
                                Span(file, lineno, col, source=text))
            if 0xD800 <= ord(ch) <= 0xDFFF:
                raise SpecError("source is not valid UTF-8 (lone surrogate)", Span(file, lineno, col, source=text))
    return text


def _check_nesting(text: str, file: str) -> None:
    depth = 0
    line, col = 1, 0
    in_comment = in_string = False
    for ch in text:
        col += 1
        if ch == "\n":
            line, col, in_comment, in_string = line + 1, 0, False, False
            continue
        if in_comment:
            continue
        if ch == '"':
            in_string = not in_string
        elif in_string:
            continue
        elif ch == "#":
            in_comment = True
        elif ch in "([{":
            depth += 1
            if depth > MAX_NESTING:
                raise SpecError(f"brackets nest deeper than {MAX_NESTING} levels", Span(file, line, col, source=text))
        elif ch in ")]}":
            depth -= 1


_FRIENDLY = {
    "NAME": "a name", "NUMBER": "a number", "INT": "an integer", "STRING": "a quoted path",
    "_NL": "end of line", "$END": "end of file", "INT_KW": "'int'",
}


def _describe(term: str) -> str:
    if term in _FRIENDLY:
        return _FRIENDLY[term]
    terminal = _terminals().get(term)
    if terminal is not None and terminal.pattern.type == "str":
        return f"'{terminal.pattern.value}'"
    return term.lower()


def _expected(names) -> str:
    items = sorted({_describe(n) for n in names})
    if len(items) > 8:
        items = items[:8] + ["…"]
    return ", ".join(items)


def _translate(e: UnexpectedInput, text: str, file: str) -> SpecError:
    line = getattr(e, "line", 1) or 1
    col = getattr(e, "column", 1) or 1
    if isinstance(e, UnexpectedCharacters):
        lines = text.split("\n")
        ch = lines[line - 1][col - 1] if line - 1 < len(lines) and col - 1 < len(lines[line - 1]) else "?"
        return SpecError(f"unexpected character '{ch}'", Span(file, line, col, source=text),
                         f"expected {_expected(e.allowed)}" if e.allowed else None)
    if isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END"):
        lines = text.rstrip("\n").split("\n") or [""]
        return SpecError("unexpected end of file", Span(file, len(lines), len(lines[-1]) + 1, source=text),
                         f"expected {_expected(e.expected)}")
    tok = e.token
    shown = "end of line" if tok.type == "_NL" else f"'{tok}'"
    if tok.type == "_NL":
        line, col = tok.line, tok.column
    return SpecError(f"unexpected {shown}", Span(file, line, col, col + max(1, len(str(tok).strip())), source=text),
                     f"expected {_expected(e.accepts or e.expected)}")


def _depth(*children) -> int:
    d = 0
    for c in children:
        if isinstance(c, (tuple, list)):
            for x in c:
                d = max(d, getattr(x, "depth", 0))
        else:
            d = max(d, getattr(c, "depth", 0))
    return d + 1


@v_args(meta=True, inline=True)
class _ToAst(Transformer_NonRecursive):
    def __init__(self, file: str, text: str):
        super().__init__()
        self.file, self.text = file, text

    def _span(self, meta) -> Span:
        if isinstance(meta, Token):
            return Span(self.file, meta.line, meta.column, meta.end_column or meta.column + 1, self.text)
        if getattr(meta, "empty", False):
            return Span(self.file, 1, 1, source=self.text)
        end = meta.end_column if meta.end_line == meta.line else len(self.text.split("\n")[meta.line - 1]) + 1
        return Span(self.file, meta.line, meta.column, end, self.text)

    def _ident(self, tok: Token, what: str = "name", reserved: bool = True) -> str:
        check_identifier(str(tok), self._span(tok), what, reserved)
        return str(tok)

    def _mk(self, cls, meta, *args, **kw):
        node = cls(self._span(meta), *args, **kw)
        depth = _depth(*args, *kw.values())
        if depth > MAX_EXPR_DEPTH:
            raise SpecError(f"expression nests deeper than {MAX_EXPR_DEPTH} levels", node.span,
                            "split it into several equations")
        return node.__class__(**{**node.__dict__, "depth": depth}) if hasattr(node, "depth") else node

    # expressions
    def number(self, meta, tok):
        s = str(tok)
        is_int = s.isdigit()
        if len(s) > 40:
            raise SpecError("number literal is too long", self._span(tok))
        value = float(s) if not is_int else int(s)
        if not math.isfinite(float(value)):
            raise SpecError(f"number {s} is out of range", self._span(tok))
        return A.Num(self._span(tok), value, is_int)

    def name(self, meta, tok):
        return A.Name(self._span(tok), str(tok))

    def true(self, meta):
        return A.Bool(self._span(meta), True)

    def false(self, meta):
        return A.Bool(self._span(meta), False)

    def _bin(op):
        def f(self, meta, a, b):
            return self._mk(A.BinOp, meta, op, a, b)
        return f

    add, sub, mul, div, matmul = _bin("+"), _bin("-"), _bin("*"), _bin("/"), _bin("@")

    def neg(self, meta, a):
        return self._mk(A.Neg, meta, a)

    def pow(self, meta, base, exponent):
        return self._mk(A.Pow, meta, base, exponent)

    def kwarg(self, meta, name, value):
        return self._mk(A.Kwarg, meta, str(name), value)

    def args(self, meta, *items):
        return list(items)

    def call(self, meta, name, args):
        args = args or []
        pos = tuple(a for a in args if not isinstance(a, A.Kwarg))
        kws = tuple(a for a in args if isinstance(a, A.Kwarg))
        seen_kw = False
        for a in args:
            if isinstance(a, A.Kwarg):
                seen_kw = True
            elif seen_kw:
                raise SpecError("positional argument after a keyword argument", a.span)
        return self._mk(A.Call, meta, str(name), pos, kws)

    def delay(self, meta, tok):
        digits = str(tok).lstrip("0") or "0"  # t-0000000001 is t-1
        k = int(digits) if len(digits) < 10 else 10**9
        return ("delay", k, self._span(meta))

    def future(self, meta, tok):
        span = self._span(meta)
        if (str(tok).lstrip("0") or "0") == "0":  # t+0 is t
            return ("delay", 0, span)
        return ("future", str(tok), span)

    def now(self, meta):
        return ("delay", 0, self._span(meta))

    def last(self, meta):
        return ("last", 0, self._span(meta))

    def index(self, meta, target, idx):
        kind, k, span = idx
        if kind == "future":
            what = f"{target.id}[t+{k}]" if isinstance(target, A.Name) else f"[t+{k}]"
            past = f"{target.id}[t-1]" if isinstance(target, A.Name) else "h[t-1]"
            raise SpecError(f"{what} reads a later step; only past steps can be read ({past}, ...)",
                            self._span(meta), "a cell computes step t from earlier steps; to see the inputs "
                            "that come later, run the cell 'reversed' or 'bidirectional' in the model")
        if kind == "last":
            return self._mk(A.Last, meta, target)
        return self._mk(A.Delay, meta, target, k)

    def attr(self, meta, target, name):
        return self._mk(A.Attr, meta, target, str(name))

    def run_from(self, meta, src):
        return ("from", src)

    def kwarg_list(self, meta, *kws):
        return self._mk(A.KwargList, meta, tuple(kws))

    def run_attend(self, meta, mem):
        return ("attend", mem)

    def run_reversed(self, meta):
        return ("reversed", True)

    def run_bidirectional(self, meta):
        return ("bidirectional", True)

    def run(self, meta, call, over, *opts):
        kw = {}
        for key, value in opts:
            if key in kw:
                raise SpecError(f"'{key}' given twice", self._span(meta))
            kw[key if key != "from" else "from_"] = value
        if kw.get("reversed") and kw.get("bidirectional"):
            raise SpecError("a run is either 'reversed' or 'bidirectional', not both", self._span(meta))
        kids = [call, over] + [v for v in kw.values() if not isinstance(v, bool)]
        node = self._mk(A.Run, meta, call, over, **kw)
        return A.Run(node.span, call, over, kw.get("from_"), kw.get("attend"), kw.get("reversed", False),
                     kw.get("bidirectional", False), _depth(*kids))

    # types
    def dims(self, meta, *ds):
        return tuple(ds)

    def vec_type(self, meta, dims):
        return self._mk(A.TypeExpr, meta, "vec", dims or ())

    def seq_type(self, meta, dims):
        return self._mk(A.TypeExpr, meta, "seq", dims or ())

    def tok_type(self, meta, _kw):
        return self._mk(A.TypeExpr, meta, "tokens", ())

    # statements
    def in_decl(self, meta, name, typ):
        return A.InDecl(self._span(name), self._ident(name), typ)

    def mem_decl(self, meta, name, typ):
        return A.MemDecl(self._span(name), self._ident(name), typ)

    def state_decl(self, meta, name, typ, init):
        return A.StateDecl(self._span(name), self._ident(name), typ, init)

    def init_dist(self, meta, e):
        return ("dist", e)

    def init_const(self, meta, e):
        return ("const", e)

    def pitem(self, meta, name, typ, init):
        kind, expr = init if init else (None, None)
        return A.ParamItem(self._span(name), self._ident(name), typ, kind, expr)

    def param_decl(self, meta, *items):
        return A.ParamDecl(self._span(meta), tuple(items))

    def assign(self, meta, *parts):
        *names, value = parts
        return A.Assign(self._span(names[0]), tuple(self._ident(n) for n in names),
                        tuple(self._span(n) for n in names), value)

    def out_stmt(self, meta, name, value):
        return A.Out(self._span(name), self._ident(name), value)

    def out_dist(self, meta, name, typ, dist):
        return A.Predict(self._span(name), self._ident(name), typ, dist)

    def repeat(self, meta, count, *body):
        return A.Repeat(self._span(meta), count, tuple(body))

    def body(self, meta, *stmts):
        return tuple(stmts)

    def sparam(self, meta, name, default):
        return A.SizeParam(self._span(name), self._ident(name, "size name"), default)

    def sparams(self, meta, *ps):
        return tuple(ps)

    def _definition(kind):
        def f(self, meta, name, params, body):
            ident = self._ident(name, f"{kind} name", reserved=False)
            return A.Definition(self._span(name), kind, ident, params or (), body)
        return f

    cell, block, model = _definition("cell"), _definition("block"), _definition("model")

    def use(self, meta, tok):
        return A.Use(self._span(tok), str(tok)[1:-1])

    def start(self, meta, *items):
        uses = tuple(i for i in items if isinstance(i, A.Use))
        defs = tuple(i for i in items if isinstance(i, A.Definition))
        return A.Module(Span(self.file, 1, 1, source=self.text), self.file, uses, defs)


def parse(source: bytes | str, file: str = "<string>") -> A.Module:
    """Parse `.seq` source into a `Module`; raises `SpecError` on any problem."""
    text = _decode(source, file)
    _check_nesting(text, file)
    try:
        tree = _standalone().parse(text + "\n")
    except UnexpectedInput as e:
        raise _translate(e, text, file) from None
    try:
        return _ToAst(file, text).transform(tree)
    except VisitError as e:
        if isinstance(e.orig_exc, SpecError):
            raise e.orig_exc from None
        raise


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
