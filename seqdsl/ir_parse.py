"""The IR's text form read back: `from_text(text)` is the inverse of `seqdsl.ir.to_text(g)`.

In:  text as `to_text` prints it, at most `MAX_TEXT` characters: a header
     `cell LSTM(I=8, H=16)` (`kind name(sizes)`), then one line per node
        `  name: type[ state(init=...)] = op(inputs, key=value, ...)  # line N`
     where an input is `u`, or `u[t-k]` (delay k), or `port=u` (a `call`'s named port), and
     `# line N` is the spec line the node came from. Blank lines and whole-line `#` comments are
     skipped, and lines need not be in dependency order (a delayed input may name a later node).
     `graphs_from_text` reads several definitions, each from its header on (a golden IR file).
Out: a `networkx.MultiDiGraph` whose nodes are added in the order of their lines (so
     `to_text(from_text(to_text(g))) == to_text(g)`), with the graph attributes (kind, name,
     sizes), node attributes (op, name, type, span, state, init, decl, the rest by `ATTRS`) and
     edges (port, delay); `verify()` has accepted it. Malformed text raises `IRTextError`, a
     `SpecError` and a `ValueError` at the line (and column) of the text that is wrong.

What the text does not hold is rebuilt: a span has the printed line only (column 0, the file
given as `file`); a state's `decl` is its own span (the declaration line is not printed, so
`ir.states()` orders states by the line that computes them); `temp=True` on every name that
starts with `_`; the graph's `span` is line 0; a concrete size inside an initializer reads back
as a number (`1/sqrt(16)`: the same value and text). Node order is line order, which is all a
pass sees of creation order (`topo_order` breaks ties by it). Unrolled graphs read back without
the graph's `unrolled` and the nodes' `origin`, which are not printed. An attribute is read by
its kind in `ATTRS`; one not listed there by its look (true/false, None, an int, a float,
{..}, (..), a type, else a string).
"""

from __future__ import annotations

import re

import networkx as nx

from .errors import Span, SpecError, did_you_mean
from .ir import IRError, verify
from .ops import Op
from .sizes import Size
from .types import VType

MAX_TEXT = 8_000_000  # characters of IR text
MAX_LINE = 100_000  # characters of one line
MAX_DEPTH = 100  # nesting of parentheses in one expression
MAX_TOKENS = 1000  # numbers, names and operators in one expression

# attribute -> how its printed value is read (docs/ir.md lists them)
ATTRS = {"start": "size", "stop": "size", "split": "size", "size": "size", "heads": "size",
         "axis": "int", "step": "int", "value": "number", "causal": "bool", "reverse": "bool",
         "sizes": "sizes", "init": "init", "callee": "str", "instance": "str", "kind": "str",
         "field": "str", "output": "str", "hoist": "str", "initial_of": "str", "dist": "str", "std": "number",
         "fill": "number", "observed": "bool"}
# attributes an op cannot do without (its shape rule, the passes or the backends read them)
REQUIRED = {Op.PARAM: ("init",), Op.CONST: ("value",), Op.SLICE: ("start", "stop"), Op.SIGTANH: ("split",),
            Op.ONEHOT: ("size",), Op.ATTENTION: ("heads",), Op.OUTPUT: ("output",), Op.GET: ("field",),
            Op.SHIFT: ("fill",),
            Op.CALL: ("callee", "kind", "instance", "sizes")}
OPS_BY_NAME = {op.value: op for op in Op}

_HEADER = re.compile(r"(cell|block|model) ([A-Za-z_][A-Za-z0-9_]*)\((.*)\)$")
_NODE = re.compile(r"(?P<name>[^\s:=(),\[\]]+): (?P<type>.+?)(?: state\(init=(?P<init>.*?)\))? = "
                   r"(?P<op>[a-z_]+)\((?P<args>.*)\)(?:\s+#\s*line\s+(?P<line>\d+))?$")
