"""An empty label (a JSON "" or an empty TSV cell), a label of whitespace only, and text holding a lone
surrogate (a JSON "\\ud800" escape) are bad data: an error at the file, line and column naming the
field, like every other (not "token 0 is empty" from the vocabulary, with no file or line)."""

from __future__ import annotations

from pathlib import Path

import pytest

import seqdsl
from seqdsl.cli import main
from seqdsl.data import load_dataset, spec_fields
from seqdsl.errors import SpecError
from seqdsl.vocab import Vocab

ROOT = Path(__file__).resolve().parents[1]
CLASSIFY = """use "lstm.seq"
model Classify(V = 10, E = 4, H = 8, C = 3) {
    in words: seq<int>
    r = LSTM(E, H) over embed(words, V, E)
    out label ~ categorical(linear(r.h[last], C))
}
"""
GOOD = b'{"words": "a b", "label": "x"}\n'
LABEL = "a label is non-empty text or a class id (a whole number)"
SURROGATE = "a lone surrogate: not a character UTF-8 can write"


@pytest.fixture(scope="module")
def fields():
    return {"Sentiment": spec_fields(seqdsl.compile(ROOT / "specs" / "tasks.seq", name="Sentiment")),
            "Translate": spec_fields(seqdsl.compile(ROOT / "specs" / "tasks.seq", name="Translate"))}


# (file name, its bytes, the model, the message after the path)
BAD = [
    ("a.jsonl", GOOD + b'{"words": "a b", "label": ""}\n', "Sentiment",
     f":2:18: error: field 'label' is empty text; {LABEL}"),
    ("a.jsonl", b'{"label": "", "words": "a b"}\n', "Sentiment", f":1:2: error: field 'label' is empty text; {LABEL}"),
    ("a.jsonl", GOOD + b'{"words": "a b", "label": " \\t "}\n', "Sentiment",
     f":2:18: error: field 'label' is only whitespace (\" \\t \"); {LABEL}"),
    ("a.tsv", b"words\tlabel\na b\tx\na b\t\n", "Sentiment",
     ":3:5: error: field 'label' is an empty cell; a label is non-empty text"),
    ("a.tsv", b"label\twords\n\ta b\n", "Sentiment", ":2:1: error: field 'label' is an empty cell; a label is "
     "non-empty text"),
    ("a.tsv", b"words\tlabel\na b\t  \n", "Sentiment",
     ":2:5: error: field 'label' is only whitespace (\"  \"); a label is non-empty text"),
    ("a.jsonl", b'{"words": "a b", "label": "\\ud800"}\n', "Sentiment",
     f":1:18: error: field 'label': character 0 of its text is \\ud800, {SURROGATE}"),
    ("a.jsonl", b'{"words": "a \\udfff b", "label": "x"}\n', "Sentiment",
     f":1:2: error: field 'words': character 2 of its text is \\udfff, {SURROGATE}"),
    ("a.jsonl", b'{"src": "12", "word": "1\\ud83d"}\n', "Translate",
     f":1:15: error: field 'word': character 1 of its text is \\ud83d, {SURROGATE}"),
]


@pytest.mark.parametrize("name, content, model, message", BAD)
def test_empty_labels_and_lone_surrogates_are_placed(tmp_path, fields, name, content, model, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SpecError) as e:
        load_dataset(path, fields[model], tokens="words")
    assert str(e.value) == f"{path}{message}"


def test_a_validation_file_with_an_empty_label_is_placed_too(tmp_path, fields):
    path = tmp_path / "valid.jsonl"
    path.write_bytes(GOOD + b'{"words": "a", "label": ""}\n')
    with pytest.raises(SpecError) as e:
        load_dataset(path, fields["Sentiment"], tokens="words", vocabs={"label": Vocab(["x", "y"], "labels")})
    assert str(e.value) == f"{path}:2:16: error: field 'label' is empty text; {LABEL}"


def test_labels_that_are_text_still_load(tmp_path, fields):
    path = tmp_path / "ok.tsv"
    path.write_bytes(b"words\tlabel\na b\tpos\nc\t neg\n")
    ds = load_dataset(path, fields["Sentiment"], tokens="words")
    assert ds.vocabs["label"].tokens == [" neg", "pos"] and len(ds) == 2
    path = tmp_path / "ok.jsonl"
    path.write_bytes('{"words": "caf\u00e9 \U0001f600", "label": "\u00e9"}\n'.encode())
    assert load_dataset(path, fields["Sentiment"], tokens="words").vocabs["label"].tokens == ["\u00e9"]


@pytest.mark.parametrize("name, content, line, col, what", [
    ("train.jsonl", GOOD + b'{"words": "a b", "label": ""}\n', 2, 18, f"is empty text; {LABEL}"),
    ("train.tsv", b"words\tlabel\na b\tx\na b\t\n", 3, 5, "is an empty cell; a label is non-empty text"),
])
def test_training_a_classifier_on_an_empty_label(tmp_path, capsys, name, content, line, col, what):
    spec = tmp_path / "classify.seq"
    spec.write_text(CLASSIFY)
    data = tmp_path / name
    data.write_bytes(content)
    code = main(["train", str(spec), "--data", str(data), "--out", str(tmp_path / "run"), "--steps", "1",
                 "--tokens", "words", "-q"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines()[0] == f"{data}:{line}:{col}: error: field 'label' {what}"
    assert "token 0 is empty" not in err and "internal error" not in err
