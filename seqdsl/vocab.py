"""Token ids every vocabulary reserves, and the vocabulary file.

In:  lists of token strings, or a vocabulary file (JSON) written by `save`.
Out: `Vocab` (token ↔ id, encode/decode text), `save(path, vocabs)`, `load(path)`.

Every vocabulary starts with the same four tokens, so a spec can rely on their ids:
`<pad>` = 0 (padding), `<s>` = 1 (the start token: what `y[t-1]` reads at the first step),
`</s>` = 2 (the end token: generation stops there), `<unk>` = 3 (a token not in the vocabulary).
The file format is documented in docs/api.md ("Vocabulary files").
"""

from __future__ import annotations

PAD, START, END, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")
FORMAT = "seqdsl-vocab/1"
MAX_VOCAB_FILE = 64 << 20
