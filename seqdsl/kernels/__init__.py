"""Runtime kernels: real, linted, tested Python functions that generated modules carry.

In:  a kernels module of this package (`numpy_kernels.py`, `torch_kernels.py`: top-level
     functions and `_NAME = ...` assignments, every one named with a leading `_`) and the text
     of a generated module.
Out: `Kernels(filename)`: `.names`, every kernel the module defines (generated code never names
     a value after one), and `.source_for(text, always)`, the source of the kernels `text` uses
     and the kernels those use in turn, in file order: a generated standalone module holds only
     the helpers it calls. The interpreter and the tests import the same functions directly.

The kernel modules are read with `ast`, never imported here: generating torch code does not
import torch.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path


class Kernels:
    def __init__(self, filename: str):
        text = Path(__file__).with_name(filename).read_text(encoding="utf-8")
        self.filename = filename
        self.defs: dict = {}  # name -> source, in file order
        for node in ast.parse(text).body:
            if isinstance(node, ast.FunctionDef):
                name = node.name
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                name = node.targets[0].id
            else:
                continue
            if name.startswith("_") and not name.startswith("__"):
                self.defs[name] = ast.get_source_segment(text, node)
        self.names = frozenset(self.defs)

    def _uses(self, text: str) -> set:
        return set(re.findall(r"(?<![\w.])_[A-Za-z]\w*", text)) & self.names

    def used_by(self, text: str, always=()) -> list:
        """The kernels `text` calls, with their own dependencies, in file order."""
        todo, seen = self._uses(text) | set(always), set()
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo |= self._uses(self.defs[name]) - seen
        return [n for n in self.defs if n in seen]

    def source_for(self, text: str, always=()) -> str:
        return "\n\n\n".join(self.defs[n] for n in self.used_by(text, always))
