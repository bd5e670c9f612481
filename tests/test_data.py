"""seqdsl.data: the fields of a spec, reading .jsonl/.tsv/.txt by field name, vocabularies (with the
specials, the end token appended, labels without specials) and bucketed, padded batches."""

from __future__ import annotations

import json

import numpy as np
import pytest

import seqdsl
from seqdsl.data import Batches, Field, load_dataset, spec_fields, write_task
from seqdsl.errors import SpecError
from seqdsl.vocab import END, PAD, SPECIALS, UNK, Vocab, load, save


@pytest.fixture(scope="module")
def fields():
    out = {n: spec_fields(seqdsl.compile("specs/tasks.seq", name=n))
           for n in ("Translate", "CharLM", "Sentiment", "Caption")}
    out |= {n: spec_fields(seqdsl.compile("specs/adding.seq", name=n)) for n in ("AddingLSTM", "AddingRNN")}
    return out


def _jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def test_spec_fields(fields):
    assert fields["Translate"] == {
        "src": Field("src", "input", "tokens", True, (), 300),
        "word": Field("word", "observed", "tokens", True, (), 400, previous=True)}
    assert fields["CharLM"] == {"char": Field("char", "observed", "tokens", True, (), 96, previous=True)}
    assert fields["Sentiment"] == {"words": Field("words", "input", "tokens", True, (), 1000),
                                   "label": Field("label", "observed", "label", False, (), 2)}
    assert fields["Caption"]["image"] == Field("image", "input", "vector", False, (128,), None)
    for name in ("AddingLSTM", "AddingRNN"):
        assert fields[name] == {"x": Field("x", "input", "vectors", True, (2,), None),
                                "total": Field("total", "observed", "vector", False, (1,), None)}
    assert fields["Translate"]["src"].describe() == "seq<int>" and fields["AddingLSTM"]["x"].describe() == "seq[2]"


def test_spec_fields_are_the_same_on_the_torch_backend(fields):
    pytest.importorskip("torch")
    assert spec_fields(seqdsl.compile("specs/adding.seq", name="AddingRNN", backend="torch")) == fields["AddingRNN"]


def test_jsonl_by_character_with_specials_and_the_end_token(tmp_path, fields):
    ds = load_dataset(_jsonl(tmp_path / "t.jsonl", [{"src": "abca", "word": "xy"}, {"word": "y", "src": "b"}]),
                      fields["Translate"])
    assert len(ds) == 2 and ds.lines == [1, 2] and set(ds.vocabs) == {"src", "word"}
    assert ds.vocabs["src"] == Vocab(list(SPECIALS) + ["a", "b", "c"], "chars")  # by count, then alphabetically
    assert ds.vocabs["word"] == Vocab(list(SPECIALS) + ["y", "x"], "chars")
    assert ds.vocab_size("src") == 7 and ds.vocab_size("word") == 6
    ex = ds.examples[0]
    assert ex["src"].dtype == np.int64 and ex["src"].tolist() == [4, 5, 6, 4]  # an input: no end token
    assert ex["word"].tolist() == [5, 4, END]  # predicted and read at t-1: the end token appended
    assert ds.examples[1]["word"].tolist() == [4, END] and ds.lengths("word").tolist() == [3, 2]


def test_words_ids_and_a_validation_set_reusing_the_vocabularies(tmp_path, fields):
    train = load_dataset(_jsonl(tmp_path / "a.jsonl", [{"src": "the cat  sat", "word": "le chat"}]),
                         fields["Translate"], tokens="words")
    assert train.vocabs["src"].tokenize == "words" and train.examples[0]["src"].tolist() == [6, 4, 5]
    valid = load_dataset(_jsonl(tmp_path / "b.jsonl", [{"src": "the dog", "word": "le chien"}]),
                         fields["Translate"], vocabs=train.vocabs)
    assert valid.vocabs == train.vocabs
    assert valid.examples[0]["src"].tolist() == [train.vocabs["src"].index["the"], UNK]
    assert valid.examples[0]["word"].tolist() == [train.vocabs["word"].index["le"], UNK, END]
    # lists of whole numbers are ids, used as they are; their vocabulary names each id by its number
    ids = load_dataset(_jsonl(tmp_path / "c.jsonl", [{"src": [7, 4, 9], "word": [5, 2]}, {"src": [4], "word": [6]}]),
                       fields["Translate"])
    assert ids.examples[0]["src"].tolist() == [7, 4, 9] and ids.examples[0]["word"].tolist() == [5, END]
    assert ids.examples[1]["word"].tolist() == [6, END]  # an end token given is not doubled
    assert ids.vocab_size("src") == 10 and ids.vocabs["src"].tokens[4:] == ["4", "5", "6", "7", "8", "9"]
    assert ids.vocabs["src"].encode("7 4 9") == [7, 4, 9]


