"""`seqdsl generate SPEC --weights FILE [--vocab FILE] --input NAME=TEXT ... [--def NAME] [--backend B]
[--set K=V] [--beam K | --sample [--temperature T] [--top-k K] [--seed S]] [--max-len L] [--prompt TEXT]
[--batch N] [--plot FILE] [--verbose]`: text in, generated text out (docs/generate.md).

In:  parsed CLI arguments; the spec, its trained weights (.npz or .safetensors, either backend) and
     the vocabulary file (`vocab.load`, by default vocab.json beside the weights).
Out: one line per sample on stdout, the decoded prediction (after the prompt, when there is one),
     control characters escaped (`\\n`); with --verbose an indented `score: ... length: ...` line
     under each. --plot writes the attention heatmap of the first sample (matplotlib, Agg).
     Every mistake is a `SpecError`: exit status 1, never a traceback.

Each `--input NAME=TEXT` is encoded with the vocabulary of field NAME; the k-th value of each input
makes sample k (padded, with lengths). The prediction is decoded with the vocabulary of the
predicted output's field; `--prompt` is encoded with it too and continued.
"""

from __future__ import annotations

import math
import os
import sys
import unicodedata
from pathlib import Path

from ..errors import SpecError, did_you_mean
from .common import parse_sizes, pick

MAX_LEN = 10_000
MAX_BEAM = 1_000
MAX_BATCH = 10_000
PLOT_FORMATS = (".png", ".svg", ".pdf")
ATTENTION_NAMES = ("attn", "attention", "align")

HELP = {
    "file": "the .seq file",
    "def": "the model to run (default: the file's last definition)",
    "weights": "trained weights: .npz (exe.save) or .safetensors (module.save), read on either backend",
    "vocab": "the vocabulary file (default: vocab.json beside the weights file; docs/generate.md)",
    "input": "an input as text, e.g. --input src='a b c'; give it again for more samples (one per value)",
    "backend": "numpy (default) or torch",
    "set": "bind a size, e.g. --set H=128 (repeatable): the sizes the weights were trained with",
    "beam": "beam search with K hypotheses (default 1: greedy)",
    "length_penalty": "beam search ranks by log p / length ** A (default 1.0)",
    "sample": "sample each token instead of taking the most likely one",
    "temperature": "with --sample: divide the log-probabilities by T (default 1.0)",
    "top_k": "with --sample: draw from the K most likely tokens only",
    "seed": "with --sample: the random seed (the same seed, the same text on both backends)",
    "max_len": f"stop after L generated tokens, 1 to {MAX_LEN} (default 50)",
    "prompt": "text the prediction starts with (encoded with the predicted output's vocabulary) and continues",
    "batch": "how many samples: of a model without inputs, or copies of each input (with --sample)",
    "plot": "draw the attention of the first sample to FILE (.png, .svg or .pdf; needs matplotlib)",
    "verbose": "print each sample's score (the sum of its tokens' log-probabilities) and length",
}


def register(sub) -> None:
    g = sub.add_parser("generate", help="generate text with a trained model",
                       description="Encode text inputs with a vocabulary file, generate the model's prediction "
                                   "step by step (greedy, beam search or sampling) and print it as text.")
    g.add_argument("file", help=HELP["file"])
    g.add_argument("--def", dest="defn", metavar="NAME", help=HELP["def"])
    g.add_argument("--weights", required=True, metavar="FILE", help=HELP["weights"])
    g.add_argument("--vocab", metavar="FILE", help=HELP["vocab"])
    g.add_argument("--input", dest="inputs", action="append", metavar="NAME=TEXT", help=HELP["input"])
    g.add_argument("--backend", choices=["numpy", "torch"], default="numpy", help=HELP["backend"])
    g.add_argument("--set", action="append", metavar="NAME=VALUE", help=HELP["set"])
    g.add_argument("--beam", type=int, default=1, metavar="K", help=HELP["beam"])
    g.add_argument("--length-penalty", type=float, default=None, metavar="A", help=HELP["length_penalty"])
    g.add_argument("--sample", action="store_true", help=HELP["sample"])
    g.add_argument("--temperature", type=float, default=None, metavar="T", help=HELP["temperature"])
    g.add_argument("--top-k", type=int, default=None, metavar="K", help=HELP["top_k"])
    g.add_argument("--seed", type=int, default=None, metavar="S", help=HELP["seed"])
    g.add_argument("--max-len", type=int, default=50, metavar="L", help=HELP["max_len"])
    g.add_argument("--prompt", metavar="TEXT", help=HELP["prompt"])
    g.add_argument("--batch", type=int, default=None, metavar="N", help=HELP["batch"])
    g.add_argument("--plot", metavar="FILE", help=HELP["plot"])
    g.add_argument("-v", "--verbose", action="store_true", help=HELP["verbose"])


