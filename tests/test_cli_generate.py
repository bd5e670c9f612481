"""`seqdsl generate`: text in, generated text out, on both backends; every mistake is exit status 1."""

from __future__ import annotations

import functools
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

import seqdsl
from seqdsl.cli import main
from seqdsl.cli.cmd_generate import escape
from seqdsl.vocab import Vocab, save

TASKS, ATTENTION = str(ROOT / "specs/tasks.seq"), str(ROOT / "specs/attention.seq")
SEQ2SEQ = ["--set", "Vs=12", "--set", "Vt=10", "--set", "E=4", "--set", "H=5"]
LM = ["--set", "V=12", "--set", "H=5"]
SIZES = {"Translate": (TASKS, {"Vs": 12, "Vt": 10, "E": 4, "H": 5}),
         "AttnTranslate": (ATTENTION, {"Vs": 12, "Vt": 10, "E": 4, "H": 5}),
         "CharLM": (TASKS, {"V": 12, "H": 5})}


def _torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A folder with vocab.json (src, word: words; char: characters) and initialised weights of
    Translate, AttnTranslate and CharLM at small sizes (.npz, and .safetensors when torch is there)."""
    d = tmp_path_factory.mktemp("trained")
    vocabs = {"src": Vocab.from_texts(["the cat sat", "a dog ran"], "words"),
              "word": Vocab.from_texts(["le chat", "un chien"], "words"),
              "char": Vocab.from_texts(["hello world"], "chars")}
    save(d / "vocab.json", vocabs)
    for name, (spec, sizes) in SIZES.items():
        exe = seqdsl.compile(spec, name=name, sizes=sizes)
        exe.init_params(3)
        exe.save(d / f"{name}.npz")
        try:
            import torch  # noqa: F401
        except ImportError:
            continue
        module = seqdsl.compile(spec, name=name, sizes=sizes, backend="torch")
        module.init_params(3)
        module.save(d / f"{name}.safetensors")
    return d, vocabs


def run(capsys, *argv):
    rc = main(["generate", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


@functools.cache
def _loaded(name, weights):
    """The NumPy executable of `name` at its SIZES with `weights` loaded (compiled once: expected()
    only generates with it)."""
    spec, sizes = SIZES[name]
    exe = seqdsl.compile(spec, name=name, sizes=sizes)
    exe.load(weights)
    return exe


def expected(trained, name, **kw):
    """What the Python API generates and the vocabulary decodes: one text per sample."""
    d, vocabs = trained
    exe = _loaded(name, d / f"{name}.npz")
    y = "char" if name == "CharLM" else "word"
    g = exe.generate(**kw)
    return [vocabs[y].decode(g.tokens[b, :g.lengths[b]]) for b in range(len(g.tokens))], g


def src_ids(trained, *texts):
    v = trained[1]["src"]
    rows = [v.encode(t) for t in texts]
    a = np.zeros((len(rows), max(map(len, rows))), np.int64)
    for i, r in enumerate(rows):
        a[i, :len(r)] = r
    return {"src": a, "lengths": {"src": np.array([len(r) for r in rows])}}


# ---- what it generates -----------------------------------------------------------------------
@pytest.mark.parametrize("name,spec", [("Translate", TASKS), ("AttnTranslate", ATTENTION)])
@pytest.mark.parametrize("backend,suffix", [("numpy", "npz"), ("numpy", "safetensors"), ("torch", "npz"),
                                            ("torch", "safetensors")])
def test_translate_greedy_on_both_backends(trained, capsys, name, spec, backend, suffix):
    if backend == "torch" or suffix == "safetensors":
        _torch()
    d, _ = trained
    want, _ = expected(trained, name, max_len=7, **src_ids(trained, "the cat sat"))
    rc, out, err = run(capsys, spec, "--def", name, *SEQ2SEQ, "--weights", d / f"{name}.{suffix}",
                       "--input", "src=the cat sat", "--backend", backend, "--max-len", 7)
    assert (rc, err) == (0, "") and out.splitlines() == want


def test_one_line_per_sample_and_verbose_scores(trained, capsys):
    d, _ = trained
    want, g = expected(trained, "Translate", max_len=6, **src_ids(trained, "the cat sat", "a dog", "zebra"))
    rc, out, err = run(capsys, TASKS, "--def", "Translate", *SEQ2SEQ, "--weights", d / "Translate.npz",
                       "--input", "src=the cat sat", "--input", "src=a dog", "--input", "src=zebra",
                       "--max-len", 6, "--verbose")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0::2] == want
    assert lines[1::2] == [f"  score: {g.scores[b]:.4f}  length: {g.lengths[b]}" for b in range(3)]


def test_beam_search(trained, capsys):
    d, _ = trained
    want, g = expected(trained, "AttnTranslate", max_len=8, beam=3, length_penalty=0.5,
                       **src_ids(trained, "a dog ran"))
    rc, out, err = run(capsys, ATTENTION, "--def", "AttnTranslate", *SEQ2SEQ, "--weights", d / "AttnTranslate.npz",
                       "--input", "src=a dog ran", "--beam", 3, "--length-penalty", 0.5, "--max-len", 8, "-v")
    assert rc == 0, err
    assert out.splitlines() == [want[0], f"  score: {g.scores[0]:.4f}  length: {g.lengths[0]}"]


def test_sampling_flags_and_copies_of_an_input(trained, capsys):
    d, _ = trained
    ids = src_ids(trained, "the cat", "the cat", "the cat", "the cat")
    want, _ = expected(trained, "Translate", max_len=9, strategy="sample", temperature=2.0, top_k=5, seed=7, **ids)
    argv = [TASKS, "--def", "Translate", *SEQ2SEQ, "--weights", d / "Translate.npz", "--input", "src=the cat",
            "--batch", 4, "--sample", "--temperature", 2, "--top-k", 5, "--seed", 7, "--max-len", 9]
    rc, out, err = run(capsys, *argv)
    assert rc == 0, err
    assert out.splitlines() == want and len(set(want)) > 1  # four draws, not four copies
    assert run(capsys, *argv)[1] == out  # the same seed, the same text
    # --top-k above the vocabulary keeps every token
    assert run(capsys, *argv[:-8], "--sample", "--top-k", 1000, "--seed", 7)[0] == 0


def test_charlm_prompt_and_batch(trained, capsys):
    d, vocabs = trained
    prompt = np.array(vocabs["char"].encode("hel"))
    want, _ = expected(trained, "CharLM", batch=3, max_len=10, strategy="sample", seed=1, prompt=prompt)
    argv = [TASKS, "--def", "CharLM", *LM, "--weights", d / "CharLM.npz", "--prompt", "hel", "--batch", 3,
            "--sample", "--seed", 1, "--max-len", 10]
    rc, out, err = run(capsys, *argv)
    assert rc == 0, err
    assert out.splitlines() == [escape("hel" + w) for w in want]
    _torch()
    rc, out_torch, err = run(capsys, *argv, "--backend", "torch")  # a seed draws the same on both backends
    assert (rc, out_torch) == (0, out), err
    rc, out, err = run(capsys, TASKS, "--def", "CharLM", *LM, "--weights", d / "CharLM.npz", "--max-len", 4)
    assert rc == 0 and len(out.splitlines()) == 1  # a model without inputs: one sample by default


def test_attention_plot(trained, capsys, tmp_path):
    pytest.importorskip("matplotlib")
    d, _ = trained
    for backend in ("numpy", "torch"):
        if backend == "torch":
            _torch()
        target = tmp_path / backend / "attn.png"  # missing folders are made
        rc, out, err = run(capsys, ATTENTION, "--def", "AttnTranslate", *SEQ2SEQ, "--weights",
                           d / "AttnTranslate.npz", "--input", "src=the cat sat", "--max-len", 5,
                           "--plot", target, "--backend", backend)
        assert rc == 0, err
        assert f"wrote {target} (attention 'attn' of the first sample)" in err
        assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and len(out.splitlines()) == 1
    rc, _, err = run(capsys, ATTENTION, "--def", "AttnTranslate", *SEQ2SEQ, "--weights", d / "AttnTranslate.npz",
                     "--input", "src=a", "--max-len", 3, "--plot", tmp_path / "attn.svg")
    assert rc == 0 and (tmp_path / "attn.svg").read_text().lstrip().startswith("<?xml"), err


def test_the_default_vocabulary_is_beside_the_weights(trained, capsys, tmp_path):
    d, vocabs = trained
    (tmp_path / "w.npz").write_bytes((d / "Translate.npz").read_bytes())
    argv = [TASKS, "--def", "Translate", *SEQ2SEQ, "--weights", tmp_path / "w.npz", "--input", "src=a"]
    rc, _, err = run(capsys, *argv)
    assert rc == 1
    assert err == (f"seqdsl: error: no vocabulary file {tmp_path / 'vocab.json'} (the default: vocab.json beside "
                   "the weights file)\n    hint: name one with --vocab FILE (docs/generate.md, \"Vocabulary files\")\n")
    assert run(capsys, *argv, "--vocab", d / "vocab.json")[0] == 0
    save(tmp_path / "vocab.json", vocabs)
    assert run(capsys, *argv)[0] == 0


def test_control_characters_are_escaped():
    assert escape("a\nb\tc\x1b\u2028d é") == "a\\nb\\tc\\x1b\\u2028d é"


# ---- mistakes ----------------------------------------------------------------------------------
def _translate(d, *extra):
    return [TASKS, "--def", "Translate", *SEQ2SEQ, "--weights", d / "Translate.npz", *extra]


ERRORS = [
    # (argv after the spec's --def/--set/--weights, what stderr says)
    (["--input", "srx=a"], "seqdsl: error: model Translate has no input 'srx' (its inputs: src)\n"
                           "    hint: did you mean 'src'?"),
    (["--input", "word=a"], "'word' is what model Translate predicts, not an input"),
    ([], "model Translate needs --input src=TEXT"),
    (["--input", "src="], "--input src='' holds no tokens"),
    (["--input", "src"], "--input expects NAME=TEXT, got 'src'"),
    (["--input", "src=a", "--input", "src=b", "--input", "x=c"], "has no input 'x'"),
    (["--input", "src=a", "--beam", 0], "--beam must be between 1 and 1000, got 0"),
    (["--input", "src=a", "--beam", "two"], "argument --beam: invalid int value: 'two'"),
    (["--input", "src=a", "--beam", 2, "--sample"], "--sample and --beam exclude each other"),
    (["--input", "src=a", "--temperature", 0.5], "--temperature applies to sampling only"),
    (["--input", "src=a", "--seed", 1], "--seed applies to sampling only"),
    (["--input", "src=a", "--sample", "--temperature", 0], "--temperature must be a number > 0, got 0.0"),
    (["--input", "src=a", "--sample", "--temperature", "nan"], "--temperature must be a number > 0"),
    (["--input", "src=a", "--sample", "--top-k", 0], "--top-k must be between 1"),
    (["--input", "src=a", "--sample", "--seed", -1], "--seed must be between 0"),
    (["--input", "src=a", "--length-penalty", 0.5], "--length-penalty applies to beam search only"),
    (["--input", "src=a", "--max-len", 0], "--max-len must be between 1 and 10000, got 0"),
    (["--input", "src=a", "--batch", 0], "--batch must be between 1 and 10000, got 0"),
    (["--input", "src=a", "--backend", "jax"], "argument --backend: invalid choice: 'jax'"),
    (["--input", "src=a", "--plot", "a.jpg"], "cannot plot to 'a.jpg': use one of .png, .svg, .pdf"),
    (["--input", "src=a", "--vocab", "/nonexistent/v.json"],
     "cannot load the vocabulary file /nonexistent/v.json: no such file"),
]


@pytest.mark.parametrize("extra,message", ERRORS, ids=range(len(ERRORS)))
def test_mistakes_are_one_error_and_status_1(trained, capsys, extra, message):
    rc, out, err = run(capsys, *_translate(trained[0], *extra))
    assert (rc, out) == (1, ""), err
    assert err.startswith("seqdsl: error: ") and message in err, err


def test_plot_without_matplotlib_or_attention(trained, capsys, monkeypatch, tmp_path):
    d, _ = trained
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
        rc, _, err = run(capsys, *_translate(d, "--input", "src=a", "--plot", tmp_path / "a.png"))
    assert rc == 1 and err == ("seqdsl: error: --plot needs matplotlib, which is not installed\n"
                               "    hint: pip install matplotlib\n")
    pytest.importorskip("matplotlib")
    rc, _, err = run(capsys, *_translate(d, "--input", "src=a", "--plot", tmp_path / "a.png"))
    assert rc == 1 and "--plot draws attention weights, and model Translate exposes none" in err
    assert not list(tmp_path.iterdir())


def test_definitions_that_cannot_generate(trained, capsys):
    d, _ = trained
    rc, _, err = run(capsys, TASKS, "--def", "Sentiment", "--weights", d / "Translate.npz", "--input", "words=a")
    assert rc == 1 and err.startswith(f"{TASKS}:8:7: error: model Sentiment predicts label but never reads "
                                      "label[t-1]")
    rc, _, err = run(capsys, ROOT / "specs/lstm.seq", "--weights", d / "Translate.npz", "--input", "x=a")
    assert rc == 1 and "lstm.seq:3:6: error: cell LSTM predicts nothing" in err
    rc, _, err = run(capsys, TASKS, "--def", "Caption", "--weights", d / "Translate.npz", "--input", "image=a")
    assert rc == 1 and "model Caption's input 'image' is [128]; seqdsl generate gives inputs as text" in err
    rc, _, err = run(capsys, TASKS, "--def", "CharLM", *LM, "--weights", d / "CharLM.npz", "--input", "x=a")
    assert rc == 1 and "model CharLM has no inputs, and --input x=... names one" in err
    rc, _, err = run(capsys, TASKS, "--def", "Nope", "--weights", d / "CharLM.npz")
    assert rc == 1 and "no definition named 'Nope'" in err


def test_bad_weights(trained, capsys, tmp_path):
    d, _ = trained
    rc, _, err = run(capsys, *_translate(d, "--input", "src=a")[:-2], "--weights", tmp_path / "none.npz",
                     "--vocab", d / "vocab.json", "--input", "src=a")
    assert rc == 1 and f"cannot load weights from {tmp_path / 'none.npz'}: no such file" in err
    rc, _, err = run(capsys, TASKS, "--def", "Translate", *SEQ2SEQ, "--weights", d / "AttnTranslate.npz",
                     "--input", "src=a")
    assert rc == 1 and "AttnTranslate.npz: parameters do not match the spec; missing dec.W_hf" in err
    assert "hint: are these the weights of another definition? (this is model Translate; choose with --def)" in err
    rc, _, err = run(capsys, TASKS, "--def", "Translate", "--weights", d / "Translate.npz", "--input", "src=a")
    assert rc == 1 and re.search(r"Translate.npz: parameter \S+ has shape \(\d+, \d+\), the spec says", err), err
    # (the vocabulary sizes come from vocab.json beside the weights, as seqdsl train bound them; E and H do not)
    assert "hint: bind the sizes the weights were trained at with --set NAME=VALUE (now: Vs=10, Vt=8, E=32, H=64)" \
        in err
    (tmp_path / "junk.npz").write_text("not weights")
    rc, _, err = run(capsys, *_translate(d)[:-2], "--weights", tmp_path / "junk.npz", "--vocab", d / "vocab.json",
                     "--input", "src=a")
    assert rc == 1 and "not an .npz file" in err


def test_vocabulary_that_does_not_fit_the_spec(trained, capsys, tmp_path):
    d, vocabs = trained
    big = Vocab.from_texts(["a b c d e f g h i"], "words")  # 13 tokens, the model takes 12 source ids
    cases = [({"src": big, "word": vocabs["word"]},
              "the vocabulary of field 'src' has 13 tokens, but Translate takes Vs=12, which you set (ids 0 to 11)"),
             ({"src": vocabs["src"], "word": big},
              "the vocabulary of field 'word' has 13 tokens, but Translate takes Vt=10, which you set (ids 0 to 9)"),
             ({"src": vocabs["src"]}, "no vocabulary for Translate's predicted output 'word' (the file has src)"),
             ({"source": vocabs["src"], "word": vocabs["word"]}, "no vocabulary for Translate's input 'src'")]
    for i, (v, message) in enumerate(cases):
        save(tmp_path / f"{i}.json", v)
        rc, _, err = run(capsys, *_translate(d, "--input", "src=a", "--vocab", tmp_path / f"{i}.json"))
        assert rc == 1 and err.startswith(f"seqdsl: error: {tmp_path / f'{i}.json'}: ") and message in err, err
    (tmp_path / "bad.json").write_text('{"format": "seqdsl-vocab/1", "fields": {"src": {"tokenize": "words", '
                                       '"tokens": ["<pad>"]}}}')
    rc, _, err = run(capsys, *_translate(d, "--input", "src=a", "--vocab", tmp_path / "bad.json"))
    assert rc == 1 and f"cannot load the vocabulary file {tmp_path / 'bad.json'}: field 'src'" in err


def test_the_command_line_never_shows_a_traceback(trained, tmp_path):
    d, _ = trained

    def seqdsl_generate(*argv):
        return subprocess.run([sys.executable, "-m", "seqdsl", "generate", *map(str, argv)], capture_output=True,
                              text=True, cwd=tmp_path)

    r = seqdsl_generate(*_translate(d, "--input", "src=the cat", "--max-len", 4))
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 1, r.stderr
    r = seqdsl_generate(*_translate(d, "--input", "nope=a"))
    assert r.returncode == 1 and r.stderr.startswith("seqdsl: error: ") and "Traceback" not in r.stderr, r.stderr
    r = seqdsl_generate(TASKS, "--def", "Translate")
    assert r.returncode == 1 and "the following arguments are required: --weights" in r.stderr


def test_numpy_generation_imports_neither_torch_nor_matplotlib(trained, tmp_path):
    """Only --backend torch imports torch (even to read .safetensors weights), and only --plot matplotlib."""
    d, _ = trained
    weights = d / ("Translate.safetensors" if (d / "Translate.safetensors").exists() else "Translate.npz")
    argv = [str(a) for a in _translate(d, "--input", "src=a", "--max-len", "3")]
    argv[argv.index("--weights") + 1] = str(weights)
    code = ("import sys\nfrom seqdsl.cli import main\nrc = main(['generate'] + sys.argv[1:])\n"
            "print(rc, 'torch' in sys.modules, 'matplotlib' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=ROOT)
    assert r.stdout.splitlines()[-1] == "0 False False", r.stderr


def test_vocabulary_sizes_come_from_the_vocabulary_file(trained, capsys, tmp_path):
    """Weights trained at the sizes `seqdsl train` bound from the data (Vs, Vt: the vocabularies'
    sizes) generate without --set for them: the same rule binds them from vocab.json."""
    _, vocabs = trained
    save(tmp_path / "vocab.json", {"src": vocabs["src"], "word": vocabs["word"]})
    exe = seqdsl.compile(TASKS, name="Translate", sizes={"Vs": len(vocabs["src"]), "Vt": len(vocabs["word"]),
                                                          "E": 4, "H": 5})
    exe.init_params(3)
    exe.save(tmp_path / "w.npz")
    rc, out, err = run(capsys, TASKS, "--def", "Translate", "--set", "E=4", "--set", "H=5",
                       "--weights", tmp_path / "w.npz", "--input", "src=the cat", "--max-len", "3")
    assert rc == 0, err
    ids = exe.generate(src=np.array([vocabs["src"].encode("the cat")]), max_len=3)
    assert out.splitlines() == [vocabs["word"].decode(ids.tokens[0, :int(ids.lengths[0])])]
