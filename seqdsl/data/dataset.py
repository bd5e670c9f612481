"""A training (or validation) data file read by field name into examples of ids and numbers.

In:  a data file (.jsonl, .tsv or .txt; docs/data.md), the model's fields (`spec_fields(exe)`), how
     text is tokenised ("chars" or "words"), an optional mapping {field name: file key}, optional
     vocabularies to reuse ({name: Vocab}, the training set's for a validation set), an optional
     maximum sequence length, and for .txt the chunk length.
Out: `load_dataset(...)` → `Dataset`: `.fields`, `.vocabs` (a Vocab for every token and label
     field), `.examples` (one dict per example, name → np.ndarray: int64 ids for tokens, a 0-d int64
     class id for a label, float64 numbers for vectors and values), `.lines` (each example's line
     in the file), `len(ds)`, `ds.vocab_size(name)`, `ds.lengths(name)`. Every problem with the
     file is a `SpecError` naming the file, the line and the field; never imports torch.

Token fields the model predicts and reads at t-1 (`word[t-1]`) get the end token `</s>` appended
(the model must learn to stop). Vocabularies are built from this file unless given: tokens with the
four specials (`Vocab.from_texts`), labels without (`tokenize="labels"`: class ids 0..K-1 in sorted
order). Ids given as whole numbers are used as they are; their vocabulary names each id by its
number ("4", "5", ...), so it can be saved and reused like any other.
"""

from __future__ import annotations

import numpy as np

from ..errors import SpecError, did_you_mean
from ..vocab import END, SPECIALS, Vocab
from .fields import Field
from .reader import Reader
from .source import at, data_path, open_data, read_lines
from .values import Bad

TOKENS = ("chars", "words")
FORMATS = (".jsonl", ".tsv", ".txt")


class Dataset:
    """The examples of one data file, encoded (see the module docstring)."""

    def __init__(self, path, fields: dict, vocabs: dict, examples: list, lines: list):
        self.path, self.fields, self.vocabs, self.examples, self.lines = path, fields, vocabs, examples, lines

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict:
        return self.examples[i]

    def __repr__(self) -> str:
        return f"Dataset({self.path}: {len(self)} examples of {', '.join(self.fields)})"

    def vocab_size(self, name: str) -> int:
        """The number of ids of field `name`'s vocabulary (the specials included): the size a spec's
        `V` (`embed(src, V, E)`, `categorical(linear(h, V))`) is bound to."""
        if name not in self.vocabs:
            if name in self.fields:
                raise SpecError(f"field '{name}' holds {self.fields[name].describe()}: it has no vocabulary")
            raise SpecError(f"no field '{name}' (the fields are {', '.join(self.fields)})", None,
                            did_you_mean(name, self.fields))
        return len(self.vocabs[name])

    def lengths(self, name: str) -> np.ndarray:
        """(N,) int64: each example's length of the sequence field `name`."""
        if name not in self.fields or not self.fields[name].seq:
            raise SpecError(f"'{name}' is not a sequence field (those are "
                            f"{', '.join(n for n, f in self.fields.items() if f.seq) or 'none'})")
        return np.fromiter((len(ex[name]) for ex in self.examples), dtype=np.int64, count=len(self.examples))


def load_dataset(path, fields: dict, tokens: str = "chars", mapping: dict | None = None,
                 vocabs: dict | None = None, max_len: int | None = None, seq_len: int | None = None) -> Dataset:
    """The examples of the data file `path` for `fields` (see the module docstring); the format is
    the file's extension."""
    _check_args(fields, tokens, vocabs, max_len, seq_len)
    path = data_path(path)
    fmt = path.suffix.lower()
    if fmt not in FORMATS:
        open_data(path)[1].close()  # a missing file or a folder says so first
        raise at(path, 0, f"cannot read the data file: unknown format '{path.suffix or path.name}'; a data file "
                 "is .jsonl (one JSON object per line), .tsv (a header naming the fields, tab-separated) or "
                 ".txt (plain text)")
    vocabs = dict(vocabs or {})
    if fmt == ".txt":
        return _read_txt(path, fields, tokens, vocabs, max_len, seq_len)
    if seq_len is not None:
        raise at(path, 0, f"seq_len (--seq-len) cuts plain text (.txt) into chunks; this is a {fmt} file of "
                 "examples", hint="leave it out")
    reader = Reader(path, fmt, fields, _keys(fields, mapping))
    path, f = open_data(path)
    with f:
        records = reader.read(f)
    if not records:
        raise at(path, 0, "the file holds no examples" + (" (only a header)" if reader.columns else ""))
    given = set(vocabs)
    for name, field in fields.items():
        if field.ids and name not in vocabs:
            vocabs[name] = _build(field, reader.modes[name][0], (r.values[name][1] for r in records), tokens)
    examples = [_encode(reader, r, vocabs, given, max_len) for r in records]
    return Dataset(path, fields, {n: v for n, v in vocabs.items() if n in fields and fields[n].ids},
                   examples, [r.line for r in records])


