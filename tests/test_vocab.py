"""seqdsl.vocab: Vocab (encode, decode, from_texts) and the vocabulary file (save, load, validation)."""

from __future__ import annotations

import json
import os

import pytest

from seqdsl.errors import SpecError
from seqdsl.vocab import END, FORMAT, MAX_VOCAB_FILE, PAD, SPECIALS, START, UNK, Vocab, load, save


def test_constants_are_the_ids_every_vocabulary_reserves():
    assert (PAD, START, END, UNK) == (0, 1, 2, 3)
    assert SPECIALS == ("<pad>", "<s>", "</s>", "<unk>") and FORMAT == "seqdsl-vocab/1"


def test_from_texts_orders_by_frequency_then_alphabetically():
    v = Vocab.from_texts(["b a c a", "c a d"], "words")
    assert v.tokens == list(SPECIALS) + ["a", "c", "b", "d"]
    assert v.index["a"] == 4 and len(v) == 8 and v.tokenize == "words"
    assert Vocab.from_texts(["b a c a", "c a d"], "words", min_count=2).tokens == list(SPECIALS) + ["a", "c"]
    assert Vocab.from_texts(["b a c a", "c a d"], "words", max_size=5).tokens == list(SPECIALS) + ["a"]
    chars = Vocab.from_texts(["abba", "b c"], "chars")
    assert chars.tokens == list(SPECIALS) + ["b", "a", " ", "c"]
    # a special written in the text is the special, not a second token
    assert Vocab.from_texts(["<s> x"], "words").tokens == list(SPECIALS) + ["x"]
    with pytest.raises(SpecError, match="min_count must be a whole number >= 1"):
        Vocab.from_texts(["a"], "words", min_count=0)
    with pytest.raises(SpecError, match="unknown tokenize 'bytes'"):
        Vocab.from_texts(["a"], "bytes")


def test_encode_and_decode():
    words = Vocab.from_texts(["the cat sat"], "words")
    ids = words.encode("the dog  sat")
    assert ids == [words.index["the"], UNK, words.index["sat"]]
    # decode skips padding and the start token and stops at the end token; unknown ids read as <unk>
    assert words.decode([START] + ids + [END, words.index["cat"]]) == "the <unk> sat"
    assert words.decode([PAD, words.index["cat"], 99, -1]) == "cat <unk> <unk>"
    chars = Vocab.from_texts(["hello"], "chars")
    assert chars.decode(chars.encode("hole")) == "hole" and chars.encode("") == []
    assert chars.encode("a b", tokenize="words") == [UNK, UNK]
    assert words.tokens_of([START, words.index["cat"], END, 42]) == ["<s>", "cat", "</s>", "<unk>"]


def test_round_trip(tmp_path):
    vocabs = {"src": Vocab.from_texts(["ein Haus", "é ü 漢字"], "words"),
              "word": Vocab.from_texts(["a house\n", "tab\there"], "chars")}
    path = tmp_path / "vocab.json"
    assert save(path, vocabs) == path
    assert load(path) == vocabs
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == FORMAT and set(data["fields"]) == {"src", "word"}
    assert data["fields"]["src"] == {"tokenize": "words", "tokens": vocabs["src"].tokens}
    assert "漢字" in path.read_text(encoding="utf-8")  # UTF-8, not \u escapes
    assert not [p for p in tmp_path.iterdir() if p.name != "vocab.json"]  # no temporary file left


