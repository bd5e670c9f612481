"""`seqdsl train SPEC --def NAME --data FILE [--valid FILE] --out DIR [--epochs N | --steps N] [--batch B]
[--lr X] [--optimizer adam|adamw|sgd] [--clip X] [--schedule cosine|plateau] [--warmup N] [--seed S]
[--resume] [--backend torch|numpy] [--device D] [--dtype float32|float64] [--set K=V ...]
[--tokens chars|words] [--map NAME=KEY ...] [--patience N] [--seq-len N] [--max-len N]
[--checkpoint-every N] [--weight-decay X] [--no-fused] [--quiet]`: train a model (docs/train.md).

In:  parsed CLI arguments.
Out: the run directory DIR (weights, vocab.json, metrics.jsonl, loss.png, checkpoint), a progress
     bar and a summary on stderr, exit code 0. Every mistake (a flag, the spec, the data, a NaN
     loss, a full disk) is a `SpecError`: `seqdsl: error: ...` and exit code 1, never a traceback.
"""

from __future__ import annotations

from ..errors import SpecError
from .common import parse_sizes

HELP = {
    "file": "the .seq file",
    "def": "the model to train (default: the file's last definition)",
    "data": "the training data: .jsonl, .tsv or .txt (docs/data.md)",
    "valid": "held-out data: validation loss and metrics each epoch, early stopping, the best weights",
    "out": "the run directory (created): weights, vocab.json, metrics.jsonl, loss.png, checkpoint",
    "epochs": "passes over the training data (default 10)",
    "steps": "train this many batches instead of whole epochs",
    "batch": "examples per batch (default 32)",
    "lr": "the learning rate (default 0.001)",
    "optimizer": "adam (default), adamw or sgd (momentum 0.9)",
    "clip": "clip the gradients' total norm to X",
    "schedule": "the learning rate after warmup: cosine (down to 0) or plateau (halved when validation stalls)",
    "warmup": "raise the learning rate linearly over the first N steps",
    "seed": "the seed of the initial weights, the batch order and dropout (default 0)",
    "resume": "continue the run in --out exactly where its checkpoint left it",
    "backend": "torch (default) or numpy (the generated backpropagation through time)",
    "device": "torch device, e.g. cpu (default) or cuda",
    "dtype": "float32 (default) or float64",
    "set": "bind a size, e.g. --set H=128 (repeatable); vocabulary sizes come from the data unless set",
    "tokens": "split text into chars (default) or words",
    "map": "read field NAME from the data's key KEY (repeatable)",
    "patience": "stop after N epochs without a better validation loss",
    "seq_len": "for a plain-text file: the length of the chunks it is cut into",
    "max_len": "refuse examples with a sequence longer than N",
    "checkpoint_every": "write the checkpoint every N steps too, not only after every epoch (default 200)",
    "weight_decay": "weight decay (default: 0.01 for adamw, else 0)",
    "no_fused": "torch: run standard cells on the generated loop instead of torch's fused kernels",
    "quiet": "no progress bar and no summary",
}