_REF = re.compile(r"([^\s:=(),\[\]]+)(?:\[t-(\d+)\])?$")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(.))")


class IRTextError(SpecError, ValueError):
    """Malformed IR text; `str()` is `file:line:col: error: message` with the line and a caret."""


class _Line:
    """One line of the text: where it is, for errors."""

    def __init__(self, file: str, number: int, text: str, source: str):
        self.file, self.number, self.text, self.source = file, number, text, source

    def span(self, at: str | None = None) -> Span:
        """This line, at the first occurrence of `at` in it (else its start), with the source for the caret."""
        col = self.text.find(at) + 1 if at else 0
        if col <= 0:
            return Span(self.file, self.number, len(self.text) - len(self.text.lstrip()) + 1, 0, self.source)
        return Span(self.file, self.number, col, col + len(at), self.source)

    def error(self, message: str, at: str | None = None, hint: str | None = None) -> IRTextError:
        return IRTextError(message, self.span(at), hint)


# ---- expressions: sizes (`4*H + I`) and initializer scales (`1/sqrt(H)`) ----------------------

class _Expr:
    """A tiny recursive-descent reader over + - * / ( ) sqrt, numbers and names."""

    def __init__(self, text: str, line: _Line):
        self.line, self.text, self.toks = line, text, []
        for m in _TOKEN.finditer(text):
            num, name, op = m.groups()
            if num is not None:
                self.toks.append(("num", num))
            elif name is not None:
                self.toks.append(("name", name))
            elif op is not None and not op.isspace():
                self.toks.append(("op", op))
        if len(self.toks) > MAX_TOKENS:
            raise line.error(f"expression of more than {MAX_TOKENS} tokens", text)
        self.i, self.depth = 0, 0

    def fail(self, what: str):
        raise self.line.error(f"cannot read {what} '{self.text}'", self.text)

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None)

    def take(self, kind, value=None):
        k, v = self.peek()
        if k != kind or (value is not None and v != value):
            return None
        self.i += 1
        return v

    def parse(self, what: str):
        try:
            out = self.sum()
        except RecursionError:
            out = None
        if out is None or self.i != len(self.toks):
            self.fail(what)
        return out

    def sum(self):
        acc = self.product()
        while acc is not None and self.peek() in (("op", "+"), ("op", "-")):
            op = self.take("op")
            acc = self.bin(op, acc, self.product())
        return acc

    def product(self):
        acc = self.unary()
        while acc is not None and self.peek() in (("op", "*"), ("op", "/")):
            op = self.take("op")
            acc = self.bin(op, acc, self.unary())
        return acc

    def unary(self):
        if self.take("op", "-") is not None:
            x = self.unary()
            return None if x is None else self.neg(x)
        return self.atom()

    def nested(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.line.error(f"expression nested more than {MAX_DEPTH} deep", self.text)
        x = self.sum()
        self.depth -= 1
        return x if self.take("op", ")") is not None else None


class _Scalar(_Expr):
    """An initializer's scale: ("num", v), ("size", Size), ("bin", op, a, b), ("sqrt", a), ("neg", a)."""

    def bin(self, op, a, b):
        return None if b is None else ("bin", op, a, b)

    def neg(self, x):
        return ("neg", x)

    def atom(self):
        if (num := self.take("num")) is not None:
            return ("num", float(num))
        if self.take("name", "sqrt") is not None:
            if self.take("op", "(") is None:
                return None
            x = self.nested()
            return None if x is None else ("sqrt", x)
        if (name := self.take("name")) is not None:
            return ("size", Size.name(name))
        return self.nested() if self.take("op", "(") is not None else None


class _Size(_Expr):
    """A `Size`: integers and names with + - * (as `Size.__str__` prints it)."""

    def bin(self, op, a, b):
        if b is None or op == "/":
            return None
        return a + b if op == "+" else a - b if op == "-" else a * b

    def neg(self, x):
        return -x

    def atom(self):
        if (num := self.take("num")) is not None:
            return Size.const(int(num)) if num.isdigit() else None
        if (name := self.take("name")) is not None:
            return Size.name(name)
        return self.nested() if self.take("op", "(") is not None else None


def parse_size(text: str, line: _Line) -> Size:
    try:
        return _Size(text, line).parse("the size")
    except IRTextError:
        raise
    except (SpecError, ValueError) as e:  # too many terms, an integer too long for int()
        raise line.error(f"cannot read the size '{text}': {getattr(e, 'message', e)}", text) from None


def parse_scalar(text: str, line: _Line):
    return _Scalar(text, line).parse("the initializer scale")


# ---- values -----------------------------------------------------------------------------------

def split_top(text: str, line: _Line, sep: str = ",") -> list:
    """`text` split at `sep` outside (), [] and {}; items stripped; [] for an empty text."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                raise line.error(f"unbalanced '{ch}'", text)
        elif ch == sep and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    if depth:
        raise line.error("unbalanced brackets", text)
    last = text[start:].strip()
    if items or last:
        items.append(last)
    if any(not item for item in items):
        raise line.error("empty item in a list", text)
    return items


def parse_type(text: str, line: _Line) -> VType:
    """`[H]`, `seq[H]`, `shared[H, I]`, `shared seq[D]`, `seq<int>`, `<int>` → VType."""
    if text in ("seq<int>", "<int>"):
        return VType((), text == "seq<int>", "int", True)
    m = re.fullmatch(r"(shared seq|shared|seq)?\[(.*)\]", text)
    if not m:
        raise line.error(f"cannot read the type '{text}'", text,
                         "a type is [H], seq[H], shared[H, I], shared seq[D], seq<int> or <int>")
    prefix = m.group(1) or ""
    dims = tuple(parse_size(d, line) for d in split_top(m.group(2), line))
    return VType(dims, prefix.endswith("seq"), "float", not prefix.startswith("shared"))


def parse_init(text: str, line: _Line):
    """`uniform(1/sqrt(H))`, `normal(1)`, `const(0)` → (kind, scale); a state's `0.0` → float."""
    m = re.fullmatch(r"(uniform|normal|const)\((.*)\)", text)
    if m:
        return (m.group(1), parse_scalar(m.group(2), line))
    return parse_value(text, "number", line)


def parse_number(text: str, line: _Line):
    if re.fullmatch(r"-?\d+", text):
        return int(text) if len(text) < 4000 else float(text)
    try:
        return float(text)
    except ValueError:
        raise line.error(f"cannot read the number '{text}'", text) from None


def parse_value(text: str, kind: str | None, line: _Line):
    """An attribute's printed value (`ir.fmt_value`) read as `kind` (see `ATTRS`); None: guessed."""
    if text == "None" and kind != "str":
        return None
    if kind == "size":
        return parse_size(text, line)
    if kind in ("int", "number"):
        v = parse_number(text, line)
        if kind == "int" and not isinstance(v, int):
            raise line.error(f"expected a whole number, got '{text}'", text)
        return v
    if kind == "bool":
        if text not in ("true", "false"):
            raise line.error(f"expected true or false, got '{text}'", text)
        return text == "true"
    if kind == "init":
        return parse_init(text, line)
    if kind == "sizes":
        return parse_dict(text, line, sizes=True)
    if kind == "str":
        return text
    return guess_value(text, line)


def guess_value(text: str, line: _Line):
    """A value of an attribute `ATTRS` does not list, read by how it looks."""
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?\d+", text) or re.fullmatch(r"-?(\d+\.\d*(e[-+]?\d+)?|\d+e[-+]?\d+|inf|nan)", text):
        return parse_number(text, line)
    if text.startswith("{") and text.endswith("}"):
        return parse_dict(text, line, sizes=False)
    if text.startswith("(") and text.endswith(")"):
        return tuple(guess_value(x, line) for x in split_top(text[1:-1], line))
    if re.fullmatch(r"(shared seq|shared|seq)?\[.*\]|(seq)?<int>", text):
        return parse_type(text, line)
    return text


def parse_dict(text: str, line: _Line, sizes: bool) -> dict:
    """`{H=64, I=32}` (sizes: each a Size or a flag true/false), in the order printed."""
    if not (text.startswith("{") and text.endswith("}")):
        raise line.error(f"expected {{name=value, ...}}, got '{text}'", text)
    return parse_pairs(text[1:-1], line, sizes)


def parse_pairs(text: str, line: _Line, sizes: bool) -> dict:
    out: dict = {}
    for item in split_top(text, line):
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not _KEY.match(key) or not value:
            raise line.error(f"expected name=value, got '{item}'", item)
        if key in out:
            raise line.error(f"'{key}' given twice", item)
        if not sizes:
            out[key] = guess_value(value, line)
        elif value in ("true", "false"):
            out[key] = value == "true"
        else:
            out[key] = parse_size(value, line)
    return out


# ---- lines ------------------------------------------------------------------------------------

def read_args(args: str, op: Op, names: set, line: _Line):
    """(inputs [(source, delay, port)], attrs {key: text}) from the text between op( and )."""
    inputs, attrs, positional = [], {}, 0
    for item in split_top(args, line):
        ref = _REF.fullmatch(item)
        if ref:
            inputs.append((ref.group(1), int(ref.group(2) or 0), positional))
            positional += 1
            continue
        key, eq, value = item.partition("=")
        if not eq or not _KEY.fullmatch(key):
            raise line.error(f"cannot read the argument '{item}'", item,
                             "an argument is a node (`h`, `h[t-1]`), a port (`x=h`) or an attribute (`key=value`)")
        ref = _REF.fullmatch(value)
        if op == Op.CALL and not attrs and ref and ref.group(1) in names:
            inputs.append((ref.group(1), int(ref.group(2) or 0), key))  # a named port: ports come first
            continue
        if key in attrs:
            raise line.error(f"attribute '{key}' given twice", item)
        attrs[key] = value
    return inputs, attrs


def read_node(m: re.Match, names: set, line: _Line) -> dict:
    """A node line's parts: name, op, type, attrs (values read), inputs, source line."""
    op = OPS_BY_NAME.get(m["op"])
    if op is None:
        raise line.error(f"unknown op '{m['op']}'", m["op"] + "(", did_you_mean(m["op"], OPS_BY_NAME))
    inputs, raw = read_args(m["args"], op, names, line)
    attrs = {k: parse_value(v, ATTRS.get(k), line) for k, v in raw.items()}
    for k in ("op", "name", "type", "span", "state", "decl"):
        if k in attrs:
            raise line.error(f"'{k}' cannot be given as an attribute", k + "=")
    if m["init"] is not None:
        if "init" in attrs:
            raise line.error("a state's init is given twice", "init=")
        attrs.update(state=True, init=parse_init(m["init"], line))
    missing = [k for k in REQUIRED.get(op, ()) if k not in attrs]
    if missing:
        raise line.error(f"{op.value} node '{m['name']}' lacks {', '.join(missing)}", m["op"] + "(")
    return dict(name=m["name"], op=op, type=parse_type(m["type"], line), attrs=attrs, inputs=inputs,
                source=int(m["line"]) if m["line"] else 0)


def read_header(text: str, line: _Line) -> tuple:
    m = _HEADER.fullmatch(text)
    if not m:
        raise line.error("expected a header `cell|block|model Name(sizes)`", text.strip() or None)
    return m.group(1), m.group(2), parse_pairs(m.group(3), line, sizes=True)


def source_lines(text: str, file: str) -> list:
    """The text's lines that hold something, as _Line (numbered from 1)."""
    if not isinstance(text, str):
        raise TypeError(f"IR text must be a str, got {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise IRTextError(f"IR text of {len(text)} characters is over the limit of {MAX_TEXT}",
                          Span(file, 1, 1))
    out = []
    for i, raw in enumerate(text.split("\n"), 1):
        raw = raw.rstrip()
        if len(raw) > MAX_LINE:
            raise IRTextError(f"line of {len(raw)} characters is over the limit of {MAX_LINE}", Span(file, i, 1))
        if raw.strip() and not raw.lstrip().startswith("#"):
            out.append(_Line(file, i, raw, text))
    return out


# ---- graphs -----------------------------------------------------------------------------------

def build(header: _Line, body: list) -> nx.MultiDiGraph:
    """One definition from its header line and its node lines."""
    kind, name, sizes = read_header(header.text, header)
    matches = []
    for line in body:
        m = _NODE.fullmatch(line.text.strip())
        if not m:
            raise line.error("cannot read this node line", line.text.strip(),
                             "a node is `  name: type = op(inputs, key=value)  # line N`")
        matches.append(m)
    names = {m["name"] for m in matches}
    g = nx.MultiDiGraph(kind=kind, name=name, sizes=sizes, span=Span(header.file, 0, 0))
    nodes, where = [], {}
    for m, line in zip(matches, body):
        n = read_node(m, names, line)
        if n["name"] in g:
            raise line.error(f"node '{n['name']}' is defined twice (first on line {where[n['name']].number})",
                             n["name"])
        g.add_node(n["name"], op=n["op"], name=n["name"], type=n["type"], span=line.span(n["name"]),  # for verify
                   **n["attrs"])
        nodes.append(n)
        where[n["name"]] = line
    for n in nodes:
        for src, delay, port in n["inputs"]:
            if src not in g:
                line = where[n["name"]]
                raise line.error(f"no node named '{src}'", src, did_you_mean(src, names))
            g.add_edge(src, n["name"], port=port, delay=delay)
    check(g, where, header)
    for n in nodes:  # the spec's line, as printed
        span = Span(header.file, n["source"], 0)
        g.nodes[n["name"]]["span"] = span
        if g.nodes[n["name"]].get("state"):
            g.nodes[n["name"]]["decl"] = span
        if n["name"].startswith("_") and "temp" not in n["attrs"]:
            g.nodes[n["name"]]["temp"] = True  # not printed: a temporary is a name with `_` first
    return g


def check(g, where: dict, header: _Line) -> None:
    """`verify(g)`, its complaint reported at the line of the node it names."""
    try:
        verify(g)
    except (IRError, SpecError) as e:
        span = e.span if e.span and e.span.line else None
        if span is None:
            named = re.findall(r"[\w.@-]+", e.message)
            line = next((where[x] for x in named if x in where), None)
            span = (line or header).span()
        raise IRTextError(f"invalid IR: {e.message}", span, e.hint) from None
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise IRTextError(f"invalid IR: {type(e).__name__}: {e}", header.span()) from None


def graphs_from_text(text: str, file: str = "<ir>") -> list:
    """Every definition in `text` (each from its header line on), as graphs."""
    lines = source_lines(text, file)
    if not lines:
        raise IRTextError("no IR definition in the text", Span(file, 1, 1), "it starts with `cell Name(sizes)`")
    if not _HEADER.fullmatch(lines[0].text):
        read_header(lines[0].text, lines[0])
    starts = [i for i, line in enumerate(lines) if _HEADER.fullmatch(line.text)] + [len(lines)]
    return [build(lines[a], lines[a + 1:b]) for a, b in zip(starts, starts[1:])]


def from_text(text: str, file: str = "<ir>") -> nx.MultiDiGraph:
    """The one definition in `text` (as `to_text` prints it) as a verified IR graph."""
    graphs = graphs_from_text(text, file)
    if len(graphs) != 1:
        raise IRTextError(f"expected one IR definition, found {len(graphs)}", Span(file, 1, 1),
                          "use graphs_from_text() for several")
    return graphs[0]


__all__ = ["from_text", "graphs_from_text", "IRTextError", "ATTRS", "MAX_TEXT"]