def test_mapping_reads_a_field_from_another_key(tmp_path, fields):
    path = _jsonl(tmp_path / "m.jsonl", [{"source": "ab", "target": "ba"}])
    ds = load_dataset(path, fields["Translate"], mapping={"src": "source", "word": "target"})
    assert ds.examples[0]["src"].tolist() == [4, 5] and len(ds.examples[0]["word"]) == 3
    with pytest.raises(SpecError) as info:
        load_dataset(path, fields["Translate"], mapping={"sorce": "source"})
    assert str(info.value) == ("seqdsl: error: cannot read 'sorce' from the key 'source': the model has no field "
                               "'sorce' (its fields are src, word)\n    hint: did you mean 'src'?")
    with pytest.raises(SpecError, match="the fields 'src' and 'word' would both be read from the key 'source'"):
        load_dataset(path, fields["Translate"], mapping={"src": "source", "word": "source"})


def test_labels_have_no_specials_and_sorted_class_ids(tmp_path, fields):
    rows = [{"words": "a fine film", "label": "pos"}, {"words": "a dull film", "label": "neg"},
            {"words": "fine", "label": "pos"}]
    ds = load_dataset(_jsonl(tmp_path / "s.jsonl", rows), fields["Sentiment"], tokens="words")
    assert ds.vocabs["label"] == Vocab(["neg", "pos"], "labels") and ds.vocab_size("label") == 2
    assert [int(ex["label"]) for ex in ds.examples] == [1, 0, 1] and ds.examples[0]["label"].shape == ()
    assert ds.vocabs["words"].tokens == list(SPECIALS) + ["a", "film", "fine", "dull"]  # by count, then a-z
    assert ds.examples[2]["words"].tolist() == [6]
    save(tmp_path / "vocab.json", ds.vocabs)  # the vocabulary file keeps the label kind
    assert load(tmp_path / "vocab.json") == ds.vocabs
    assert json.loads((tmp_path / "vocab.json").read_text())["fields"]["label"] == {
        "tokenize": "labels", "tokens": ["neg", "pos"]}
    ints = load_dataset(_jsonl(tmp_path / "i.jsonl", [{"words": "x", "label": 1}, {"words": "y", "label": 0}]),
                        fields["Sentiment"])
    assert [int(ex["label"]) for ex in ints.examples] == [1, 0] and ints.vocabs["label"].tokens == ["0", "1"]
    with pytest.raises(SpecError) as info:
        load_dataset(_jsonl(tmp_path / "v.jsonl", [{"words": "x", "label": "meh"}]), fields["Sentiment"],
                     vocabs=ds.vocabs)
    assert str(info.value).startswith(f"{tmp_path / 'v.jsonl'}:1:16: error: field 'label': unknown label 'meh' "
                                      "(the labels are neg, pos)")


def test_label_vocabularies():
    v = Vocab.from_texts(["pos", "neg", "10", "-1", "2", "pos"], "labels")
    assert v.tokens == ["-1", "2", "10", "neg", "pos"] and v.encode("10") == [2] and v.decode([3, 4]) == "neg pos"
    assert Vocab(["only one"], "labels").tokens == ["only one"]  # any text, spaces included
    with pytest.raises(SpecError, match="unknown label 'x'"):
        v.encode("x")
    with pytest.raises(SpecError, match="at least one label"):
        Vocab([], "labels")
    with pytest.raises(SpecError, match="min_count and max_size do not apply"):
        Vocab.from_texts(["a"], "labels", max_size=5)
    assert Vocab.from_texts(["a b"], "words").tokenize == "words"  # the other kinds are unchanged


