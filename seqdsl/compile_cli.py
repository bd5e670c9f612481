"""`seqdsl compile FILE --backend numpy|torch [--set N=V] [--def NAME] [--dtype D] -o OUT`.

In:  parsed CLI arguments.
Out: a standalone Python module written to OUT (or printed), exit code 0; SpecError → 1.
     OUT is written whole or not at all (a temporary file in its folder, fsynced, renamed
     over it; missing folders are created); a target that is not a regular file is refused.
"""

from __future__ import annotations

from pathlib import Path

from .errors import SpecError


def register(sub) -> None:
    c = sub.add_parser("compile", help="compile a spec to a standalone NumPy or PyTorch module")
    c.add_argument("file")
    c.add_argument("--backend", default="numpy")
    c.add_argument("--def", dest="defn")
    c.add_argument("--set", action="append", metavar="NAME=VALUE")
    c.add_argument("--dtype", default="float32")
    c.add_argument("--no-fused", action="store_true",
                   help="torch: keep standard cells on the generated loop instead of torch's fused kernels")
    c.add_argument("-o", "--output")


def cmd_compile(args) -> int:
    from .backends import generate_source
    from .cli import _sizes
    from .program import load

    program = load(Path(args.file), _sizes(args.set))
    _, defn, code = generate_source(program, args.backend, _sizes(args.set), args.defn, args.dtype,
                                    fused=not args.no_fused)
    if args.output:
        from .backends.runtime import write_file

        out = Path(args.output)
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