# ---- flags ---------------------------------------------------------------------------------
def search_options(args) -> dict:
    """The keywords of `generate()` the flags ask for, each checked: a bad value is a `SpecError`."""
    _between("--max-len", args.max_len, 1, MAX_LEN)
    _between("--beam", args.beam, 1, MAX_BEAM)
    if args.batch is not None:
        _between("--batch", args.batch, 1, MAX_BATCH)
    if args.sample and args.beam > 1:
        raise SpecError("--sample and --beam exclude each other", None,
                        "choose beam search (--beam K) or sampling (--sample)")
    for flag, value in (("--temperature", args.temperature), ("--top-k", args.top_k), ("--seed", args.seed)):
        if value is not None and not args.sample:
            raise SpecError(f"{flag} applies to sampling only", None, f"add --sample (or leave out {flag})")
    if args.length_penalty is not None and args.beam <= 1:
        raise SpecError("--length-penalty applies to beam search only", None, "add --beam K with K > 1")
    opts = {"max_len": args.max_len, "strategy": "greedy"}
    if args.sample:
        t = 1.0 if args.temperature is None else args.temperature
        if not (math.isfinite(t) and t > 0):
            raise SpecError(f"--temperature must be a number > 0, got {args.temperature}")
        if args.top_k is not None:
            _between("--top-k", args.top_k, 1, 1 << 31)
        if args.seed is not None:
            _between("--seed", args.seed, 0, (1 << 63) - 1)
        opts.update(strategy="sample", temperature=t, top_k=args.top_k, seed=args.seed)
    elif args.beam > 1:
        alpha = 1.0 if args.length_penalty is None else args.length_penalty
        if not math.isfinite(alpha):
            raise SpecError(f"--length-penalty must be a finite number, got {args.length_penalty}")
        opts.update(strategy="beam", beam=args.beam, length_penalty=alpha)
    return opts


def _between(flag: str, value: int, low: int, high: int) -> None:
    if not (low <= value <= high):
        raise SpecError(f"{flag} must be between {low} and {high}, got {value}")


def parse_inputs(items) -> dict:
    """`--input src=a b --input src=c` → {"src": ["a b", "c"]}."""
    out: dict = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        if not sep or not name.isidentifier():
            raise SpecError(f"--input expects NAME=TEXT, got '{item}'", None, "e.g. --input src='the cat sat'")
        out.setdefault(name, []).append(text)
    return out


def check_plot_target(plot: str | None) -> None:
    if plot is None:
        return
    if "\0" in plot:
        raise SpecError(f"cannot write the plot {plot!r}: not a valid path (it contains a NUL byte)")
    if Path(plot).suffix.lower() not in PLOT_FORMATS:
        raise SpecError(f"cannot plot to '{Path(plot).name}': use one of {', '.join(PLOT_FORMATS)}")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SpecError("--plot needs matplotlib, which is not installed", None, "pip install matplotlib") from None


# ---- the model -----------------------------------------------------------------------------
def compile_model(args, program, defn, sizes=None):
    """The executable of `defn` on --backend (a torch module in eval mode), at `sizes` besides
    those given with --set."""
    import seqdsl

    try:
        exe = seqdsl.compile(program, backend=args.backend, name=defn.name, sizes=sizes or None)
    except ModuleNotFoundError as e:
        if e.name not in ("torch", "safetensors"):
            raise
        raise SpecError(f"--backend torch needs {e.name}, which is not installed", None,
                        "pip install 'seqdsl[torch]', or use --backend numpy") from None
    if args.backend == "torch":
        exe.eval()
    return exe


