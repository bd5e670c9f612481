"""`python -m seqdsl.demo SPECS OUT`: the main job on the bundled specs (what `make demo` runs).

In:  a folder of .seq files and an output folder.
Out: for every definition of every spec: its check summary, a compiled NumPy module and
     (when torch is installed) a PyTorch module, a forward run on example inputs (and a greedy
     generation from a model that predicts), and rolled and unrolled diagrams (SVG; DOT when
     graphviz's `dot` is missing). Then, with torch: the attention seq2seq model learns to reverse
     digit strings for a few epochs (`seqdsl data`, `seqdsl train`: OUT/reverse/, with loss.png),
     and answers a new string with its attention heatmap (`seqdsl generate`: OUT/attention.png).
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
    if failures:
        return 1
    return _learn(specs, out) if "torch" in backends else 0


def _learn(specs: Path, out: Path) -> int:
    """Data, a short training run and a generated answer, through the command line's own commands."""
    import shutil

    from .cli import main as seqdsl

    print("== learning to reverse digit strings: seqdsl data, seqdsl train, seqdsl generate")
    run = out / "reverse"
    out.mkdir(parents=True, exist_ok=True)
    if run.exists():
        shutil.rmtree(run)  # (our own output: a new run each time)
    sizes = ["--set", "E=32", "--set", "H=64"]
    spec = str(specs / "attention.seq")
    steps = [["data", "reverse", "-n", "2000", "--seed", "1", "-o", str(out / "reverse.jsonl")],
             ["data", "reverse", "-n", "200", "--seed", "2", "-o", str(out / "reverse.valid.jsonl")],
             ["train", spec, "--def", "AttnTranslate", "--data", str(out / "reverse.jsonl"), "--valid",
              str(out / "reverse.valid.jsonl"), "--out", str(run), "--epochs", "3", "--lr", "0.005", *sizes],
             ["generate", spec, "--def", "AttnTranslate", "--weights", str(run / "weights.safetensors"),
              "--input", "src=2718281", "--beam", "3", "--plot", str(out / "attention.png"), *sizes]]
    for argv in steps:
        print("$ seqdsl " + " ".join(argv))
        if seqdsl(argv) != 0:
            return 1
    print("the answer above is the reverse of 2718281 after a short training run (1827182 when it is right); "
          f"the attention heatmap is {out / 'attention.png'}, the loss curves {run / 'loss.png'}")
    return 0


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
