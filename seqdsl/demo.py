"""`python -m seqdsl.demo SPECS OUT`: the main job on the bundled specs (what `make demo` runs).

In:  a folder of .seq files and an output folder.
Out: for every definition of every spec: its check summary, a compiled NumPy module and
     (when torch is installed) a PyTorch module, a forward run on example inputs, and
     rolled and unrolled diagrams (SVG; DOT when graphviz's `dot` is missing).
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv=None) -> int:
    from .cli.cmd_render import write
    from .driver import generate_source
    from .errors import SpecError
    from .program import load
    from .render import to_dot

    argv = sys.argv[1:] if argv is None else argv
    specs, out = Path(argv[0] if argv else "specs"), Path(argv[1] if len(argv) > 1 else "out")
    out.mkdir(parents=True, exist_ok=True)
    try:
        import torch  # noqa: F401

        backends = ["numpy", "torch"]
    except ImportError:
        backends = ["numpy"]
    failures = 0
    for f in sorted(specs.glob("*.seq")):
        program = load(f)
        print(f"== {f}")
        for name, d in program.definitions.items():
            if d.file != str(f):
                continue
            count = d.param_count
            print(f"  {d.kind} {name}: {count} parameters")
            for backend in backends:
                _, _, code = generate_source(program, backend, None, name)
                target = out / f"{f.stem}.{name}.{backend}.py"
                target.write_text(code, encoding="utf-8")
            import seqdsl

            exe = seqdsl.compile(program, name=name)
            outputs, _ = exe(**exe.example_inputs(batch=2, steps=5))
            shapes = ", ".join(f"{k}{tuple(v.shape)}" for k, v in outputs.items())
            print(f"    numpy forward on example inputs: {shapes}")
            _generate(exe)
            for view in ("rolled", "unrolled"):
                target = out / f"{f.stem}.{name}.{view}.svg"
                try:
                    write(to_dot(program, name, view, 4), target)
                except SpecError as e:
                    failures += 1
                    print(f"    {e}", file=sys.stderr)
            print(f"    wrote {out}/{f.stem}.{name}.{{numpy,torch}}.py and .{{rolled,unrolled}}.svg")
    return 1 if failures else 0


def _generate(exe) -> None:
    """A model that predicts (`out y ~ ...`): one greedy generation from its example inputs, with
    untrained weights (the text is noise; the steps are the point: each reads the previous choice)."""
    predicted = exe._ns.get("PREDICTED") or {}
    if [p["dist"] for p in predicted.values()] != ["categorical"]:  # (a normal prediction: its mean is the output)
        return
    inputs = {k: v for k, v in exe.example_inputs(batch=2, steps=5).items() if k not in predicted}
    res = exe.generate(**(inputs or {"batch": 2}), max_len=8)
    how = "step by step" if any(p["previous"] for p in predicted.values()) else "in one call"
    print(f"    greedy generation {how} (untrained): tokens{tuple(res.tokens.shape)}, "
          f"lengths {res.lengths.tolist()}, log-probabilities {[round(float(s), 2) for s in res.scores]}")


if __name__ == "__main__":
    raise SystemExit(main())
