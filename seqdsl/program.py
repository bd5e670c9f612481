"""Load: a spec file (or text) and its imports → a checked `Program`.

In:  a path or `.seq` text, and optional size overrides {name: int}.
Out: `Program` with `.definitions` (name → `Definition`, each exposing `.graph`, its IR
     with sizes bound to the overrides/defaults and symbolic otherwise), `.main` (the
     last definition of the top file), `.warnings`, `.specialize(name, sizes)` for a graph
     with every size concrete (what the backends compile) and `.instance(name, env)` for one
     with sizes bound to possibly symbolic values (what the renderer draws). Imports (`use`)
     resolve relative to the importing file, may not leave the top file's folder, and
     may not form a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import ast as A
from .check import check_graph, summary
from .errors import Span, SpecError, did_you_mean
from .lower import lower, size_env
from .lower_runs import interface_of
from .ops import Op
from .parse import parse
from .sizes import Size

MAX_IMPORTS = 64


@dataclass
class Definition:
    name: str
    kind: str
    ast: A.Definition
    file: str
    graph: object
    sizes: dict
    program: "Program" = field(repr=False, default=None)

    def summary(self) -> dict:
        return summary(self.graph)

    @property
    def param_count(self) -> int | None:
        """Number of trained values, including those of the cells and blocks it runs."""
        return self.program.param_count(self.graph)


class Program:
    def __init__(self, asts: dict, top_file: str, order: list):
        self.asts = asts  # name -> (ast.Definition, file)
        self.top_file = top_file
        self.order = order
        self.definitions: dict = {}
        self.warnings: list = []
        self._interfaces: dict = {}
        self._instances: dict = {}

    # interfaces (types in the callee's own size names) for runs in models
    def resolve(self, name: str, span):
        if name == "*":
            return list(self.asts)
        if name not in self.asts:
            return None
        if name not in self._interfaces:
            defn = self.asts[name][0]
            self._interfaces[name] = None  # guards against recursive use
            g = lower(defn, size_env(defn, None, symbolic=True), self.resolve)
            self._interfaces[name] = interface_of(defn, g)
        iface = self._interfaces[name]
        if iface is None:
            raise SpecError(f"{name} runs itself", span)
        return iface

    def instance(self, name: str, env: dict):
        """The IR of `name` with its sizes bound to `env` (Sizes, possibly symbolic, or flags)."""
        key = (name, tuple(sorted((k, str(v)) for k, v in env.items())))
        if key not in self._instances:
            self._instances[key] = lower(self.asts[name][0], dict(env), self.resolve)
        return self._instances[key]

    def specialize(self, name: str, sizes: dict | None = None):
        """The IR of `name` with sizes bound (given, else defaults); all must be concrete."""
        if name not in self.asts:
            raise SpecError(f"no definition named '{name}'", None, did_you_mean(name, self.asts))
        defn = self.asts[name][0]
        env = size_env(defn, sizes)
        for p, v in env.items():
            if isinstance(v, Size) and v.value is None:
                raise SpecError(f"size '{p}' of {name} has no value", defn.span,
                                f"pass it with --set {p}=... (or sizes={{'{p}': ...}})")
        return self.instance(name, env)

    def param_count(self, g) -> int | None:
        total = 0
        for _, d in g.nodes(data=True):
            if d["op"] == Op.PARAM:
                dims = d["type"].concrete_dims()
                if dims is None:
                    return None
                c = 1
                for x in dims:
                    c *= x
                total += c
            elif d["op"] == Op.CALL:
                sub = self.param_count(self.instance(d["callee"], d["sizes"]))
                if sub is None:
                    return None
                total += sub
        return total

    @property
    def main(self) -> Definition:
        top = [d for d in self.definitions.values() if d.file == self.top_file]
        return (top or list(self.definitions.values()))[-1]


def _read(path: Path, span: Span | None) -> bytes:
    try:
        if path.stat().st_size > (1 << 20):
            raise SpecError(f"{path}: file is larger than 1 MiB", span)
        return path.read_bytes()
    except FileNotFoundError:
        raise SpecError(f"no such file: {path}", span) from None
    except IsADirectoryError:
        raise SpecError(f"{path} is a folder, not a .seq file", span) from None
    except OSError as e:
        raise SpecError(f"cannot read {path}: {e.strerror}", span) from None


def _gather(text_or_bytes, file: str, folder: Path, root: Path, asts: dict, order: list, stack: list,
            done: set) -> None:
    module = parse(text_or_bytes, file)
    for use in module.uses:
        target = (folder / use.path).resolve()
        if not use.path.endswith(".seq"):
            raise SpecError(f"imports name a .seq file, got \"{use.path}\"", use.span)
        if root not in target.parents and target.parent != root:
            raise SpecError(f"import \"{use.path}\" leaves the spec's folder {root}", use.span,
                            "imports may only name files in the same folder or below")
        if str(target) in stack:
            chain = " -> ".join(Path(s).name for s in stack[stack.index(str(target)):] + [str(target)])
            raise SpecError(f"import cycle: {chain}", use.span)
        if str(target) in done:
            continue
        if len(done) >= MAX_IMPORTS:
            raise SpecError(f"more than {MAX_IMPORTS} imported files", use.span)
        data = _read(target, use.span)
        stack.append(str(target))
        _gather(data, str(Path(file).parent / use.path) if not file.startswith("<") else use.path,
                target.parent, root, asts, order, stack, done)
        stack.pop()
        done.add(str(target))
    for d in module.definitions:
        if d.name in asts:
            other = asts[d.name][0]
            raise SpecError(f"'{d.name}' is defined twice (also at {other.span})", d.span)
        asts[d.name] = (d, file)
        order.append(d.name)


def load(source, sizes: dict | None = None) -> Program:
    """Parse, lower and check a spec (a path, or `.seq` text) and everything it imports."""
    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source and "{" not in source):
        path = Path(source)
        data = _read(path, None)
        file, folder = str(source), path.resolve().parent
    else:
        data, file, folder = source, "<string>", Path.cwd().resolve()
    asts: dict = {}
    order: list = []
    stack = [str(Path(folder) / Path(file).name)] if not file.startswith("<") else []
    _gather(data, file, folder, folder, asts, order, stack, set())
    program = Program(asts, file, order)
    sizes = dict(sizes or {})
    for k, v in sizes.items():
        if isinstance(v, bool) or not isinstance(v, int):
            raise SpecError(f"size {k} must be an integer, got {v!r}")
    known = {p.name for d, _ in asts.values() for p in d.params}
    for k in sizes:
        if k not in known:
            raise SpecError(f"no definition has a size '{k}'", None, did_you_mean(k, known))
    for name in order:
        defn, f = asts[name]
        own = {k: v for k, v in sizes.items() if any(p.name == k for p in defn.params)}
        env = size_env(defn, own)
        g = lower(defn, env, program.resolve)
        program.definitions[name] = Definition(name, defn.kind, defn, f, g, env, program)
        program.warnings.extend(check_graph(g))
    return program
