"""The AST: frozen dataclasses with source spans, built by `seqdsl.parse`.

In:  nothing (definitions only).
Out: node classes. Expressions (`Num`, `Name`, `Bool`, `BinOp`, `Neg`, `Pow`, `Call`, `Delay`,
     `Last`, `Attr`, `Run`; `Kwarg` and `KwargList` for named values), statements
     (`InDecl`, `MemDecl`, `StateDecl`, `ParamDecl`, `Assign`, `Out`, `Repeat`), and
     top-level items (`Use`, `Definition`, `Module`); `source_text(node)`, a node's text.
Every node has a `span` (`seqdsl.errors.Span`) and a `depth` (height of its subtree,
used to cap nesting before anything recurses over it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import Span


@dataclass(frozen=True)
class Node:
    span: Span = field(compare=False, repr=False)


# ---- expressions ------------------------------------------------------------------

@dataclass(frozen=True)
class Num(Node):
    value: float
    is_int: bool
    depth: int = 1


@dataclass(frozen=True)
class Bool(Node):
    value: bool
    depth: int = 1


@dataclass(frozen=True)
class Name(Node):
    id: str
    depth: int = 1


@dataclass(frozen=True)
class BinOp(Node):
    op: str  # one of + - * / @
    left: "Expr"
    right: "Expr"
    depth: int = 1


@dataclass(frozen=True)
class Neg(Node):
    operand: "Expr"
    depth: int = 1


@dataclass(frozen=True)
class Pow(Node):
    """`base ** exponent`; the exponent must be a number (checked when it is lowered)."""

    base: "Expr"
    exponent: "Expr"
    depth: int = 1


@dataclass(frozen=True)
class Kwarg(Node):
    name: str
    value: "Expr"
    depth: int = 1


@dataclass(frozen=True)
class KwargList(Node):
    """`(a = expr, b = expr)` after `over`, `from` or `attend`: values by the callee's names."""

    items: tuple  # tuple[Kwarg, ...]
    depth: int = 1

    def __iter__(self):
        return iter(self.items)

    def __len__(self):
        return len(self.items)


@dataclass(frozen=True)
class Call(Node):
    func: str
    args: tuple
    kwargs: tuple  # tuple[Kwarg, ...]
    depth: int = 1


@dataclass(frozen=True)
class Delay(Node):
    """`target[t-k]` (k >= 1), or `target[t]` with k == 0."""

    target: "Expr"
    k: int
    depth: int = 1


@dataclass(frozen=True)
class Last(Node):
    """`target[last]`: the last step of a sequence."""

    target: "Expr"
    depth: int = 1


@dataclass(frozen=True)
class Attr(Node):
    """`target.name`: a field of a run (`enc.y`, `enc.h`, `enc.final`)."""

    target: "Expr"
    name: str
    depth: int = 1


@dataclass(frozen=True)
class Run(Node):
    """`Cell(sizes) over seq [from ...] [attend mem] [reversed|bidirectional]`.

    `over`, `from_` and `attend` are each an Expr or a `KwargList` naming the callee's
    inputs, states or memories: `over (x = e, mask = m)`, `from (h = ...)`, `attend (m1 = ...)`.
    """

    call: Call
    over: object  # an Expr, or a KwargList of the callee's inputs
    from_: object = None  # an Expr, or a KwargList of the callee's states
    attend: object = None  # an Expr, or a KwargList of the callee's memories
    reversed: bool = False
    bidirectional: bool = False
    depth: int = 1


Expr = Num | Bool | Name | BinOp | Neg | Pow | Call | Delay | Last | Attr | Run


# ---- types and statements ---------------------------------------------------------

@dataclass(frozen=True)
class TypeExpr(Node):
    kind: str  # "vec" | "seq" | "tokens"
    dims: tuple  # tuple[Expr, ...]
    depth: int = 1


@dataclass(frozen=True)
class InDecl(Node):
    name: str
    type: TypeExpr


@dataclass(frozen=True)
class MemDecl(Node):
    name: str
    type: TypeExpr


@dataclass(frozen=True)
class StateDecl(Node):
    name: str
    type: TypeExpr
    init: "Expr | None"


@dataclass(frozen=True)
class ParamItem(Node):
    name: str
    type: "TypeExpr | None"
    init_kind: str | None  # "dist" | "const" | None
    init: "Expr | None"


@dataclass(frozen=True)
class ParamDecl(Node):
    items: tuple  # tuple[ParamItem, ...]


@dataclass(frozen=True)
class Assign(Node):
    targets: tuple  # tuple[str, ...]
    target_spans: tuple
    value: Expr


@dataclass(frozen=True)
class Out(Node):
    name: str
    value: "Expr | None"


@dataclass(frozen=True)
class Predict(Node):
    """`out y ~ categorical(logits)` / `out y: [D] ~ normal(mean, std)`: a value the model predicts
    as a distribution (observed in learning, chosen step by step in generation)."""
    name: str
    type: "TypeExpr | None"
    dist: Expr  # the distribution call (checked by lowering)


@dataclass(frozen=True)
class Repeat(Node):
    count: Expr
    body: tuple


# ---- top level --------------------------------------------------------------------

@dataclass(frozen=True)
class SizeParam(Node):
    name: str
    default: "Expr | None"


@dataclass(frozen=True)
class Definition(Node):
    kind: str  # "cell" | "block" | "model"
    name: str
    params: tuple  # tuple[SizeParam, ...]
    body: tuple  # statements


@dataclass(frozen=True)
class Use(Node):
    path: str


@dataclass(frozen=True)
class Module(Node):
    file: str
    uses: tuple
    definitions: tuple


def source_text(node: Node) -> str | None:
    """The source text of a node that sits on one line (`W_hh`, `tanh(c)`, `[I]`), or None."""
    span = node.span
    line = span.source_line()
    if span.end_col <= span.col or span.end_col - 1 > len(line):
        return None
    return line[span.col - 1:span.end_col - 1].strip() or None