def _check_args(fields, tokens, vocabs, max_len, seq_len) -> None:
    if not isinstance(fields, dict) or not fields or not all(isinstance(f, Field) for f in fields.values()):
        raise SpecError("load_dataset needs the model's fields: a non-empty dict name → Field (spec_fields(exe))")
    if tokens not in TOKENS:
        raise SpecError(f"unknown tokens {tokens!r}: text is tokenised by character ('chars') or by "
                        "whitespace ('words')")
    for what, v in (("max_len", max_len), ("seq_len", seq_len)):
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise SpecError(f"{what} must be a whole number >= 1, got {v!r}")
    for name, v in (vocabs or {}).items():
        if name not in fields:
            continue  # a vocabulary file may hold fields this model does not use
        field = fields[name]
        if not isinstance(v, Vocab) or not field.ids:
            raise SpecError(f"the vocabulary given for field '{name}' is "
                            f"{'a ' + type(v).__name__ if not isinstance(v, Vocab) else 'for a field of tokens'}"
                            f", but '{name}' holds {field.describe()}")
        if (v.tokenize == "labels") != (field.kind == "label"):
            raise SpecError(f"the vocabulary given for field '{name}' is a {v.tokenize} vocabulary, but '{name}' "
                            f"holds {'a label' if field.kind == 'label' else 'tokens'}")


def _keys(fields: dict, mapping) -> dict:
    """{field name: file key}: the name itself unless `mapping` says otherwise."""
    keys = {name: name for name in fields}
    if mapping is None:
        return keys
    if not isinstance(mapping, dict):
        raise SpecError("mapping must be a dict {field name: key in the file}")
    for name, key in mapping.items():
        if name not in fields:
            raise SpecError(f"cannot read '{name}' from the key '{key}': the model has no field '{name}' (its "
                            f"fields are {', '.join(fields)})", None, did_you_mean(str(name), fields))
        if not isinstance(key, str) or not key or key != key.strip() or "\t" in key:
            raise SpecError(f"cannot read '{name}' from the key {key!r}: a key is non-empty text without "
                            "tabs or surrounding spaces")
        keys[name] = key
    seen: dict = {}
    for name, key in keys.items():
        if key in seen:
            raise SpecError(f"the fields '{seen[key]}' and '{name}' would both be read from the key '{key}'")
        seen[key] = name
    return keys


def _build(field: Field, mode: str, values, tokens: str) -> Vocab:
    """The vocabulary of a token or label field, from its values in the file (texts or id arrays)."""
    if mode == "text":
        return Vocab.from_texts(values, tokens if field.kind == "tokens" else "labels")
    top = max((int(v.max()) for v in values if v.size), default=-1)
    if field.kind == "label":
        return Vocab([str(i) for i in range(top + 1)], "labels")
    return Vocab(list(SPECIALS) + [str(i) for i in range(len(SPECIALS), top + 1)], "words")