def predicted_output(exe, defn) -> str:
    """The one categorical output the model predicts and reads back at t-1, or a `SpecError` at the
    definition that says why this one cannot generate."""
    pred = exe._ns["PREDICTED"]
    what = f"{defn.kind} {defn.name}"
    how = "seqdsl generate runs a model that declares what it predicts (out y ~ categorical(...)) and reads " \
          "its previous prediction (y[t-1])"
    if not pred:
        raise SpecError(f"{what} predicts nothing: {how}", defn.ast.span)
    read = [k for k, p in pred.items() if p["previous"]]
    if not read:
        raise SpecError(f"{what} predicts {', '.join(pred)} but never reads {next(iter(pred))}[t-1], so there "
                        f"is nothing to generate step by step: {how}", defn.ast.span,
                        "run it on a whole input from Python instead: seqdsl.compile(...)(**inputs)")
    if len(read) != 1:
        raise SpecError(f"{what} reads several predictions at t-1 ({', '.join(read)}); seqdsl generate "
                        "generates one", defn.ast.span)
    y = read[0]
    if pred[y]["dist"] != "categorical":
        raise SpecError(f"{what} predicts {y} ~ {pred[y]['dist']}(...); seqdsl generate writes text, which "
                        f"needs a categorical prediction (out {y} ~ categorical(...))", defn.ast.span)
    return y


def text_inputs(exe, y: str) -> list:
    """The inputs generation takes (the predicted output, an input of teacher forcing, is not one);
    each must be a token sequence, the only kind text can give."""
    names = []
    for name, (type_text, dims, dtype, seq, _vocab) in exe._ns["INPUTS"].items():
        if name in exe._ns["PREDICTED"] or name in exe._ns.get("MEMORIES", ()):
            continue
        if dtype != "int" or not seq or tuple(dims):
            raise SpecError(f"{exe.kind} {exe.name}'s input '{name}' is {type_text}; seqdsl generate gives "
                            "inputs as text, which fits token sequences (seq<int>) only", None,
                            "generate from Python instead: exe.generate(**inputs)")
        names.append(name)
    return names


def check_given(exe, y: str, names: list, given: dict) -> None:
    """Every input of the model given, the same number of times (once per sample), and no other name."""
    what = f"{exe.kind} {exe.name}"
    for name in given:
        if name in names:
            continue
        if name == y or name in exe._ns["PREDICTED"]:
            raise SpecError(f"'{name}' is what {what} predicts, not an input", None,
                            "give the beginning of it with --prompt" if name == y else None)
        if not names:
            raise SpecError(f"{what} has no inputs, and --input {name}=... names one", None,
                            "leave out --input; --batch N generates N samples")
        raise SpecError(f"{what} has no input '{name}' (its inputs: {', '.join(names)})", None,
                        did_you_mean(name, names))
    missing = [n for n in names if n not in given]
    if missing:
        raise SpecError(f"{what} needs --input {missing[0]}=TEXT (its inputs: {', '.join(names)})")
    counts = {n: len(given[n]) for n in names}
    if len(set(counts.values())) > 1:
        raise SpecError("each input needs one --input value per sample; got "
                        + ", ".join(f"{n}: {c}" for n, c in counts.items()))


# ---- the vocabulary ------------------------------------------------------------------------
def vocab_path(args) -> Path:
    return Path(args.vocab) if args.vocab is not None else Path(args.weights).parent / "vocab.json"


def vocabulary_sizes(args, program, defn, exe) -> dict:
    """The sizes that are a field's vocabulary size, bound from the vocabulary file as `seqdsl train`
    bound them from the data (docs/train.md), unless given with --set: {} when there is no file."""
    from ..data import spec_fields
    from ..train.prepare import bind_vocab_sizes
    from ..vocab import load

    path = vocab_path(args)
    if not os.path.lexists(path) or not exe._ns["PREDICTED"]:
        return {}
    counts = {k: len(v) for k, v in load(path).items()}
    given = parse_sizes(args.set)
    try:
        return bind_vocab_sizes(program, defn.name, given, exe, spec_fields(exe), counts, "float32")
    except SpecError as e:
        raise SpecError(f"{path}: {e.message}", None, e.hint) from None


