"""`seqdsl render FILE [--def NAME] [--view rolled|unrolled|both] [--steps N] [--detail cell|gates]
[--shapes] [-o OUT]`, and `write(dot_text, path)`.

In:  parsed CLI arguments / DOT text and a path.
Out: .dot, .svg, .png or .pdf files (the format follows the suffix). With no -o, both views
     of the file's main definition go to out/<file>.<def>.<view>.svg. A missing `dot`
     program is one line with the install hint; the .dot file is still written. Files are
     written whole or not at all (see `backends.runtime.write_file`).
"""

from __future__ import annotations

from pathlib import Path

from .errors import SpecError

FORMATS = {".dot", ".gv", ".svg", ".png", ".pdf"}
MAX_STEPS = 1000


def _save(path: Path, data: bytes) -> None:
    from .backends.runtime import write_file

    write_file(path, lambda f: f.write(data), "the drawing")


def write(dot_text: str, path: Path) -> Path:
    """Write DOT text, or what `dot` makes of it, to `path` (by suffix)."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise SpecError(f"cannot render to '{path.name}': use one of {', '.join(sorted(FORMATS))}")
    try:
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True, exist_ok=True)
        if suffix in (".dot", ".gv"):
            _save(path, dot_text.encode("utf-8"))
            return path
        import graphviz

        try:
            data = graphviz.Source(dot_text).pipe(format=suffix[1:])
        except graphviz.ExecutableNotFound:
            dot_path = path.with_suffix(".dot")
            _save(dot_path, dot_text.encode("utf-8"))
            raise SpecError(f"graphviz's 'dot' program is not installed; wrote {dot_path} instead", None,
                            "install it with 'apt-get install graphviz' (Debian/Ubuntu) "
                            "or 'brew install graphviz' (macOS)") from None
        except graphviz.CalledProcessError as e:
            raise SpecError(f"dot failed: {e.stderr.decode(errors='replace').strip()}") from None
        _save(path, data)
        return path
    except OSError as e:
        raise SpecError(f"cannot write {path}: {e.strerror}") from None


def register(sub) -> None:
    r = sub.add_parser("render", help="draw a spec, rolled up and unrolled over time")
    r.add_argument("file")
    r.add_argument("--def", dest="defn")
    r.add_argument("--view", choices=["rolled", "unrolled", "both"], default=None)
    r.add_argument("--steps", type=int, default=4)
    r.add_argument("--detail", choices=["cell", "gates"], default=None)
    r.add_argument("--shapes", action="store_true")
    r.add_argument("--set", action="append", metavar="NAME=VALUE")
    r.add_argument("-o", "--output")


def cmd_render(args) -> int:
    from .cli import _pick, _sizes
    from .program import load
    from .render import to_dot

    if not (1 <= args.steps <= MAX_STEPS):
        raise SpecError(f"--steps must be between 1 and {MAX_STEPS}, got {args.steps}")
    program = load(Path(args.file), _sizes(args.set))
    defn = _pick(program, args.defn)
    view = args.view or ("both" if not args.output else "rolled")
    views = ["rolled", "unrolled"] if view == "both" else [view]
    if args.output:
        out = Path(args.output)
        if out.suffix.lower() not in FORMATS:
            raise SpecError(f"cannot render to '{out.name}': use one of {', '.join(sorted(FORMATS))}")
        targets = [out] if len(views) == 1 else [out.with_name(f"{out.stem}.{v}{out.suffix}") for v in views]
    else:
        targets = [Path("out") / f"{Path(args.file).stem}.{defn.name}.{v}.svg" for v in views]
    for v, target in zip(views, targets):
        text = to_dot(program, defn.name, v, args.steps, args.detail, args.shapes)
        print(f"wrote {write(text, target)}")
    return 0
