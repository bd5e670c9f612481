"""`seqdsl render FILE [--def NAME] [--view rolled|unrolled|both] [--steps N] [--detail cell|gates]
[--shapes] [--set NAME=VALUE] [-o OUT]`, and `write(dot_text, path)`.

In:  parsed CLI arguments / DOT text and a path.
Out: .dot, .svg, .png or .pdf files (the format follows the suffix), one line per file on
     stdout: `wrote PATH (DEF, VIEW view)`. With no -o, both views of every definition in
     FILE (or of --def) go to out/<file>.<def>.<view>.svg. With -o, one definition (--def,
     needed when FILE has several) goes to OUT: one view (--view, rolled when it is not
     given, which the output says), or with --view both OUT.rolled.EXT and
     OUT.unrolled.EXT. A missing `dot` program is one line with the install hint; the
     .dot file is still written. Files are written whole or not at all (see
     `files.write_file`).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import SpecError
from .common import parse_sizes, pick

FORMATS = {".dot", ".gv", ".svg", ".png", ".pdf"}
MAX_STEPS = 1000


def _save(path: Path, data: bytes) -> None:
    from ..files import write_file

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


HELP = {
    "file": "the .seq file to draw",
    "def": "draw only this definition (default: every cell, block and model in FILE; -o needs one, so "
           "--def is required with -o when FILE has several)",
    "view": "rolled: each cell once, with its state looping back; unrolled: over --steps time steps; both. "
            "Default: both, or rolled with -o (-o writes one file; --view both writes OUT.rolled.EXT and "
            "OUT.unrolled.EXT)",
    "steps": "time steps in the unrolled view, 1 to 1000 (default 4; above 8 the middle ones are drawn as '…')",
    "detail": "cell (default): a cell as one box, the textbook picture; gates: a cell's equations, every gate "
              "and operation (rolled, or in each unrolled step). Models and blocks are drawn one way only",
    "shapes": "label the edges with the inferred shapes ([H], seq[E])",
    "set": "bind a size, e.g. --set H=128 (repeatable)",
    "output": "the file to write, its format by suffix: .svg, .png, .pdf, .dot or .gv (default: "
              "out/<file>.<def>.<view>.svg for every definition and both views)",
}


def register(sub) -> None:
    r = sub.add_parser("render", help="draw a spec, rolled up and unrolled over time",
                       description="Draw the cells, blocks and models of a .seq file as the textbook diagrams: "
                                   "rolled (a cell as one box with its state looping back) and unrolled over "
                                   "time. Colours: input red, short-term memory h blue, long-term memory c "
                                   "purple, output green, context vector C yellow.")
    r.add_argument("file", help=HELP["file"])
    r.add_argument("--def", dest="defn", metavar="NAME", help=HELP["def"])
    r.add_argument("--view", choices=["rolled", "unrolled", "both"], default=None, help=HELP["view"])
    r.add_argument("--steps", type=int, default=4, metavar="N", help=HELP["steps"])
    r.add_argument("--detail", choices=["cell", "gates"], default=None, help=HELP["detail"])
    r.add_argument("--shapes", action="store_true", help=HELP["shapes"])
    r.add_argument("--set", action="append", metavar="NAME=VALUE", help=HELP["set"])
    r.add_argument("-o", "--output", metavar="OUT", help=HELP["output"])


def _drawn(program, name):
    """The definitions to draw: --def's, or every one in the file itself (not its imports)."""
    if name is not None:
        return [pick(program, name)]
    main = program.main  # a file that defines nothing is an error that says so
    return [d for d in program.definitions.values() if d.file == program.top_file] or [main]


def _what(defn, view: str, detail: str | None) -> str:
    if view == "rolled" and defn.kind == "cell":
        how = "its equations" if detail == "gates" else "one box, its states looping back"
        return f"{defn.kind} {defn.name}, rolled view: {how}"
    return f"{defn.kind} {defn.name}, {view} view" + (", gates" if detail == "gates" and defn.kind == "cell" else "")


def cmd_render(args) -> int:
    from ..program import load
    from ..render import to_dot

    if not (1 <= args.steps <= MAX_STEPS):
        raise SpecError(f"--steps must be between 1 and {MAX_STEPS}, got {args.steps}")
    program = load(Path(args.file), parse_sizes(args.set))
    defs = _drawn(program, args.defn)
    if args.output and len(defs) > 1:
        names = ", ".join(d.name for d in defs)
        raise SpecError(f"{args.file} has {len(defs)} definitions ({names}) and -o writes one drawing", None,
                        f"choose one with --def (e.g. --def {defs[-1].name}), or leave out -o to draw them all "
                        "into out/")
    view = args.view or ("both" if not args.output else "rolled")
    views = ["rolled", "unrolled"] if view == "both" else [view]
    if args.output:
        out = Path(args.output)
        if out.suffix.lower() not in FORMATS:
            raise SpecError(f"cannot render to '{out.name}': use one of {', '.join(sorted(FORMATS))}")
        jobs = [(defs[0], v, out if len(views) == 1 else out.with_name(f"{out.stem}.{v}{out.suffix}"))
                for v in views]
    else:
        jobs = [(d, v, Path("out") / f"{Path(args.file).stem}.{d.name}.{v}.svg") for d in defs for v in views]
    for defn, v, target in jobs:
        # --detail is about cells: drawing a whole file, its models and blocks are drawn their one way
        detail = args.detail if (args.defn or defn.kind == "cell") else None
        text = to_dot(program, defn.name, v, args.steps, detail, args.shapes)
        print(f"wrote {write(text, target)} ({_what(defn, v, detail)})")
    if args.output and not args.view:
        print("(-o writes one view, the rolled one: --view unrolled draws the other, --view both writes both)")
    return 0