def test_tsv(tmp_path, fields):
    p = tmp_path / "t.tsv"
    p.write_text("word\tsrc\r\nxy\tab c\r\n\r\nz\t \n", encoding="utf-8")
    ds = load_dataset(p, fields["Translate"])
    assert ds.lines == [2, 4] and ds.vocabs["src"].tokens[4:] == [" ", "a", "b", "c"]
    assert ds.examples[0]["src"].tolist() == [5, 6, 4, 7] and ds.examples[1]["word"].tolist() == [6, END]
    a = tmp_path / "a.tsv"
    a.write_text("x\ttotal\n0.5 0; 0.25 1;0 1\t0.75\n1 1\t2\n", encoding="utf-8")
    ds = load_dataset(a, fields["AddingLSTM"])
    assert ds.examples[0]["x"].tolist() == [[0.5, 0], [0.25, 1], [0, 1]] and ds.examples[0]["x"].dtype == np.float64
    assert ds.examples[0]["total"].tolist() == [0.75] and ds.examples[1]["x"].shape == (1, 2) and ds.vocabs == {}
    s = tmp_path / "s.tsv"
    s.write_text("words\tlabel\ngood film\tpos\nbad\tneg\n", encoding="utf-8")
    ds = load_dataset(s, fields["Sentiment"], tokens="words")
    assert ds.vocabs["label"].tokens == ["neg", "pos"] and [int(e["label"]) for e in ds.examples] == [1, 0]


def test_vectors_in_jsonl(tmp_path, fields):
    rows = [{"x": [[0.5, 0], [0.25, 1]], "total": [0.75]}, {"x": [[1, 1]], "total": [1e-3]}]
    ds = load_dataset(_jsonl(tmp_path / "a.jsonl", rows), fields["AddingRNN"])
    assert ds.examples[0]["x"].shape == (2, 2) and ds.examples[1]["total"].tolist() == [0.001]
    cap = load_dataset(_jsonl(tmp_path / "c.jsonl", [{"image": [0.5] * 128, "word": "hi"}]), fields["Caption"])
    assert cap.examples[0]["image"].shape == (128,) and cap.examples[0]["word"].tolist() == [4, 5, END]
    with pytest.raises(SpecError, match=r"field 'x' holds seq\[2\]: it has no vocabulary"):
        ds.vocab_size("x")


def test_plain_text_is_cut_into_chunks(tmp_path, fields):
    p = tmp_path / "t.txt"
    p.write_bytes("\ufeffhello\r\nworld\n\nbye".encode("utf-8"))
    ds = load_dataset(p, fields["CharLM"], seq_len=4)
    text = "hello\nworld\n\nbye"  # the byte order mark skipped, line breaks as "\n"
    v = ds.vocabs["char"]
    assert [v.decode(ex["char"]) for ex in ds.examples] == [text[i:i + 4] for i in range(0, len(text), 4)]
    assert len(ds) == 4 and ds.lines == [1, 1, 2, 3] and len(ds.examples[-1]["char"]) == 4
    assert END not in np.concatenate([ex["char"] for ex in ds.examples])  # a stream: no end tokens
    words = load_dataset(p, fields["CharLM"], tokens="words", seq_len=2)
    assert [words.vocabs["char"].decode(ex["char"]) for ex in words.examples] == ["hello world", "bye"]
    again = load_dataset(p, fields["CharLM"], seq_len=100, vocabs=ds.vocabs)
    assert again.vocabs == ds.vocabs and len(again) == 1


def _dataset(tmp_path, fields, n=200, seed=0):
    path = tmp_path / "rev.jsonl"
    write_task("reverse", n, seed, path)
    return load_dataset(path, fields["Translate"])


def test_batches_are_padded_with_lengths(tmp_path, fields):
    ds = _dataset(tmp_path, fields, n=50)
    batches = Batches(ds, 8, seed=3)
    assert len(batches) == 7  # 6 full batches and one of 2
    seen = []
    for b in batches.epoch(0):
        assert set(b.inputs) == {"src", "word"} and set(b.lengths) == {"src", "word"}
        assert b.size == len(b.indices) and b.tokens == int(b.lengths["word"].sum())
        for name in ("src", "word"):
            x, n = b.inputs[name], b.lengths[name]
            assert x.dtype == np.int64 and n.dtype == np.int64 and x.shape == (b.size, n.max())
            for row, i, k in zip(x, b.indices, n):
                assert row[:k].tolist() == ds.examples[i][name].tolist() and (row[k:] == PAD).all()
        seen += b.indices.tolist()
    assert sorted(seen) == list(range(50))  # every example exactly once per epoch
    assert sorted(len(b.indices) for b in batches.epoch(0))[0] == 2