def register(sub) -> None:
    t = sub.add_parser("train", help="train a model on a data file by gradient descent",
                       description="Train a model's parameters on a data file: progress, metrics, plots, the best "
                                   "weights and checkpoints you can resume exactly (docs/train.md).")
    t.add_argument("file", help=HELP["file"])
    t.add_argument("--def", dest="defn", metavar="NAME", help=HELP["def"])
    t.add_argument("--data", required=True, metavar="FILE", help=HELP["data"])
    t.add_argument("--valid", metavar="FILE", help=HELP["valid"])
    t.add_argument("--out", required=True, metavar="DIR", help=HELP["out"])
    length = t.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, metavar="N", help=HELP["epochs"])
    length.add_argument("--steps", type=int, metavar="N", help=HELP["steps"])
    t.add_argument("--batch", type=int, default=32, metavar="B", help=HELP["batch"])
    t.add_argument("--lr", type=float, default=1e-3, metavar="X", help=HELP["lr"])
    t.add_argument("--optimizer", choices=["adam", "adamw", "sgd"], default="adam", help=HELP["optimizer"])
    t.add_argument("--clip", type=float, metavar="X", help=HELP["clip"])
    t.add_argument("--schedule", choices=["cosine", "plateau", "none"], help=HELP["schedule"])
    t.add_argument("--warmup", type=int, default=0, metavar="N", help=HELP["warmup"])
    t.add_argument("--seed", type=int, default=0, metavar="S", help=HELP["seed"])
    t.add_argument("--resume", action="store_true", help=HELP["resume"])
    t.add_argument("--backend", choices=["torch", "numpy"], default="torch", help=HELP["backend"])
    t.add_argument("--device", default="cpu", metavar="D", help=HELP["device"])
    t.add_argument("--dtype", choices=["float32", "float64"], default="float32", help=HELP["dtype"])
    t.add_argument("--set", action="append", metavar="NAME=VALUE", help=HELP["set"])
    t.add_argument("--tokens", choices=["chars", "words"], default="chars", help=HELP["tokens"])
    t.add_argument("--map", action="append", metavar="NAME=KEY", help=HELP["map"])
    t.add_argument("--patience", type=int, metavar="N", help=HELP["patience"])
    t.add_argument("--seq-len", type=int, metavar="N", help=HELP["seq_len"])
    t.add_argument("--max-len", type=int, metavar="N", help=HELP["max_len"])
    t.add_argument("--checkpoint-every", type=int, metavar="N", help=HELP["checkpoint_every"])
    t.add_argument("--weight-decay", type=float, metavar="X", help=HELP["weight_decay"])
    t.add_argument("--no-fused", action="store_true", help=HELP["no_fused"])
    t.add_argument("-q", "--quiet", action="store_true", help=HELP["quiet"])


def parse_map(items) -> dict:
    """`--map src=question --map word=answer` → {"src": "question", "word": "answer"}."""
    out = {}
    for item in items or []:
        name, sep, key = item.partition("=")
        if not sep or not name.isidentifier() or not key:
            raise SpecError(f"--map expects NAME=KEY (a field of the spec, a key of the data), got '{item}'")
        if name in out:
            raise SpecError(f"--map {name} is given twice")
        out[name] = key
    return out


def cmd_train(args) -> int:
    from ..train.loop import train
    from ..train.options import check_device

    if args.checkpoint_every is not None and args.checkpoint_every < 1:
        raise SpecError(f"--checkpoint-every must be a whole number >= 1, got {args.checkpoint_every}")
    flags = {"epochs": args.epochs, "steps": args.steps, "batch": args.batch, "warmup": args.warmup,
             "seed": args.seed, "patience": args.patience, "seq-len": args.seq_len, "max-len": args.max_len}
    for flag, v in flags.items():
        low = 0 if flag in ("warmup", "seed") else 1
        if v is not None and v < low:
            raise SpecError(f"--{flag} must be a whole number >= {low}, got {v}")
    if args.backend == "torch":
        check_device(args.device, "--device")
    train(args.file, name=args.defn, data=args.data, valid=args.valid, out=args.out, epochs=args.epochs,
          steps=args.steps, batch=args.batch, lr=args.lr, optimizer=args.optimizer, clip=args.clip,
          schedule=args.schedule, warmup=args.warmup, seed=args.seed, resume=args.resume, backend=args.backend,
          device=args.device, sizes=parse_sizes(args.set), tokens=args.tokens, mapping=parse_map(args.map),
          patience=args.patience, seq_len=args.seq_len, max_len=args.max_len, progress=not args.quiet,
          dtype=args.dtype, checkpoint_every=args.checkpoint_every, weight_decay=args.weight_decay,
          fused=not args.no_fused)
    return 0
