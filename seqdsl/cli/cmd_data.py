"""`seqdsl data TASK -n N [--seed S] [-o FILE.jsonl] [--steps T] [--min-len A --max-len B]`: a synthetic
task as a real data file (docs/data.md, "Synthetic tasks").

In:  parsed CLI arguments: the task (copy, reverse, addition, dates, adding, sentiment), the number
     of examples, the seed and the task's options.
Out: FILE.jsonl written whole or not at all (a temporary file in its folder, fsynced, renamed; its
     folder must exist) and `wrote FILE (N examples of TASK, seed S)` on stdout; without -o the
     JSON lines themselves on stdout. Exit status 0; a bad task, flag or path is a `SpecError`:
     exit status 1 with the message, never a traceback.
"""

from __future__ import annotations

import json
import sys

from ..errors import SpecError

# the tasks of seqdsl.data.tasks.TASKS (tests/test_data_tasks.py checks they agree): named here so that
# the CLI starts without importing numpy (the generators are imported when the command runs)
TASK_NAMES = ("copy", "reverse", "addition", "dates", "adding", "sentiment")
HELP = {
    "task": f"the task: {', '.join(TASK_NAMES)}",
    "n": "how many examples (1 to 10,000,000)",
    "seed": "the random seed (default 0): the same seed writes the same file; a held-out set is another seed",
    "output": "the .jsonl file to write (default: print the lines)",
    "steps": "adding: the length of each sequence (default 100)",
    "min_len": "copy, reverse: the fewest digits (default 1); addition: per number (default 1)",
    "max_len": "copy, reverse: the most digits (default 10); addition: per number (default 3)",
}


def register(sub) -> None:
    d = sub.add_parser("data", help="write a synthetic task (copy, reverse, addition, dates, ...) as a .jsonl file",
                       description="Write a synthetic task as a data file whose keys are the field names the "
                                   "shipped specs use (src/word, x/total, words/label), ready for seqdsl train.")
    d.add_argument("task", metavar="TASK", help=HELP["task"])
    d.add_argument("-n", type=int, required=True, metavar="N", help=HELP["n"])
    d.add_argument("--seed", type=int, default=0, metavar="S", help=HELP["seed"])
    d.add_argument("-o", "--output", metavar="FILE.jsonl", help=HELP["output"])
    d.add_argument("--steps", type=int, metavar="T", help=HELP["steps"])
    d.add_argument("--min-len", type=int, metavar="A", help=HELP["min_len"])
    d.add_argument("--max-len", type=int, metavar="B", help=HELP["max_len"])


def cmd_data(args) -> int:
    from ..data.tasks import make_task, write_task

    options = {"steps": args.steps, "min_len": args.min_len, "max_len": args.max_len}
    if args.output is None:
        for example in make_task(args.task, args.n, args.seed, **options):
            sys.stdout.write(json.dumps(example, ensure_ascii=False) + "\n")
        return 0
    if "\0" in args.output:
        raise SpecError(f"cannot write the data file {args.output!r}: not a valid path (it contains a NUL byte)")
    if not args.output.lower().endswith(".jsonl"):
        raise SpecError(f"cannot write the data file {args.output}: seqdsl data writes JSON lines, and the "
                        "format of a data file is its extension", None, "name the file FILE.jsonl")
    path = write_task(args.task, args.n, args.seed, args.output, **options)
    print(f"wrote {path} ({args.n} example{'s' if args.n != 1 else ''} of {args.task}, seed {args.seed})")
    return 0
