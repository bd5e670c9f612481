"""`seqdsl compile FILE --backend numpy|torch [--set N=V] [--def NAME] [--dtype D] [--lengths] [--training] -o OUT`.

`--lengths` writes the module that takes lengths (its `forward` wants the hidden 0/1 masks its
`MASKS` names among its inputs), `--training` the module in which dropout drops (its `DROPOUTS`
name the masks to draw); the executables of `seqdsl.compile` make both themselves (docs/api.md).

In:  parsed CLI arguments.
Out: a standalone Python module written to OUT (or printed), exit code 0; SpecError → 1.
     OUT is written whole or not at all (a temporary file in its folder, fsynced, renamed
     over it; missing folders are created); a target that is not a regular file is refused.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import SpecError
from .common import parse_sizes


def register(sub) -> None:
    c = sub.add_parser("compile", help="compile a spec to a standalone NumPy or PyTorch module")
    c.add_argument("file")
    c.add_argument("--backend", default="numpy")
    c.add_argument("--def", dest="defn")
    c.add_argument("--set", action="append", metavar="NAME=VALUE")
    c.add_argument("--dtype", default="float32")
    c.add_argument("--no-fused", action="store_true",
                   help="torch: keep standard cells on the generated loop instead of torch's fused kernels")
    c.add_argument("--lengths", action="store_true",
                   help="the module for padded batches with lengths: its MASKS are hidden inputs to pass")
    c.add_argument("--training", action="store_true",
                   help="the module in which dropout drops: its DROPOUTS are masks to draw and pass")
    c.add_argument("-o", "--output")


def cmd_compile(args) -> int:
    from ..driver import generate
    from ..program import load

    if args.output is not None:
        _check_output(args.output)
    program = load(Path(args.file), parse_sizes(args.set))
    _, defn, _, code = generate(program, args.backend, parse_sizes(args.set), args.defn, args.dtype,
                                fused=not args.no_fused, masked=args.lengths, training=args.training)
    if args.output:
        from ..files import write_file

        out = Path(args.output)
        _check_not_source(out, [args.file] + [f for _, f in program.asts.values()])
        try:
            if not out.parent.is_dir():
                out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SpecError(f"cannot write {out}: {e.strerror}") from None
        data = code.encode("utf-8")
        write_file(out, lambda f: f.write(data), "the module")
        print(f"wrote {out} ({defn.kind} {defn.name}, {args.backend})")
    else:
        print(code, end="")
    return 0


def _check_output(output: str) -> None:
    """-o must be a usable path that is not a spec: NUL bytes and `.seq` targets are refused."""
    if "\0" in output:
        raise SpecError(f"cannot write the module {output!r}: not a valid path (it contains a NUL byte)")
    if output.lower().endswith(".seq"):
        raise SpecError(f"refusing to write the generated module over {output}: it is a .seq file", None,
                        "name an output file ending in .py")


def _check_not_source(out: Path, sources: list) -> None:
    """Refuse to write over the spec or any file it imports."""
    import os

    try:
        target = os.path.realpath(out)
    except (OSError, ValueError):
        return
    for src in sources:
        if str(src).startswith("<"):
            continue
        try:
            same = os.path.realpath(src) == target or (out.exists() and os.path.samefile(src, out))
        except (OSError, ValueError):
            same = False
        if same:
            raise SpecError(f"refusing to write the generated module over {out}: it is the spec "
                            f"{src} (or a file it imports)", None, "name an output file ending in .py")
