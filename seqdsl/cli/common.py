"""What the commands share: the argument parser that reports instead of exiting, --set, --def.

In:  argv pieces (`--set NAME=VALUE` items, a `--def` name) and a loaded `Program`.
Out: `Parser` (argparse whose usage errors are `SpecError`s: exit 1 with the message),
     `parse_sizes(items)` → {name: int}, `pick(program, name)` → the definition asked for
     (the file's main one when None), `fmt_dims(dims)` → "[H, I]".
"""

from __future__ import annotations

import argparse

from ..errors import SpecError, did_you_mean


class Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse exits 2 with usage; we say what is wrong and exit 1
        raise SpecError(f"{message} (see 'seqdsl {self.prog.split()[-1]} --help')"
                        if " " in self.prog else message)


def parse_sizes(items) -> dict:
    """`--set H=64 --set E=32` → {"H": 64, "E": 32}, each a whole number in range."""
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            raise SpecError(f"--set expects NAME=VALUE, got '{item}'")
        try:
            v = int(value)
        except ValueError:
            raise SpecError(f"--set {name}: '{value}' is not a whole number") from None
        if not (0 < v <= 1 << 31):
            raise SpecError(f"--set {name}={v}: sizes must be between 1 and {1 << 31}")
        out[name] = v
    return out


def fmt_dims(dims) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"


def pick(program, name):
    if name is None:
        return program.main
    if name not in program.definitions:
        raise SpecError(f"no definition named '{name}'", None, did_you_mean(name, program.definitions))
    return program.definitions[name]
