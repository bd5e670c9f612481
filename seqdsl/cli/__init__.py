"""The command line: `seqdsl check|ir|compile|render|generate|data|train ...`.

In:  argv.
Out: text on stdout, diagnostics on stderr, and an exit code: 0 on success, 1 for a
     bad spec, a bad flag or a missing file, 2 for an internal error (a bug in seqdsl:
     an `InternalError` such as a broken IR invariant, or any unexpected exception), which
     is reported as ``internal error: ...`` with the spec file, the pass that broke when it
     is known, and where to report it. Never a Python traceback, unless SEQDSL_DEBUG=1.

One module per command (`cmd_check` for check and ir, `cmd_compile`, `cmd_render`, `cmd_generate`, `cmd_data`,
`cmd_train`), each with
`register(subparsers)` and its `cmd_*` functions; what they share is in `common`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import REPORT_AT, InternalError, SpecError
from . import cmd_check, cmd_compile, cmd_data, cmd_generate, cmd_render, cmd_train
from .common import Parser


def build_parser() -> Parser:
    from .. import __version__

    p = Parser(prog="seqdsl", description="Check, compile and draw sequence models written as .seq files.")
    p.add_argument("--version", action="version", version=f"seqdsl {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=Parser)
    for command in (cmd_check, cmd_compile, cmd_render, cmd_generate, cmd_data, cmd_train):
        command.register(sub)
    return p


COMMANDS = {"check": cmd_check.cmd_check, "ir": cmd_check.cmd_ir, "compile": cmd_compile.cmd_compile,
            "render": cmd_render.cmd_render, "generate": cmd_generate.cmd_generate, "data": cmd_data.cmd_data,
            "train": cmd_train.cmd_train}


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