def test_save_replaces_atomically_and_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "vocab.json"
    old = {"src": Vocab.from_texts(["a b"], "words")}
    save(path, old)
    os.chmod(path, 0o640)
    before = path.read_bytes()

    def broken(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(SpecError, match="cannot write the vocabulary file .*No space left on device"):
        save(path, {"src": Vocab.from_texts(["c d e"], "words")})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["vocab.json"]  # the temporary file is gone
    monkeypatch.undo()
    new = {"src": Vocab.from_texts(["c d e"], "words")}
    save(path, new)
    assert load(path) == new and (path.stat().st_mode & 0o777) == 0o640  # permissions kept


def test_save_refuses_bad_targets_and_values(tmp_path):
    v = {"src": Vocab.from_texts(["a"], "words")}
    with pytest.raises(SpecError, match="it is a folder"):
        save(tmp_path, v)
    with pytest.raises(SpecError, match="the folder .* does not exist"):
        save(tmp_path / "no" / "vocab.json", v)
    with pytest.raises(SpecError, match="NUL byte"):
        save(str(tmp_path / "a\0b"), v)
    with pytest.raises(SpecError, match="at least one field"):
        save(tmp_path / "v.json", {})
    with pytest.raises(SpecError, match="field 'src' is a list, not a Vocab"):
        save(tmp_path / "v.json", {"src": ["a"]})
    with pytest.raises(SpecError, match="field '1x' is not a name"):
        save(tmp_path / "v.json", {"1x": v["src"]})
    assert not list(tmp_path.iterdir())


def _write(tmp_path, data, name="v.json") -> str:
    p = tmp_path / name
    p.write_bytes(data if isinstance(data, bytes) else json.dumps(data, ensure_ascii=False).encode("utf-8"))
    return str(p)


def _file(fields, **top):
    return {"format": FORMAT, "fields": fields, **top}


GOOD = {"tokenize": "words", "tokens": list(SPECIALS) + ["a", "b"]}

BAD_FILES = [
    # (what the file holds, a part of the message)
    (b"", "the file is empty"),
    (b"\xff\xfe{}", "not UTF-8 text"),
    (b"\xef\xbb\xbf{}", "byte order mark"),
    (b"{\"format\": ", "not valid JSON (line 1, column 12"),
    (b"[1, 2]", "holds a JSON list"),
    (b"{\"format\": NaN}", "NaN is not a number JSON allows"),
    (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
    ({"fields": {"src": GOOD}}, "no \"format\" key"),
    (_file({"src": GOOD}, format="seqdsl-vocab/2"), "\"format\": \"seqdsl-vocab/2\""),
    (_file({"src": GOOD}, extra=1), "unknown key 'extra'"),
    (b'{"format": "seqdsl-vocab/1", "format": "seqdsl-vocab/1", "fields": {}}', 'the key "format" appears twice'),
    (_file({}), "at least one field"),
    (_file([GOOD]), "at least one field"),
    (_file({"my field": GOOD}), "field 'my field' is not a name"),
    (_file({"src": ["a"]}), "field 'src' is a JSON list"),
    (_file({"src": {"tokens": GOOD["tokens"]}}), "field 'src' lacks 'tokenize'"),
    (_file({"src": {**GOOD, "size": 3}}), "field 'src' has unknown keys 'size'"),
    (_file({"src": {**GOOD, "tokenize": "bytes"}}), "\"tokenize\": \"bytes\"; expected \"chars\" or \"words\""),
    (_file({"src": {**GOOD, "tokens": "abc"}}), "\"tokens\" is a JSON string"),
    (_file({"src": {**GOOD, "tokens": ["<pad>", "<s>"]}}), "has 2 tokens"),
    (_file({"src": {**GOOD, "tokens": ["<s>", "<pad>", "</s>", "<unk>"]}}), "token 0 is '<s>'; the first four"),
    (_file({"src": {**GOOD, "tokens": list(SPECIALS) + ["a", "b", "a"]}}), "token 6 ('a') is a duplicate of token 4"),
    (_file({"src": {**GOOD, "tokens": list(SPECIALS) + ["a", ""]}}), "token 5 is empty"),
    (_file({"src": {**GOOD, "tokens": list(SPECIALS) + ["a", 7]}}), "token 5 is a int (7), not a string"),
    (_file({"src": {**GOOD, "tokens": list(SPECIALS) + [None]}}), "token 4 is a NoneType"),
    (_file({"src": {**GOOD, "tokens": list(SPECIALS) + ["two words"]}}), "holds whitespace"),
    (_file({"src": {"tokenize": "chars", "tokens": list(SPECIALS) + ["ab"]}}), "is not one character"),
    (b'{"format": "seqdsl-vocab/1", "fields": {"src": {"tokenize": "words", "tokens": '
     b'["<pad>", "<s>", "</s>", "<unk>", "\\ud800"]}}}', "lone surrogate"),
]


@pytest.mark.parametrize("data,message", BAD_FILES, ids=range(len(BAD_FILES)))
def test_load_says_what_is_wrong(tmp_path, data, message):
    path = _write(tmp_path, data)
    with pytest.raises(SpecError) as info:
        load(path)
    text = str(info.value)
    assert text.startswith(f"seqdsl: error: cannot load the vocabulary file {path}: "), text
    assert message in text, text


def test_load_refuses_missing_folders_fifos_and_huge_files(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        load(tmp_path / "missing.json")
    with pytest.raises(SpecError, match="it is a folder"):
        load(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(SpecError, match="not a regular file"):
        load(fifo)  # refused without blocking on the open
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(MAX_VOCAB_FILE + 1)
    with pytest.raises(SpecError, match=f"more than the {MAX_VOCAB_FILE} bytes"):
        load(big)