def load_vocabs(args, exe, y: str, names: list) -> dict:
    """The vocabularies of the inputs and the predicted output, each no larger than the ids the model
    takes (`Boundary.vocab()`, and the predicted output's classes)."""
    from ..vocab import load

    path = vocab_path(args)
    if args.vocab is None and not os.path.lexists(path):
        raise SpecError(f"no vocabulary file {path} (the default: vocab.json beside the weights file)", None,
                        "name one with --vocab FILE (docs/generate.md, \"Vocabulary files\")")
    vocabs = load(path)
    takes = dict(exe.boundary.vocab())
    takes[y] = exe._ns["PREDICTED"][y]["classes"]
    sizes = ", ".join(f"{k}={v}" for k, v in exe.sizes.items())
    for name in names + [y]:
        role = "predicted output" if name == y else "input"
        if name not in vocabs:
            raise SpecError(f"{path}: no vocabulary for {exe.name}'s {role} '{name}' (the file has "
                            f"{', '.join(vocabs)})", None, did_you_mean(name, list(vocabs)))
        want = takes.get(name)
        if want is not None and len(vocabs[name]) > want:
            raise SpecError(f"{path}: the vocabulary of '{name}' has {len(vocabs[name])} tokens, more than the "
                            f"{want} ids {exe.name}'s {role} '{name}' takes at its sizes ({sizes})", None,
                            "compile at the sizes the model was trained with (--set NAME=VALUE), or use the "
                            "vocabulary file written with its weights")
    return vocabs


def encode_inputs(exe, vocabs: dict, names: list, given: dict, copies: int) -> tuple:
    """(inputs, lengths) for generate(): the k-th text of each input is sample k (each `copies` times),
    ids padded with PAD to the longest; a model without inputs gets batch=copies."""
    import numpy as np

    from ..vocab import PAD

    if not names:
        return {"batch": copies}, None
    inputs, lengths = {}, {}
    for name in names:
        rows = []
        for text in given[name]:
            ids = vocabs[name].encode(text)
            if not ids:
                raise SpecError(f"--input {name}={text!r} holds no tokens; a sequence needs at least one")
            rows.extend([ids] * copies)
        a = np.full((len(rows), max(len(r) for r in rows)), PAD, dtype=np.int64)
        for i, r in enumerate(rows):
            a[i, :len(r)] = r
        inputs[name] = a
        lengths[name] = np.array([len(r) for r in rows], dtype=np.int64)
    return inputs, lengths


def on_backend(exe, inputs: dict) -> dict:
    """The inputs as the executable takes them: arrays, or tensors for torch."""
    if exe.backend != "torch":
        return inputs
    import torch

    return {k: torch.as_tensor(v) if not isinstance(v, int) else v for k, v in inputs.items()}


def encode_prompt(vocab, prompt: str | None):
    import numpy as np

    if prompt is None:
        return None
    ids = vocab.encode(prompt)
    return np.array(ids, dtype=np.int64) if ids else None


# ---- weights -------------------------------------------------------------------------------
def weights_hint(message: str, exe) -> str | None:
    """What to try when the weights do not fit: other sizes, or another definition."""
    sizes = ", ".join(f"{k}={v}" for k, v in exe.sizes.items())
    if "has shape" in message:
        return f"bind the sizes the weights were trained at with --set NAME=VALUE (now: {sizes})"
    if "do not match the spec" in message:
        return f"are these the weights of another definition? (this is {exe.kind} {exe.name}; choose with --def)"
    return None


# ---- the command ---------------------------------------------------------------------------
def cmd_generate(args) -> int:
    from ..program import load

    opts = search_options(args)
    given = parse_inputs(args.inputs)
    check_plot_target(args.plot)
    program = load(Path(args.file), parse_sizes(args.set))
    defn = pick(program, args.defn)
    exe = compile_model(args, program, defn)
    bound = vocabulary_sizes(args, program, defn, exe)
    if bound:
        exe = compile_model(args, program, defn, bound)
    y = predicted_output(exe, defn)
    names = text_inputs(exe, y)
    check_given(exe, y, names, given)
    attention = attention_output(exe, y, names) if args.plot else None
    vocabs = load_vocabs(args, exe, y, names)
    try:
        exe.load(args.weights)  # .npz or safetensors, on either backend
    except SpecError as e:
        raise SpecError(e.message, e.span, e.hint or weights_hint(e.message, exe)) from None
    inputs, lengths = encode_inputs(exe, vocabs, names, given, args.batch or 1)
    prompt = encode_prompt(vocabs[y], args.prompt)
    try:
        out = exe.generate(**on_backend(exe, inputs), lengths=lengths, prompt=prompt, **clamp_top_k(opts, exe, y))
    except (ValueError, TypeError) as e:  # the runtime's InputError / UnknownName: say it as it is
        raise SpecError(str(e)) from None
    for b in range(out.tokens.shape[0]):
        text = vocabs[y].decode(out.tokens[b, :int(out.lengths[b])])
        emit(join_prompt(args.prompt, text, vocabs[y].tokenize))
        if args.verbose:
            emit(f"  score: {float(out.scores[b]):.4f}  length: {int(out.lengths[b])}")
    if attention is not None:
        src = attention[1]
        source = vocabs[src].tokens_of(inputs[src][0, :int(lengths[src][0])])
        plot_attention(args.plot, out, attention[0], source, vocabs[y], exe.name)
        emit(f"wrote {args.plot} (attention '{attention[0]}' of the first sample)", sys.stderr)
    return 0


