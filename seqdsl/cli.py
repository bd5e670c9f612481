"""The command line: `seqdsl check|ir|compile|render ...`.

In:  argv.
Out: text on stdout, diagnostics on stderr, and an exit code: 0 on success, 1 for a
     bad spec, a bad flag or a missing file, 2 for an internal error (a bug in seqdsl:
     an `InternalError` such as a broken IR invariant, or any unexpected exception), which
     is reported as ``internal error: ...`` with the spec file, the pass that broke when it
     is known, and where to report it. Never a Python traceback, unless SEQDSL_DEBUG=1.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import compile_cli, render_cli
from .errors import REPORT_AT, InternalError, SpecError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse exits 2 with usage; we say what is wrong and exit 1
        raise SpecError(f"{message} (see 'seqdsl {self.prog.split()[-1]} --help')"
                        if " " in self.prog else message)


def _sizes(items) -> dict:
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


def _fmt_dims(dims) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"


def cmd_check(args) -> int:
    from .check import param_size, summary
    from .program import load

    for f in args.files:
        args.file = f  # the spec an internal error names
        program = load(Path(f), _sizes(args.set))
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
                rows = [(f"{n} {_fmt_dims(dims)}", str(param_size(dims))) for n, dims in s["params"]]
                left, right = max(len(a) for a, _ in rows), max(len(b) for _, b in rows)
                print("  params:")
                for a, b in rows:
                    print(f"    {a:<{left}}  {b:>{right}}")
            count = d.param_count
            print(f"  parameters: {count if count is not None else 'symbolic (bind sizes with --set)'}")
        print(f"{f}: ok")
    return 0


def _pick(program, name):
    if name is None:
        return program.main
    if name not in program.definitions:
        from .errors import did_you_mean

        raise SpecError(f"no definition named '{name}'", None, did_you_mean(name, program.definitions))
    return program.definitions[name]


def cmd_ir(args) -> int:
    from .ir import to_json, to_text
    from .program import load

    program = load(Path(args.file), _sizes(args.set))
    defs = [_pick(program, args.defn)] if args.defn else [
        d for d in program.definitions.values() if d.file == program.top_file]
    for d in defs:
        print(to_json(d.graph) if args.json else to_text(d.graph))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = _Parser(prog="seqdsl", description="Check, compile and draw sequence models written as .seq files.")
    p.add_argument("--version", action="version", version=f"seqdsl {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    c = sub.add_parser("check", help="check specs and print their interfaces")
    c.add_argument("files", nargs="+")
    c.add_argument("--set", action="append", metavar="NAME=VALUE")
    i = sub.add_parser("ir", help="print the IR")
    i.add_argument("file")
    i.add_argument("--def", dest="defn")
    i.add_argument("--set", action="append", metavar="NAME=VALUE")
    i.add_argument("--json", action="store_true")
    compile_cli.register(sub)
    render_cli.register(sub)
    return p


COMMANDS = {"check": cmd_check, "ir": cmd_ir, "compile": compile_cli.cmd_compile, "render": render_cli.cmd_render}


def _broken_pass(e: BaseException) -> str | None:
    """The pass after (or in) which an internal error happened: `e.pass_name`, else found in the
    traceback (the pass `optimize` was verifying, or a frame inside seqdsl/passes/)."""
    name = getattr(e, "pass_name", None)
    if name:
        return name
    tb, found = e.__traceback__, None
    while tb is not None:
        frame = tb.tb_frame
        path = Path(frame.f_code.co_filename)
        if path.parent.name == "passes" and path.parent.parent.name == "seqdsl":
            if path.stem == "__init__" and callable(frame.f_locals.get("p")):
                found = getattr(frame.f_locals["p"], "__name__", None) or found
            elif path.stem != "__init__":
                found = frame.f_code.co_name if found is None else found
        tb = tb.tb_next
    return found


def report_internal(e: BaseException, spec: str | None) -> None:
    """Print an internal error (a bug in seqdsl) for people: what, where, and where to report it."""
    import traceback

    debug = bool(os.environ.get("SEQDSL_DEBUG"))
    if debug:
        traceback.print_exception(e, file=sys.stderr)
    if isinstance(e, InternalError) and e.span.line > 0:
        lines = [str(e)]  # file:line:col: internal error: ..., the source line and a caret
    else:
        what = e.message if isinstance(e, InternalError) else f"{type(e).__name__}: {e}"
        lines = [f"{spec or 'seqdsl'}: internal error: {what}"]
        if isinstance(e, InternalError) and e.hint:
            lines.append(f"    hint: {e.hint}")
    broken = _broken_pass(e)
    if broken:
        lines.append(f"    the IR was broken by the pass '{broken}'")
    lines.append(f"    this is a bug in seqdsl, not in your spec: please report this at {REPORT_AT}, with "
                 + (f"{spec} and " if spec else "") + "the command you ran"
                 + ("" if debug else " (SEQDSL_DEBUG=1 shows the traceback)"))
    print("\n".join(lines), file=sys.stderr)


def main(argv=None) -> int:
    args = None
    try:
        args = build_parser().parse_args(argv)
        if not args.command:
            build_parser().print_help()
            return 1
        return COMMANDS[args.command](args)
    except SpecError as e:
        print(e, file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # InternalError, or any other bug: never a raw traceback
        report_internal(e, getattr(args, "file", None))
        return 2
