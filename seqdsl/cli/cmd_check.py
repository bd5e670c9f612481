"""`seqdsl check FILE...` (interfaces, parameters and counts) and `seqdsl ir FILE` (the IR).

In:  parsed CLI arguments.
Out: the summary of every definition in each file (or the IR as text or JSON) on stdout,
     warnings on stderr; exit code 0. Loading never imports torch.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .common import fmt_dims, parse_sizes, pick


def register(sub) -> None:
    c = sub.add_parser("check", help="check specs and print their interfaces")
    c.add_argument("files", nargs="+")
    c.add_argument("--set", action="append", metavar="NAME=VALUE")
    i = sub.add_parser("ir", help="print the IR")
    i.add_argument("file")
    i.add_argument("--def", dest="defn")
    i.add_argument("--set", action="append", metavar="NAME=VALUE")
    i.add_argument("--json", action="store_true")


def cmd_check(args) -> int:
    from ..check import param_size, summary
    from ..program import load

    for f in args.files:
        args.file = f  # the spec an internal error names
        program = load(Path(f), parse_sizes(args.set))
        for w in program.warnings:
            print(w, file=sys.stderr)
        for name, d in program.definitions.items():
            if d.file != program.top_file:
                continue
            s = summary(d.graph, program)
            sizes = ", ".join(f"{k}={v}" for k, v in d.sizes.items())
            print(f"{d.kind} {name}({sizes})  [{f}:{d.ast.span.line}]")
            for key in ("inputs", "outputs", "states"):
                if s[key]:
                    print(f"  {key + ':':9}" + ", ".join(f"{n}: {t}" for n, t in s[key]))
            for inst, callee in s["runs"]:
                print(f"  run:     {inst} = {callee}")
            if s["params"]:  # every parameter it trains, those of its runs by instance path
                rows = [(f"{n} {fmt_dims(dims)}", str(param_size(dims))) for n, dims in s["params"]]
                left, right = max(len(a) for a, _ in rows), max(len(b) for _, b in rows)
                print("  params:")
                for a, b in rows:
                    print(f"    {a:<{left}}  {b:>{right}}")
            count = d.param_count
            print(f"  parameters: {count if count is not None else 'symbolic (bind sizes with --set)'}")
        print(f"{f}: ok")
    return 0


def cmd_ir(args) -> int:
    from ..ir import to_json, to_text
    from ..program import load

    program = load(Path(args.file), parse_sizes(args.set))
    defs = [pick(program, args.defn)] if args.defn else [
        d for d in program.definitions.values() if d.file == program.top_file]
    for d in defs:
        print(to_json(d.graph) if args.json else to_text(d.graph))
    return 0