def _encode(reader: Reader, record, vocabs: dict, given: set, max_len) -> dict:
    example = {}
    for name, (mode, payload) in record.values.items():
        field = reader.fields[name]
        try:
            example[name] = _array(field, mode, payload, vocabs.get(name), name in given)
        except Bad as e:
            raise reader.error(record, name, str(e)) from None
        n = len(example[name]) if field.seq else 0
        if max_len is not None and n > max_len:
            unit = "tokens" if field.kind == "tokens" else "steps"
            end = " (the end token included)" if field.kind == "tokens" and field.previous else ""
            raise reader.error(record, name, f"has {n} {unit}{end}, more than the maximum length {max_len}",
                               "leave longer examples out of the file, or raise the maximum length (--max-len)")
    return example


def _array(field: Field, mode: str, payload, vocab: Vocab | None, given: bool) -> np.ndarray:
    """The ids or numbers of one value: text encoded with `vocab`, ids checked against it (when it
    was given rather than built from these very ids), the end token appended where it belongs."""
    if mode == "numbers":
        return payload
    if mode == "text":
        try:
            encoded = vocab.encode(payload)
        except SpecError as e:  # a label the given vocabulary does not have
            raise Bad(e.message) from None
        if field.kind == "label":
            return np.asarray(encoded[0], dtype=np.int64)
        if field.previous:
            encoded.append(END)
        ids = np.asarray(encoded, dtype=np.int64)
    else:
        ids = payload
        if given and ids.size and int(ids.max()) >= len(vocab):
            i = int(np.argmax(ids >= len(vocab)))
            where = f" (item {i})" if field.seq else ""
            raise Bad(f"id {int(ids.reshape(-1)[i])}{where} is out of range: the vocabulary of '{field.name}' has "
                      f"{len(vocab)} ids (0 to {len(vocab) - 1})")
        if field.kind == "label":
            return ids
    if field.previous and (not ids.size or ids[-1] != END):
        ids = np.append(ids, np.int64(END))
    if not ids.size:
        raise Bad("holds no tokens" + (" (text of whitespace only, split into words)"
                                       if mode == "text" and vocab.tokenize == "words" and payload else ""))
    return ids


def _read_txt(path, fields: dict, tokens: str, vocabs: dict, max_len, seq_len) -> Dataset:
    """Plain text for a model whose only field is a token sequence: the whole file, tokenised, cut
    into chunks of `seq_len` tokens (the last one may be shorter); no end token is appended."""
    (name, field), = list(fields.items())[:1]
    if len(fields) != 1 or field.kind != "tokens":
        have = ", ".join(f"{n} ({f.describe()})" for n, f in fields.items())
        raise at(path, 0, f"plain text (.txt) is for a model whose only field is a token sequence (like "
                 f"CharLM's char); this model has {have}", hint="write the data as .jsonl or .tsv, one "
                 "example per line")
    if seq_len is None:
        raise at(path, 0, "plain text (.txt) is cut into examples of seq_len tokens: give seq_len (--seq-len)")
    vocab = vocabs.get(name)
    if vocab is None:
        path, f = open_data(path)
        with f:
            vocab = Vocab.from_texts((_text(t) for _, _, t in read_lines(path, f, keep_ends=True)), tokens)
    parts, starts, lines, n = [], [], [], 0
    path, f = open_data(path)
    with f:
        for line, _offset, text in read_lines(path, f, keep_ends=True):
            ids = vocab.encode(_text(text))
            if ids:
                parts.append(np.asarray(ids, dtype=np.int64))
                starts.append(n)
                lines.append(line)
                n += len(ids)
    if not n:
        raise at(path, 0, "the file holds no examples (no tokens)")
    if max_len is not None and min(seq_len, n) > max_len:
        raise at(path, lines[0], f"field '{name}': chunks of seq_len = {seq_len} tokens are longer than the "
                 f"maximum length {max_len}", hint="give a seq_len (--seq-len) no larger than the maximum length")
    flat = np.concatenate(parts)
    cuts = range(0, n, seq_len)
    at_line = np.asarray(lines)[np.searchsorted(np.asarray(starts), np.fromiter(cuts, np.int64), side="right") - 1]
    return Dataset(path, fields, {name: vocab}, [{name: flat[c:c + seq_len]} for c in cuts],
                   [int(x) for x in at_line])


def _text(text: str) -> str:
    """A line of plain text with its line break as "\\n" ("\\r\\n" from Windows included)."""
    return text[:-2] + "\n" if text.endswith("\r\n") else text