def clamp_top_k(opts: dict, exe, y: str) -> dict:
    """--top-k above the number of classes keeps them all."""
    if opts.get("top_k") is not None:
        return {**opts, "top_k": min(opts["top_k"], int(exe._ns["PREDICTED"][y]["classes"]))}
    return opts


def join_prompt(prompt: str | None, text: str, tokenize: str) -> str:
    if not prompt:
        return text
    return prompt + ("" if tokenize == "chars" or not text else " ") + text


def escape(text: str) -> str:
    """Control characters and line breaks as escapes (`\\n`, `\\x1b`), so a sample is one line."""
    return "".join(c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) in ("Cc", "Zl", "Zp")
                   else c for c in text)


def emit(text: str, stream=None) -> None:
    """One line, escaped, in what the stream's encoding can show (others as \\u escapes)."""
    stream = stream or sys.stdout
    encoding = getattr(stream, "encoding", None) or "utf-8"
    line = escape(text)
    try:
        line.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        line = line.encode(encoding if _known(encoding) else "ascii", "backslashreplace").decode(
            encoding if _known(encoding) else "ascii")
    print(line, file=stream)


def _known(encoding: str) -> bool:
    import codecs

    try:
        codecs.lookup(encoding)
        return True
    except LookupError:
        return False


# ---- the attention plot ----------------------------------------------------------------------
def attention_output(exe, y: str, names: list) -> tuple:
    """(the output holding attention weights, the input it attends over), checked before anything runs."""
    axes = exe._ns["OUTPUT_AXES"]
    found = [k for k in exe._ns["OUTPUTS"] if k != y and any(a in k.lower() for a in ATTENTION_NAMES)
             and len(axes.get(k) or ()) == 2 and axes[k][0] == y and axes[k][1] in names]
    if not found:
        raise SpecError(f"--plot draws attention weights, and {exe.kind} {exe.name} exposes none", None,
                        "a model shows them with an output named like attn over its source, e.g. "
                        "out attn = dec.attn (specs/attention.seq)")
    name = min(found, key=lambda k: (k != "attn", k))  # "attn" itself first, then by name
    return name, axes[name][1]


def plot_attention(path: str, out, name: str, src: list, target_vocab, model: str) -> None:
    """The heatmap of the first sample's attention: the source tokens across, the generated ones down."""
    import io
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from ..files import write_file

    n = int(out.lengths[0])
    rows = target_vocab.tokens_of(out.tokens[0, :n])
    weights = out.outputs[name][0, :n, :len(src)]
    fig = Figure(figsize=(min(40, max(4, 0.35 * len(src) + 2)), min(40, max(3, 0.35 * n + 1.5))))
    ax = fig.subplots()
    im = ax.imshow(weights, aspect="auto", cmap="viridis", vmin=0.0, vmax=max(1e-9, float(weights.max())))
    if len(src) <= 120:
        ax.set_xticks(range(len(src)), [escape(t) for t in src], rotation=90)
    if n <= 120:
        ax.set_yticks(range(n), [escape(t) for t in rows])
    ax.set_xlabel("source")
    ax.set_ylabel("generated")
    ax.set_title(f"{model}: {name}")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    buf = io.BytesIO()
    with warnings.catch_warnings():  # glyphs the font lacks: drawn as boxes, no need to say so
        warnings.simplefilter("ignore")
        fig.savefig(buf, format=Path(path).suffix.lower()[1:])
    target = Path(path)
    try:
        if not target.parent.is_dir():
            target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SpecError(f"cannot write the plot {target}: {e.strerror}") from None
    write_file(target, lambda f: f.write(buf.getvalue()), "the plot")
