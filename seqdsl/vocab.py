"""Token ids every vocabulary reserves, and the vocabulary file.

In:  lists of token strings, texts to count tokens in, or a vocabulary file (JSON) written by `save`.
Out: `Vocab` (token ↔ id, `encode`/`decode` text, `Vocab.from_texts`), `save(path, vocabs)` and
     `load(path)` → {field: Vocab}; every problem with a file is a `SpecError` naming it.

Every vocabulary starts with the same four tokens, so a spec can rely on their ids:
`<pad>` = 0 (padding), `<s>` = 1 (the start token: what `y[t-1]` reads at the first step),
`</s>` = 2 (the end token: generation stops there), `<unk>` = 3 (a token not in the vocabulary).

A label vocabulary (`tokenize="labels"`, for a categorical output predicted once per sample: a
class) is the exception: it has no specials, each whole string is one token, and its ids are the
class ids 0 to K-1, the labels in sorted order (`Vocab.from_texts(labels, "labels")`; whole numbers
written as text first, by value, then the others alphabetically: "-1", "1", "neg", "pos").

A vocabulary file holds one vocabulary per field, a field being an input or a predicted output of
a spec (`src`, `word`): ``{"format": "seqdsl-vocab/1", "fields": {"src": {"tokenize": "words",
"tokens": ["<pad>", "<s>", "</s>", "<unk>", ...]}, ...}}``, UTF-8 JSON; a label field has
``{"tokenize": "labels", "tokens": ["neg", "pos"]}``. The format is documented in docs/generate.md
("Vocabulary files"), the label kind in docs/data.md.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections import Counter
from pathlib import Path

from .errors import SpecError
from .files import checked_path, strict_json, write_file

PAD, START, END, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")
FORMAT = "seqdsl-vocab/1"
MAX_VOCAB_FILE = 64 << 20
TOKENIZE = ("chars", "words", "labels")


def split(text: str, tokenize: str) -> list:
    """The tokens of `text`: its characters ("chars"), its whitespace-separated words ("words"), or the
    whole text as one token ("labels")."""
    if tokenize == "chars":
        return list(text)
    if tokenize == "words":
        return text.split()
    if tokenize == "labels":
        return [text]
    raise SpecError(f"unknown tokenize {tokenize!r}: choose one of {', '.join(TOKENIZE)}")


def token_problem(i: int, token, tokenize: str) -> str | None:
    """What is wrong with token number `i` of a vocabulary, or None."""
    if not isinstance(token, str):
        return f"token {i} is a {type(token).__name__} ({json.dumps(token)[:40]}), not a string"
    if not token:
        return f"token {i} is empty"
    try:
        token.encode("utf-8")
    except UnicodeEncodeError:
        return f"token {i} ({token!r}) is not valid UTF-8 (it holds a lone surrogate)"
    if tokenize == "labels":
        return None
    if i < len(SPECIALS):
        return None if token == SPECIALS[i] else (
            f"token {i} is {token!r}; the first four tokens must be {', '.join(SPECIALS)} (ids 0 to 3)")
    if tokenize == "chars" and len(token) != 1:
        return f"token {i} ({token!r}) is not one character, and this vocabulary splits text into characters"
    if tokenize == "words" and any(c.isspace() for c in token):
        return f"token {i} ({token!r}) holds whitespace, and this vocabulary splits text at whitespace"
    return None


def label_key(label: str) -> tuple:
    """The order of a label vocabulary: whole numbers written as text first, by value ("-1" < "2" <
    "10"), then the other labels alphabetically."""
    if not isinstance(label, str):
        return (2, 0, "")  # not a label at all: Vocab says so
    s = label.strip()
    if re.fullmatch(r"[+-]?[0-9]+", s):
        return (0, int(s), label)
    return (1, 0, label)


class Vocab:
    """A vocabulary: `tokens[id]` and `index[token]`, the four specials first; `tokenize` says how text
    is split into tokens ("chars" or "words"). A label vocabulary (`tokenize="labels"`) has no specials:
    its tokens are the labels, its ids the class ids 0 to K-1."""

    def __init__(self, tokens, tokenize: str = "chars"):
        if tokenize not in TOKENIZE:
            raise SpecError(f"unknown tokenize {tokenize!r}: choose one of {', '.join(TOKENIZE)}")
        tokens = list(tokens)
        if tokenize == "labels" and not tokens:
            raise SpecError("a label vocabulary has at least one label; this one has none")
        if tokenize != "labels" and len(tokens) < len(SPECIALS):
            raise SpecError(f"a vocabulary starts with the four tokens {', '.join(SPECIALS)}; this one has "
                            f"{len(tokens)} token{'s' if len(tokens) != 1 else ''}")
        index: dict = {}
        for i, t in enumerate(tokens):
            problem = token_problem(i, t, tokenize)
            if problem:
                raise SpecError(problem)
            if t in index:
                raise SpecError(f"token {i} ({t!r}) is a duplicate of token {index[t]}")
            index[t] = i
        self.tokens, self.index, self.tokenize = tokens, index, tokenize

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocab) and (self.tokens, self.tokenize) == (other.tokens, other.tokenize)

    def __repr__(self) -> str:
        return f"Vocab({len(self.tokens)} tokens, tokenize={self.tokenize!r})"

    def encode(self, text: str, tokenize: str | None = None) -> list:
        """The ids of `text`'s tokens (split as `tokenize` says, by default as the vocabulary does);
        a token not in the vocabulary is `UNK`. No start or end token is added. A label vocabulary
        has no `UNK`: `text` is one label, and one it does not have is a `SpecError`."""
        if self.tokenize == "labels":
            if text not in self.index:
                shown = ", ".join(self.tokens[:20]) + (", ..." if len(self.tokens) > 20 else "")
                raise SpecError(f"unknown label {text!r} (the labels are {shown})")
            return [self.index[text]]
        return [self.index.get(t, UNK) for t in split(text, tokenize or self.tokenize)]

    def decode(self, ids) -> str:
        """The text of `ids`, up to the first `END`: `PAD` and `START` are skipped, an id outside the
        vocabulary reads as `<unk>`; characters are joined as they are, words with one space. A label
        vocabulary has no specials: each id is its label, joined with one space."""
        if self.tokenize == "labels":
            return " ".join(self.tokens_of(ids))
        out = []
        for i in ids:
            i = int(i)
            if i == END:
                break
            if i in (PAD, START):
                continue
            out.append(self.tokens[i] if 0 <= i < len(self.tokens) else SPECIALS[UNK])
        return ("" if self.tokenize == "chars" else " ").join(out)

    def tokens_of(self, ids) -> list:
        """The token of each id, specials included (an id outside the vocabulary reads as `<unk>`)."""
        return [self.tokens[int(i)] if 0 <= int(i) < len(self.tokens) else SPECIALS[UNK] for i in ids]

    @classmethod
    def from_texts(cls, texts, tokenize: str = "chars", min_count: int = 1, max_size: int | None = None) -> Vocab:
        """The vocabulary of `texts`: the four specials, then every token seen at least `min_count`
        times, the most frequent first (ties alphabetically); `max_size` caps the number of tokens,
        the specials included (the rarest are left out). With `tokenize="labels"` each text is one label
        and the vocabulary is the distinct labels in `label_key` order, without specials (and without
        `min_count` or `max_size`)."""
        if tokenize == "labels":
            if min_count != 1 or max_size is not None:
                raise SpecError("a label vocabulary keeps every label: min_count and max_size do not apply")
            return cls(sorted(set([texts] if isinstance(texts, str) else texts), key=label_key), "labels")
        if not isinstance(min_count, int) or isinstance(min_count, bool) or min_count < 1:
            raise SpecError(f"min_count must be a whole number >= 1, got {min_count!r}")
        if max_size is not None and (not isinstance(max_size, int) or max_size < len(SPECIALS)):
            raise SpecError(f"max_size must be a whole number >= {len(SPECIALS)} (the specials), got {max_size!r}")
        if isinstance(texts, str):
            texts = [texts]
        counts: Counter = Counter()
        for text in texts:
            counts.update(split(text, tokenize))
        kept = sorted((t for t, n in counts.items() if n >= min_count and t not in SPECIALS),
                      key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[:max_size - len(SPECIALS)]
        return cls(list(SPECIALS) + kept, tokenize)


# ---- the file ----------------------------------------------------------------------------
def to_json(vocabs: dict) -> str:
    """The text of a vocabulary file holding `vocabs` (field → Vocab)."""
    if not isinstance(vocabs, dict) or not vocabs:
        raise SpecError("a vocabulary file holds at least one field: pass a dict field → Vocab")
    fields = {}
    for name, v in vocabs.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise SpecError(f"vocabulary field {name!r} is not a name (a spec's input or predicted output)")
        if not isinstance(v, Vocab):
            raise SpecError(f"vocabulary field '{name}' is a {type(v).__name__}, not a Vocab")
        fields[name] = {"tokenize": v.tokenize, "tokens": list(v.tokens)}
    return json.dumps({"format": FORMAT, "fields": fields}, ensure_ascii=False, indent=1) + "\n"


def save(path, vocabs: dict) -> Path:
    """Write `vocabs` (field → Vocab) to the vocabulary file `path` whole or not at all: a temporary file
    in the same folder, fsynced, then renamed over `path` (whose permissions are kept)."""
    data = to_json(vocabs).encode("utf-8")
    if len(data) > MAX_VOCAB_FILE:
        raise SpecError(f"cannot write the vocabulary file {path}: it would hold {len(data)} bytes, more than "
                        f"the {MAX_VOCAB_FILE} bytes a vocabulary file may hold")
    path = _path(path, "write the vocabulary file")
    return write_file(path, lambda f: f.write(data), "the vocabulary file")


def _path(path, verb: str) -> Path:
    return checked_path(path, verb)


def read_text(path) -> str:
    """The text of the vocabulary file `path`: a regular file of at most MAX_VOCAB_FILE bytes of strict
    UTF-8 (never blocks on a FIFO: non-regular files are refused before and after opening)."""
    path = _path(path, "load the vocabulary file")
    what = f"cannot load the vocabulary file {path}"
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise SpecError(f"{what}: it is {'a folder' if stat.S_ISDIR(st.st_mode) else 'not a regular file'}")
        if st.st_size > MAX_VOCAB_FILE:
            raise SpecError(f"{what}: it holds {st.st_size} bytes, more than the {MAX_VOCAB_FILE} bytes a "
                            "vocabulary file may hold")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise SpecError(f"{what}: it is not a regular file")
            data = f.read(MAX_VOCAB_FILE + 1)
    except SpecError:
        raise
    except FileNotFoundError:
        raise SpecError(f"{what}: no such file") from None
    except OSError as e:
        raise SpecError(f"{what}: {e.strerror or e}") from None
    if len(data) > MAX_VOCAB_FILE:
        raise SpecError(f"{what}: it holds more than the {MAX_VOCAB_FILE} bytes a vocabulary file may hold")
    if not data.strip():
        raise SpecError(f"{what}: the file is empty")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(f"{what}: not UTF-8 text (byte {e.start} is {data[e.start:e.start + 1]!r})") from None


def parse(text: str, path="<vocabulary>") -> dict:
    """field → Vocab from the text of a vocabulary file; a `SpecError` naming `path` says what is wrong."""
    what = f"cannot load the vocabulary file {path}"
    if text.startswith("\ufeff"):
        raise SpecError(f"{what}: it starts with a byte order mark; write plain UTF-8")
    try:
        data = strict_json(text)
    except json.JSONDecodeError as e:
        raise SpecError(f"{what}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except (ValueError, RecursionError) as e:
        raise SpecError(f"{what}: not a vocabulary file ({'nested too deeply' if isinstance(e, RecursionError) else e})"
                        ) from None
    if not isinstance(data, dict):
        raise SpecError(f"{what}: the file holds a JSON {_json_kind(data)}, not an object with \"format\" and "
                        "\"fields\"")
    if data.get("format") != FORMAT:
        got = "no \"format\" key" if "format" not in data else f"\"format\": {json.dumps(data['format'])[:60]}"
        raise SpecError(f"{what}: not a seqdsl vocabulary file ({got}; expected \"format\": \"{FORMAT}\")")
    extra = sorted(set(data) - {"format", "fields"})
    if extra:
        raise SpecError(f"{what}: unknown key{'s' if len(extra) > 1 else ''} {', '.join(map(repr, extra))} "
                        "(a vocabulary file has \"format\" and \"fields\")")
    fields = data.get("fields")
    if not isinstance(fields, dict) or not fields:
        raise SpecError(f"{what}: \"fields\" must be an object with at least one field (field name → "
                        "{\"tokenize\": ..., \"tokens\": [...]})")
    return {name: _field(what, name, value) for name, value in fields.items()}


def _field(what: str, name: str, value) -> Vocab:
    if not name.isidentifier():
        raise SpecError(f"{what}: field {name!r} is not a name (a spec's input or predicted output)")
    if not isinstance(value, dict):
        raise SpecError(f"{what}: field '{name}' is a JSON {_json_kind(value)}, not an object with "
                        "\"tokenize\" and \"tokens\"")
    extra = sorted(set(value) - {"tokenize", "tokens"})
    missing = [k for k in ("tokenize", "tokens") if k not in value]
    if extra or missing:
        raise SpecError(f"{what}: field '{name}' " + "; ".join(
            ([f"lacks {', '.join(map(repr, missing))}"] if missing else [])
            + ([f"has unknown keys {', '.join(map(repr, extra))}"] if extra else []))
            + " (a field has \"tokenize\" and \"tokens\")")
    if value["tokenize"] not in TOKENIZE:
        raise SpecError(f"{what}: field '{name}' has \"tokenize\": {json.dumps(value['tokenize'])[:60]}; "
                        f"expected \"chars\" or \"words\" (or \"labels\", a label vocabulary)")
    if not isinstance(value["tokens"], list):
        raise SpecError(f"{what}: field '{name}': \"tokens\" is a JSON {_json_kind(value['tokens'])}, not a list "
                        "of strings")
    try:
        return Vocab(value["tokens"], value["tokenize"])
    except SpecError as e:
        raise SpecError(f"{what}: field '{name}': {e.message}") from None


def _json_kind(v) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(v), "number")


def load(path) -> dict:
    """field → Vocab from the vocabulary file `path` (as `save` writes it), checked strictly."""
    return parse(read_text(path), _path(path, "load the vocabulary file"))