def test_batches_are_deterministic_and_resume_exactly(tmp_path, fields):
    ds = _dataset(tmp_path, fields)
    a, b = Batches(ds, 16, seed=1), Batches(ds, 16, seed=1)
    first = [x.indices.tolist() for x in a.epoch(0)]
    assert first == [x.indices.tolist() for x in b.epoch(0)]  # the same seed and epoch, the same batches
    assert first != [x.indices.tolist() for x in a.epoch(1)]  # another epoch, another order
    assert first != [x.indices.tolist() for x in Batches(ds, 16, seed=2).epoch(0)]
    tail = list(b.epoch(0, start=5))
    assert [x.indices.tolist() for x in tail] == first[5:]  # start=k is exactly the rest of the epoch
    full = list(a.epoch(0))[5:]
    assert all(np.array_equal(x.inputs["word"], y.inputs["word"]) for x, y in zip(tail, full))
    assert list(a.epoch(0, start=len(a))) == []
    with pytest.raises(SpecError, match="start 14 is past the 13 batches of an epoch"):
        list(a.epoch(0, start=14))
    plain = Batches(ds, 16, seed=1, bucket=False, shuffle=False)
    assert [x.indices.tolist() for x in plain.epoch(4)] == [list(range(i, min(i + 16, 200))) for i in range(0, 200, 16)]


def _padding(batches) -> float:
    total = real = 0
    for b in batches.epoch(0):
        for name, n in b.lengths.items():
            total += b.inputs[name].size
            real += int(n.sum())
    return 1 - real / total


def test_bucketing_reduces_padding(tmp_path, fields):
    ds = _dataset(tmp_path, fields, n=400)
    bucketed, random = _padding(Batches(ds, 16, seed=0)), _padding(Batches(ds, 16, seed=0, bucket=False))
    assert bucketed < random / 3, (bucketed, random)


def test_batches_of_labels_and_vectors(tmp_path, fields):
    rows = [{"words": "a b c", "label": "pos"}, {"words": "a", "label": "neg"}]
    ds = load_dataset(_jsonl(tmp_path / "s.jsonl", rows), fields["Sentiment"], tokens="words")
    (b,) = list(Batches(ds, 4, seed=0).epoch(0))
    assert b.inputs["label"].shape == (2,) and b.inputs["label"].dtype == np.int64 and set(b.lengths) == {"words"}
    assert b.tokens == 2  # one prediction per example
    path = tmp_path / "add.jsonl"
    write_task("adding", 10, 0, path, steps=6)
    (b,) = list(Batches(load_dataset(path, fields["AddingLSTM"]), 10, seed=0).epoch(0))
    assert b.inputs["x"].shape == (10, 6, 2) and b.inputs["x"].dtype == np.float64
    assert b.inputs["total"].shape == (10, 1) and b.lengths["x"].tolist() == [6] * 10


def test_several_processes_split_the_batches_of_one(tmp_path, fields):
    ds = _dataset(tmp_path, fields, n=50)
    one = [b.indices.tolist() for b in Batches(ds, 8, seed=0).epoch(0)]
    ranks = [[b.indices.tolist() for b in Batches(ds, 4, seed=0, rank=r, world=2).epoch(0)] for r in (0, 1)]
    assert len(Batches(ds, 4, seed=0, world=2)) == len(one) == 7
    assert [sorted(a + b) for a, b in zip(*ranks)] == [sorted(x) for x in one]
    with pytest.raises(SpecError, match="rank 2 is not one of the 2 processes"):
        Batches(ds, 4, seed=0, rank=2, world=2)


def test_batches_work_with_the_compiled_model(tmp_path, fields):
    ds = _dataset(tmp_path, fields, n=20)
    exe = seqdsl.compile("specs/tasks.seq", name="Translate", sizes={"Vs": ds.vocab_size("src"),
                                                                       "Vt": ds.vocab_size("word"), "H": 8, "E": 4})
    b = next(Batches(ds, 8, seed=0).epoch(0))
    loss = exe.loss(**b.inputs, lengths=b.lengths)
    assert np.isfinite(loss) and abs(loss - np.log(ds.vocab_size("word"))) < 0.5
