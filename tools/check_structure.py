"""Structure rules for seqdsl/ that ruff does not check (run by `make lint`).

In:  the sources under seqdsl/ (read with `ast`, never imported).
Out: one line per violation and exit status 1, or nothing and 0. The rules:
  - no import cycles between modules (imports inside functions count: a lazy import is still
    a dependency);
  - no module imports a private name (`_x`) of another module, except the kernels of
    seqdsl/kernels/, whose leading underscore is the generated code's namespace;
  - no function longer than MAX_LINES lines (generated files excluded).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "seqdsl"
MAX_LINES = 60
GENERATED = {"seqdsl._seq_parser"}
PRIVATE_OK = ("seqdsl.kernels.",)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(mod: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def scan(modules: dict):
    """(import edges module → module, private imports, long functions)."""
    edges, private, long_ = {}, [], []
    for mod, path in modules.items():
        if mod in GENERATED:  # Lark's standalone code: its own relative imports are not ours
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        deps = edges.setdefault(mod, set())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name in modules)
            elif isinstance(node, ast.ImportFrom):
                target = resolve(mod, path.name == "__init__.py", node)
                for a in node.names:
                    sub = f"{target}.{a.name}"
                    if sub in modules:  # `from . import x`: the module x
                        deps.add(sub)
                    elif target in modules:
                        deps.add(target)
                        if a.name.startswith("_") and not a.name.startswith("__") and target != mod \
                                and not target.startswith(PRIVATE_OK):
                            private.append(f"{path.relative_to(ROOT)}:{node.lineno}: imports private "
                                           f"'{a.name}' from {target}")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_LINES:
                    long_.append(f"{path.relative_to(ROOT)}:{node.lineno}: function '{node.name}' has {n} lines "
                                 f"(the limit is {MAX_LINES})")
        deps.discard(mod)
    return edges, private, long_


def cycles(edges: dict) -> list:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def main() -> int:
    modules = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}
    edges, private, long_ = scan(modules)
    problems = [f"import cycle: {' ↔ '.join(c)}" for c in cycles(edges)] + private + long_
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} structure problem(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
