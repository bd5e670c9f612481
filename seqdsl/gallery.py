"""`python -m seqdsl.gallery [FOLDER]`: the PNGs shown in docs/gallery.md (`make gallery`).

In:  the bundled specs.
Out: FOLDER/<name>.<view>.png for RNN, LSTM, GRU, seq2seq, attention seq2seq and
     self-attention, rolled and unrolled.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PICTURES = [
    ("rnn", "rnn.seq", "RNN"),
    ("lstm", "lstm.seq", "LSTM"),
    ("gru", "gru.seq", "GRU"),
    ("seq2seq", "tasks.seq", "Translate"),
    ("attention", "attention.seq", "AttnTranslate"),
    ("self_attention", "transformer.seq", "SelfAttention"),
    ("transformer", "transformer.seq", "TinyTransformer"),
    ("stacked", "stacked.seq", "StackedTagger"),
]


def main(argv=None) -> int:
    from .program import load
    from .render import to_dot
    from .render_cli import write

    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else ROOT / "docs" / "gallery")
    specs = ROOT / "specs"
    for stem, spec, name in PICTURES:
        program = load(specs / spec)
        for view in ("rolled", "unrolled"):
            path = write(to_dot(program, name, view, 4), out / f"{stem}.{view}.png")
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
