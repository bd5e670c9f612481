"""Bad data: every problem with a data file is a SpecError naming the file, the line and the field,
with its exact message; never a traceback, and checking never imports torch."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import seqdsl
from seqdsl.data import load_dataset, spec_fields
from seqdsl.data.source import MAX_DATA_FILE
from seqdsl.errors import SpecError


@pytest.fixture(scope="module")
def fields():
    out = {n: spec_fields(seqdsl.compile("specs/tasks.seq", name=n)) for n in ("Translate", "Sentiment", "Caption")}
    out["Adding"] = spec_fields(seqdsl.compile("specs/adding.seq", name="AddingLSTM"))
    return out


GOOD = b'{"src": "12", "word": "21"}\n'
T_FIELDS = "src (seq<int>), word (seq<int>)"

# (file name, its bytes, the model, load_dataset's keywords, the message after "{path}")
BAD = [
    ("a.jsonl", GOOD + b'{"src": "1\xff2", "word": "21"}\n', "Translate", {},
     ":2:11: error: not UTF-8 text: byte 38 of the file (byte 11 of the line) is 0xff\n"
     "    hint: save the file as UTF-8"),
    ("a.jsonl", GOOD + b'{"src": "12" "word": "21"}\n', "Translate", {},
     ":2:14: error: not valid JSON: Expecting ',' delimiter\n    hint: a .jsonl file holds one JSON object per line"),
    ("a.jsonl", b'{"src": "12", "word": "21", "src": "3"}\n', "Translate", {},
     ":1:1: error: not valid JSON: the key \"src\" appears twice in one object"),
    ("a.jsonl", b'{"src": "12", "word": [NaN]}\n', "Translate", {},
     ":1:1: error: not valid JSON: NaN is not a number JSON allows (numbers must be finite)"),
    ("a.jsonl", GOOD + b'["12", "21"]\n', "Translate", {},
     f":2:1: error: the line holds a list, not a JSON object whose keys are the fields ({T_FIELDS})"),
    ("a.jsonl", b'{"src": "12"}\n', "Translate", {},
     f":1:1: error: missing field 'word': every line holds {T_FIELDS}"),
    ("a.jsonl", b'{"source": "12"}\n', "Translate", {"mapping": {"src": "source"}},
     ":1:1: error: missing field 'word': every line holds source (seq<int>), word (seq<int>)"),
    ("a.jsonl", b'{"src": "12", "wrd": "21"}\n', "Translate", {},
     f":1:15: error: unknown field 'wrd': the fields are {T_FIELDS}\n    hint: did you mean 'word'? (or read the "
     "field 'word' from the key 'wrd': --map word=wrd, or mapping={'word': 'wrd'} from Python)"),
    ("a.jsonl", b'{"src": "12", "word": "21", "id": 7}\n', "Translate", {},
     f":1:29: error: unknown field 'id': the fields are {T_FIELDS}"),
    ("a.jsonl", GOOD + b'{"src": "12", "word": 21}\n', "Translate", {},
     ":2:15: error: field 'word' is a number (21); expected text or a list of token ids"),
    ("a.jsonl", b'{"src": [4, "5"], "word": "21"}\n', "Translate", {},
     ":1:2: error: field 'src': item 1 of its list is text (\"5\"); a list of token ids holds whole numbers"),
    ("a.jsonl", b'{"src": [4, -5], "word": "21"}\n', "Translate", {},
     ":1:2: error: field 'src': id -5 (item 1) is out of range: ids are whole numbers from 0 to 2147483647"),
    ("a.jsonl", b'{"src": [4, 5], "word": "21"}\n{"src": "12", "word": "21"}\n', "Translate", {},
     ":2:2: error: field 'src' holds text here but ids (whole numbers) on line 1: give every line the same kind"),
    ("a.jsonl", b'{"src": "", "word": "21"}\n', "Translate", {},
     ":1:2: error: field 'src' holds no tokens"),
    ("a.jsonl", b'{"src": "  ", "word": "21"}\n', "Translate", {"tokens": "words"},
     ":1:2: error: field 'src' holds no tokens (text of whitespace only, split into words)"),
    ("a.jsonl", GOOD + b'{"src": "123456", "word": "21"}\n', "Translate", {"max_len": 5},
     ":2:2: error: field 'src' has 6 tokens, more than the maximum length 5\n"
     "    hint: leave longer examples out of the file, or raise the maximum length (--max-len)"),
    ("a.jsonl", b'{"src": "1", "word": "12345"}\n', "Translate", {"max_len": 5},
     ":1:14: error: field 'word' has 6 tokens (the end token included), more than the maximum length 5\n"
     "    hint: leave longer examples out of the file, or raise the maximum length (--max-len)"),
    ("a.jsonl", b"\n  \n", "Translate", {}, ": error: the file holds no examples"),
    ("a.jsonl", b"", "Translate", {}, ": error: the file holds no examples"),
    ("a.jsonl", b'{"words": "ok", "label": true}\n', "Sentiment", {},
     ":1:17: error: field 'label' is true (a boolean); expected a label (text) or a class id (a whole number)"),
    ("a.jsonl", b'{"words": "ok", "label": -1}\n', "Sentiment", {},
     ":1:17: error: field 'label': class id -1 is out of range: class ids are whole numbers from 0"),
    ("a.jsonl", b'{"x": "0.5 1", "total": [1]}\n', "Adding", {},
     ":1:2: error: field 'x' is text (\"0.5 1\"); expected a list of steps, each a list of 2 numbers"),
    ("a.jsonl", b'{"x": [[0.5, 1], [0.5]], "total": [1]}\n', "Adding", {},
     ":1:2: error: field 'x': step 1 has 1 number, expected 2 (x is seq[2])"),
    ("a.jsonl", b'{"x": [[0.5, 1, 0]], "total": [1]}\n', "Adding", {},
     ":1:2: error: field 'x': step 0 has 3 numbers, expected 2 (x is seq[2])"),
    ("a.jsonl", b'{"x": [[0.5, "1"]], "total": [1]}\n', "Adding", {},
     ":1:2: error: field 'x': step 0, item 1 is text (\"1\"), not a number"),
    ("a.jsonl", b'{"x": [], "total": [1]}\n', "Adding", {},
     ":1:2: error: field 'x' holds no steps (an empty list); a sequence has at least one step"),
    ("a.jsonl", b'{"x": [[0.5, 1]], "total": 1.5}\n', "Adding", {},
     ":1:19: error: field 'total': the value is a number (1.5); expected a list of 1 number"),
    ("a.jsonl", b'{"x": [[0.5, 1]], "total": [1e999]}\n', "Adding", {},
     ":1:19: error: field 'total': item 0 is inf: numbers must be finite"),
    ("a.jsonl", b'{"image": [1, 2], "word": "a"}\n', "Caption", {},
     ":1:2: error: field 'image': the value has 2 numbers, expected 128 (image is [128])"),
    ("a.tsv", b"src\tword\n12\t21\n1\t2\t3\n", "Translate", {},
     ":3:1: error: the row has 3 columns (cells separated by tabs); the header has 2: src, word"),
    ("a.tsv", b"src\twrd\n12\t21\n", "Translate", {},
     f":1:5: error: the header names an unknown field 'wrd': the fields are {T_FIELDS}\n    hint: did you mean "
     "'word'? (or read the field 'word' from the key 'wrd': --map word=wrd, or mapping={'word': 'wrd'} from Python)"),
    ("a.tsv", b"src\tsrc\tword\n", "Translate", {}, ":1:5: error: the header names the field 'src' twice"),
    ("a.tsv", b"src\n12\n", "Translate", {},
     f":1:1: error: the header has no column for field 'word': it must name {T_FIELDS}"),
    ("a.tsv", b"src\tword\n", "Translate", {}, ": error: the file holds no examples (only a header)"),
    ("a.tsv", b"x\ttotal\n0.5 1; 0.5 x\t1\n", "Adding", {}, ":2:1: error: field 'x': \"x\" is not a number"),
    ("a.tsv", b"x\ttotal\n0.5 1\tnan\n", "Adding", {}, ":2:7: error: field 'total': \"nan\" is not a finite number"),
    ("a.txt", b"hello", "Translate", {"seq_len": 4},
     ": error: plain text (.txt) is for a model whose only field is a token sequence (like CharLM's char); this "
     f"model has {T_FIELDS}\n    hint: write the data as .jsonl or .tsv, one example per line"),
    ("a.jsonl", GOOD, "Translate", {"seq_len": 4},
     ": error: seq_len (--seq-len) cuts plain text (.txt) into chunks; this is a .jsonl file of examples\n"
     "    hint: leave it out"),
    ("a.csv", b"src,word\n", "Translate", {},
     ": error: cannot read the data file: unknown format '.csv'; a data file is .jsonl (one JSON object per line), "
     ".tsv (a header naming the fields, tab-separated) or .txt (plain text)"),
]


@pytest.mark.parametrize("name,data,model,kwargs,message", BAD, ids=range(len(BAD)))
def test_bad_data_says_where(tmp_path, fields, name, data, model, kwargs, message):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(SpecError) as info:
        load_dataset(path, fields[model], **kwargs)
    assert str(info.value) == f"{path}{message}"


def test_ids_out_of_range_of_a_given_vocabulary(tmp_path, fields):
    train = tmp_path / "t.jsonl"
    train.write_bytes(GOOD)
    vocabs = load_dataset(train, fields["Translate"]).vocabs
    valid = tmp_path / "v.jsonl"
    valid.write_bytes(b'{"src": [5], "word": "2"}\n{"src": [4, 9], "word": "2"}\n')
    with pytest.raises(SpecError) as info:
        load_dataset(valid, fields["Translate"], vocabs=vocabs)
    assert str(info.value) == (f"{valid}:2:2: error: field 'src': id 9 (item 1) is out of range: the vocabulary of "
                               "'src' has 6 ids (0 to 5)")
    mapped = tmp_path / "m.jsonl"
    mapped.write_bytes(b'{"source": [4, 9], "word": "2"}\n')
    with pytest.raises(SpecError) as info:
        load_dataset(mapped, fields["Translate"], vocabs=vocabs, mapping={"src": "source"})
    assert str(info.value).startswith(f"{mapped}:1:2: error: field 'src' (key 'source'): id 9 (item 1)")


def test_missing_files_folders_and_fifos(tmp_path, fields, monkeypatch):
    f = fields["Translate"]
    cases = [(tmp_path / "none.jsonl", "no such file"), (tmp_path, "it is a folder")]
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo.jsonl")
        cases.append((tmp_path / "fifo.jsonl", "it is not a regular file"))
    for path, why in cases:
        with pytest.raises(SpecError) as info:
            load_dataset(path, f)
        assert str(info.value) == f"{path}: error: cannot read the data file: {why}"
    with pytest.raises(SpecError, match="not a valid path"):
        load_dataset("a\0.jsonl", f)
    big = tmp_path / "big.jsonl"
    with open(big, "wb") as out:
        out.truncate(MAX_DATA_FILE + 1)  # sparse: nothing is written
    with pytest.raises(SpecError) as info:
        load_dataset(big, f)
    assert str(info.value) == (f"{big}: error: cannot read the data file: it holds {MAX_DATA_FILE + 1} bytes, more "
                               f"than the {MAX_DATA_FILE} bytes (2 GiB) a data file may hold")


def test_bad_arguments(tmp_path, fields):
    path = tmp_path / "a.jsonl"
    path.write_bytes(GOOD)
    for kwargs, message in [
        ({"tokens": "bytes"}, "unknown tokens 'bytes': text is tokenised by character ('chars') or by whitespace"),
        ({"max_len": 0}, "max_len must be a whole number >= 1, got 0"),
        ({"mapping": {"src": ""}}, "cannot read 'src' from the key '': a key is non-empty text"),
        ({"vocabs": {"src": "abc"}}, "the vocabulary given for field 'src' is a str, but 'src' holds seq<int>"),
    ]:
        with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
            load_dataset(path, fields["Translate"], **kwargs)
    with pytest.raises(SpecError, match="give seq_len"):
        (tmp_path / "a.txt").write_text("abc")
        load_dataset(tmp_path / "a.txt", {"char": fields["Translate"]["word"]})


def test_reading_data_never_imports_torch(tmp_path):
    (tmp_path / "a.jsonl").write_bytes(GOOD + b'{"src": 5, "word": "2"}\n')
    code = ("import sys, seqdsl\nfrom seqdsl.data import load_dataset, spec_fields\n"
            "fields = spec_fields(seqdsl.compile('specs/tasks.seq', name='Translate'))\n"
            "try:\n    load_dataset(sys.argv[1], fields)\nexcept seqdsl.SpecError as e:\n    print(e)\n"
            "print('torch' in sys.modules)\n")
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.jsonl")], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [f"{tmp_path / 'a.jsonl'}:2:2: error: field 'src' is a number (5); expected "
                                       "text or a list of token ids", "False"]
