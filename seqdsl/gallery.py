"""`python -m seqdsl.gallery [FOLDER]`: the PNGs shown in docs/gallery.md (`make gallery`).

In:  the bundled specs.
Out: FOLDER/<name>.<view>.png for RNN, LSTM, GRU, seq2seq, attention seq2seq,
     self-attention, a transformer and stacked runs, rolled and unrolled; the LSTM's and
     GRU's equations (<name>.rolled-gates.png); the classifier unrolled.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOTH = (("rolled", None), ("unrolled", None))
PICTURES = [
    ("rnn", "rnn.seq", "RNN", BOTH),
    ("lstm", "lstm.seq", "LSTM", BOTH + (("rolled", "gates"),)),
    ("gru", "gru.seq", "GRU", BOTH + (("rolled", "gates"),)),
    ("sentiment", "tasks.seq", "Sentiment", (("unrolled", None),)),
    ("seq2seq", "tasks.seq", "Translate", BOTH),
    ("attention", "attention.seq", "AttnTranslate", BOTH),
    ("self_attention", "transformer.seq", "SelfAttention", BOTH),
    ("transformer", "transformer.seq", "TinyTransformer", BOTH),
    ("stacked", "stacked.seq", "StackedTagger", BOTH),
]


def main(argv=None) -> int:
    from .cli.cmd_render import write
    from .program import load
    from .render import to_dot

    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else ROOT / "docs" / "gallery")
    specs = ROOT / "specs"
    for stem, spec, name, views in PICTURES:
        program = load(specs / spec)
        for view, detail in views:
            suffix = f"{view}-{detail}" if detail else view
            path = write(to_dot(program, name, view, 4, detail), out / f"{stem}.{suffix}.png")
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
