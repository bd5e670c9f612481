"""Generation speed (begin/step/generate), ratios measured in the same run.

1. Greedy decoding of AttnTranslate (specs/attention.seq; Vs=300, Vt=400, E=32, H=64), batch 32,
   source length 20, 50 generated tokens: seqdsl torch `generate` vs a hand-written PyTorch loop
   with the same weights (torch.nn.LSTM encoder, W_k @ m computed once, then per step: embedding,
   Bahdanau attention, nn.LSTMCell, linear, argmax). Target ≤ 1.1×.
2. Greedy CharLM (specs/tasks.seq; V=96, H=64), batch 1, 1,000 characters: seqdsl torch vs a
   hand-written loop (onehot → nn.LSTMCell → linear → argmax). Target ≤ 1.1×.
3. Beam search (beam 5) vs greedy, AttnTranslate in the setting of 1. Target ≤ 6×.
4. Linearity: greedy CharLM for 250, 500 and 1,000 characters, time per character (should be
   about constant).
5. NumPy: the same seqdsl generate calls on the NumPy backend, and their ratio to the torch
   hand-written loop (for information; no target).
Before timing, the hand-written loops are checked to choose exactly the tokens seqdsl chooses (and
their logits and attention weights to be close to seqdsl's `step`). The output bias of the end
token (</s> = 2) is set to -1e9, so that every generation runs exactly max_len steps. Each figure
is the median of several repeats after a warm-up; the ratios of rows 1 to 3 are paired: the median
over the rounds of the two times measured side by side in each round (`timing.paired`), which a
drift of the machine's speed between rounds does not skew; float32, CPU, torch on 2 threads.

The "breakdown" rows drive seqdsl's public begin/step by hand (argmax in torch, each step validated):
the step module's cost without the search's host bookkeeping. Torch and NumPy runs are timed apart.

Run: `.venv/bin/python benchmarks/bench_generate.py [--quick] [--profile]`
(`--quick`: a few steps, for a smoke test; `--profile`: also cProfile 200 seqdsl steps of
AttnTranslate and one greedy, beam and CharLM generate, and print the top entries.)
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from timing import alternate as timeit  # noqa: E402
from timing import paired  # noqa: E402

import seqdsl  # noqa: E402
from seqdsl.vocab import END, START  # noqa: E402

B, S, MAX_LEN = 32, 20, 50  # AttnTranslate: batch, source length, generated tokens
CHARS = (250, 500, 1000)  # CharLM lengths (linearity); the last one is the comparison of 2.
BEAM = 5
FIRST = START + 1  # generation chooses among the ids from </s> up: never <pad> (0) or <s> (1)


def never_end(exe, name: str) -> None:
    """Give the end token a logit of -1e9, so that generation runs all max_len steps."""
    with torch.no_grad():
        exe.params[name][END] = -1e9


def to_numpy_exe(exe, path: Path, name: str):
    """The NumPy executable of the same definition with the torch module's weights."""
    ex = seqdsl.compile(path, backend="numpy", name=name)
    ex.params = {k: v.detach().cpu().numpy().copy() for k, v in exe.params.items()}
    return ex


def cat(P, names):
    return torch.cat([P[n].detach() for n in names]).clone()


class AttnByHand:
    """The hand-written PyTorch greedy decoder for AttnTranslate, with seqdsl's weights."""

    def __init__(self, exe):
        P = exe.params
        E, H = P["enc.W_ii"].shape[1], P["enc.W_hi"].shape[0]
        Vt = P["word.W"].shape[0]
        self.enc_embed = P["enc_embed.weight"].detach().clone()
        self.enc = torch.nn.LSTM(E, H, batch_first=True)
        self.dec_embed = P["dec_embed.weight"].detach().clone()
        self.W_q = P["dec.W_q"].detach().clone()
        self.W_k = P["dec.W_k"].detach().clone()
        self.v = P["dec.v"].detach().clone()
        self.cell = torch.nn.LSTMCell(E + H, H)  # the spec splits z as i, f, g, o: torch's order
        self.out = torch.nn.Linear(H, Vt)
        with torch.no_grad():
            self.enc.weight_ih_l0.copy_(cat(P, ["enc.W_ii", "enc.W_if", "enc.W_ig", "enc.W_io"]))
            self.enc.weight_hh_l0.copy_(cat(P, ["enc.W_hi", "enc.W_hf", "enc.W_hg", "enc.W_ho"]))
            self.enc.bias_ih_l0.copy_(cat(P, ["enc.b_ii", "enc.b_if", "enc.b_ig", "enc.b_io"]))
            self.enc.bias_hh_l0.copy_(cat(P, ["enc.b_hi", "enc.b_hf", "enc.b_hg", "enc.b_ho"]))
            self.cell.weight_ih.copy_(P["dec.W_x"])
            self.cell.weight_hh.copy_(P["dec.W_h"])
            self.cell.bias_ih.copy_(P["dec.b"])
            self.cell.bias_hh.zero_()
            self.out.weight.copy_(P["word.W"])
            self.out.bias.copy_(P["word.b"])

    @torch.no_grad()
    def generate(self, src, max_len, trace=False):
        m, (h, _c) = self.enc(self.enc_embed[src])  # m: (B, S, H)
        h = h[0]
        c = torch.zeros_like(h)  # from (h = enc.h[last]): c starts at zeros
        keys = m @ self.W_k.T  # W_k @ m, once
        WqT = self.W_q.T
        prev = torch.full((src.shape[0],), START, dtype=torch.long)
        done = torch.zeros(src.shape[0], dtype=torch.bool)
        toks, logits, attns = [], [], []
        for _ in range(max_len):
            x = self.dec_embed[prev]
            score = torch.tanh(keys + (h @ WqT)[:, None]) @ self.v  # (B, S)
            a = torch.softmax(score, -1)
            ctx = torch.bmm(a[:, None], m)[:, 0]  # sum(a * m)
            h, c = self.cell(torch.cat([x, ctx], -1), (h, c))
            z = self.out(h)
            tok = z[:, FIRST:].argmax(-1) + FIRST  # never <pad> or <s>, as seqdsl
            if trace:
                logits.append(z)
                attns.append(a)
            toks.append(tok)
            done |= tok == END
            if done.all():
                break
            prev = tok
        toks = torch.stack(toks, 1)
        return (toks, torch.stack(logits, 1), torch.stack(attns, 1)) if trace else toks


class CharByHand:
    """The hand-written PyTorch greedy sampler for CharLM, with seqdsl's weights."""

    def __init__(self, exe):
        P = exe.params
        self.V, H = P["r.W_ii"].shape[1], P["r.W_hi"].shape[0]
        self.cell = torch.nn.LSTMCell(self.V, H)
        self.out = torch.nn.Linear(H, self.V)
        with torch.no_grad():
            self.cell.weight_ih.copy_(cat(P, ["r.W_ii", "r.W_if", "r.W_ig", "r.W_io"]))
            self.cell.weight_hh.copy_(cat(P, ["r.W_hi", "r.W_hf", "r.W_hg", "r.W_ho"]))
            self.cell.bias_ih.copy_(cat(P, ["r.b_ii", "r.b_if", "r.b_ig", "r.b_io"]))
            self.cell.bias_hh.copy_(cat(P, ["r.b_hi", "r.b_hf", "r.b_hg", "r.b_ho"]))
            self.out.weight.copy_(P["char.W"])
            self.out.bias.copy_(P["char.b"])

    @torch.no_grad()
    def generate(self, batch, max_len, trace=False):
        H = self.cell.hidden_size
        h = torch.zeros(batch, H)
        c = torch.zeros(batch, H)
        prev = torch.full((batch,), START, dtype=torch.long)
        done = torch.zeros(batch, dtype=torch.bool)
        toks, logits = [], []
        for _ in range(max_len):
            x = torch.nn.functional.one_hot(prev, self.V).float()
            h, c = self.cell(x, (h, c))
            z = self.out(h)
            tok = z[:, FIRST:].argmax(-1) + FIRST  # never <pad> or <s>, as seqdsl
            if trace:
                logits.append(z)
            toks.append(tok)
            done |= tok == END
            if done.all():
                break
            prev = tok
        toks = torch.stack(toks, 1)
        return (toks, torch.stack(logits, 1)) if trace else toks


def step_logits(exe, state, toks, y):
    """seqdsl's own step, fed the given tokens (teacher forcing): its logits and other outputs per step."""
    prev = torch.full((toks.shape[0],), START, dtype=torch.long)
    outs = []
    with torch.no_grad():
        for t in range(toks.shape[1]):
            out, state = exe.step(state, **{y: prev})
            outs.append(out)
            prev = toks[:, t]
    return {k: torch.stack([o[k] for o in outs], 1) for k in outs[0]}


def check_attn(exe, hand, src, max_len) -> tuple:
    got = exe.generate(src=src, max_len=max_len)
    toks, logits, attn = hand.generate(src, max_len, trace=True)
    assert got.tokens.shape == tuple(toks.shape), (got.tokens.shape, toks.shape)
    diff = int((got.tokens != toks.numpy()).sum())
    assert diff == 0, f"AttnTranslate: the hand-written loop chose {diff} tokens other than seqdsl's"
    ref = step_logits(exe, exe.begin(src=src), toks, "word")
    err_z = (ref["word"] - logits).abs().max().item()
    err_a = max((ref["attn"] - attn).abs().max().item(), float(np.abs(got.outputs["attn"] - attn.numpy()).max()))
    assert err_z < 1e-4 and err_a < 1e-5, (err_z, err_a)
    return got.tokens, err_z, err_a


def check_char(exe, hand, n) -> tuple:
    got = exe.generate(batch=1, max_len=n)
    toks, logits = hand.generate(1, n, trace=True)
    diff = int((got.tokens != toks.numpy()).sum())
    assert got.tokens.shape == tuple(toks.shape) and diff == 0, \
        f"CharLM: the hand-written loop chose {diff} tokens other than seqdsl's"
    err_z = (step_logits(exe, exe.begin(batch=1), toks, "char")["char"] - logits).abs().max().item()
    assert err_z < 1e-4, err_z
    return got.tokens, err_z


def row(what, ref_name, ref_t, t, target="", steps=None, ratio=None) -> None:
    """`ratio`: the paired ratio (timing.paired), else the ratio of the two medians."""
    per = f"{t / steps * 1e3:9.3f}" if steps else f"{'':9}"
    ratio = t / ref_t if ratio is None else ratio
    print(f"{what:46} {t * 1e3:10.2f} {per} {ref_name:>14} {ref_t * 1e3:10.2f} {ratio:7.2f}  {target}")


def profile(attn, src, char) -> None:
    """cProfile: seqdsl steps of AttnTranslate (after begin), then one generate of each kind."""
    state = attn.begin(src=src)
    prev = torch.full((src.shape[0],), START, dtype=torch.long)
    with torch.no_grad():
        attn.step(state, word=prev)
        pr = cProfile.Profile()
        pr.enable()
        for _ in range(200):
            attn.step(state, word=prev)
        pr.disable()
    print("\n--- cProfile: 200 x AttnTranslate exe.step (B=32, S=20), by own time ---")
    pstats.Stats(pr).sort_stats("tottime").print_stats(15)
    for title, fn in (("AttnTranslate generate(max_len=50)", lambda: attn.generate(src=src, max_len=50)),
                      (f"AttnTranslate generate(max_len=50, beam={BEAM})",
                       lambda: attn.generate(src=src, max_len=50, beam=BEAM)),
                      ("CharLM generate(batch=1, max_len=1000)", lambda: char.generate(batch=1, max_len=1000))):
        fn()
        pr = cProfile.Profile()
        pr.enable()
        fn()
        pr.disable()
        print(f"\n--- cProfile: {title}, by own time ---")
        pstats.Stats(pr).sort_stats("tottime").print_stats(15)


def step_loop(exe, y, rows, max_len, **inputs):
    """seqdsl's begin and step driven by hand, argmax in torch: the step module's cost without the
    search's bookkeeping (log-softmax, log-probabilities, end checks on the host)."""
    with torch.no_grad():
        state = exe.begin(**inputs)
        prev = torch.full((rows,), START, dtype=torch.long)
        toks = []
        for _ in range(max_len):
            out, state = exe.step(state, **{y: prev})
            prev = out[y][:, FIRST:].argmax(-1) + FIRST
            toks.append(prev)
        return torch.stack(toks, 1)


def main() -> None:
    quick = "--quick" in sys.argv
    threads = next((int(a.split("=", 1)[1]) for a in sys.argv if a.startswith("--threads=")), 2)
    torch.set_num_threads(threads)  # --threads=1 when another job holds a core: two would spin against it
    torch.manual_seed(0)
    max_len, chars, repeat, repeat_long = (MAX_LEN, CHARS, 15, 7) if not quick else (5, (10, 20, 40), 2, 2)
    print(f"float32, cpu, torch {torch.__version__}, threads {torch.get_num_threads()}"
          f"{', QUICK (few steps: figures not meaningful)' if quick else ''}")
    t_all = time.perf_counter()

    attn_path, tasks_path = ROOT / "specs/attention.seq", ROOT / "specs/tasks.seq"
    attn = seqdsl.compile(attn_path, name="AttnTranslate", backend="torch").eval()
    never_end(attn, "word.b")
    attn_np = to_numpy_exe(attn, attn_path, "AttnTranslate")
    hand_attn = AttnByHand(attn)
    src = torch.randint(4, attn.params["enc_embed.weight"].shape[0], (B, S))
    src_np = src.numpy()

    char = seqdsl.compile(tasks_path, name="CharLM", backend="torch").eval()
    never_end(char, "char.b")
    char_np = to_numpy_exe(char, tasks_path, "CharLM")
    hand_char = CharByHand(char)
    n = chars[-1]

    # correctness first: the same tokens, close logits
    toks_attn, err_z, err_a = check_attn(attn, hand_attn, src, max_len)
    toks_char, err_c = check_char(char, hand_char, n)
    assert (step_loop(attn, "word", B, max_len, src=src).numpy() == toks_attn).all()
    same_np_attn = float((attn_np.generate(src=src_np, max_len=max_len).tokens == toks_attn).mean())
    same_np_char = float((char_np.generate(batch=1, max_len=n).tokens == toks_char).mean())
    print(f"checks: the hand-written loops choose seqdsl's tokens exactly (AttnTranslate {toks_attn.shape}, "
          f"CharLM {toks_char.shape});\n        max |logit diff| {err_z:.1e} / {err_c:.1e}, max |attn diff| "
          f"{err_a:.1e}; the NumPy backend's tokens equal torch's: {same_np_attn:.1%} / {same_np_char:.1%}")

    # torch first, NumPy after, never interleaved: OpenBLAS's threads keep spinning after a NumPy
    # matmul and slow the torch calls that follow them on 2 cores (3x on seqdsl's torch steps).
    # Within a group the calls alternate, so a burst of load elsewhere hits all of them.
    ta, ra = paired({"ours": lambda: attn.generate(src=src, max_len=max_len),
                     "hand": lambda: hand_attn.generate(src, max_len),
                     "loop": lambda: step_loop(attn, "word", B, max_len, src=src)}, repeat, "hand")
    tb, rb = paired({"greedy": lambda: attn.generate(src=src, max_len=max_len),
                     "beam": lambda: attn.generate(src=src, max_len=max_len, beam=BEAM)}, repeat_long, "greedy")
    tc, rc = paired({"ours": lambda: char.generate(batch=1, max_len=n),
                     "hand": lambda: hand_char.generate(1, n),
                     "loop": lambda: step_loop(char, "char", 1, n, batch=1)}, repeat_long, "hand")
    lin = timeit({k: (lambda k=k: char.generate(batch=1, max_len=k)) for k in chars}, repeat_long)
    na = timeit({"greedy": lambda: attn_np.generate(src=src_np, max_len=max_len),
                 "beam": lambda: attn_np.generate(src=src_np, max_len=max_len, beam=BEAM)}, repeat_long)
    nc = timeit({"ours": lambda: char_np.generate(batch=1, max_len=n)}, repeat_long)
    lin_np = timeit({k: (lambda k=k: char_np.generate(batch=1, max_len=k)) for k in chars}, repeat_long)

    print(f"\n{'':46} {'time (ms)':>10} {'ms/step':>9} {'reference':>14} {'ref (ms)':>10} {'ratio':>7}")
    print(f"AttnTranslate, B={B}, S={S}, {max_len} tokens (greedy unless said)")
    row("  1. seqdsl torch generate", "hand torch", ta["hand"], ta["ours"], "(target <= 1.1)", max_len, ra["ours"])
    row("     seqdsl torch begin + step loop, argmax", "hand torch", ta["hand"], ta["loop"], "(breakdown)", max_len,
        ra["loop"])
    row(f"  3. seqdsl torch generate, beam {BEAM}", "seqdsl greedy", tb["greedy"], tb["beam"], "(target <= 6)",
        max_len, rb["beam"])
    row("  5. seqdsl numpy generate", "hand torch", ta["hand"], na["greedy"], "(information)", max_len)
    row(f"  5. seqdsl numpy generate, beam {BEAM}", "numpy greedy", na["greedy"], na["beam"], "(information)",
        max_len)
    print(f"CharLM, batch 1, {n} characters")
    row("  2. seqdsl torch generate", "hand torch", tc["hand"], tc["ours"], "(target <= 1.1)", n, rc["ours"])
    row("     seqdsl torch begin + step loop, argmax", "hand torch", tc["hand"], tc["loop"], "(breakdown)", n,
        rc["loop"])
    row("  5. seqdsl numpy generate", "hand torch", tc["hand"], nc["ours"], "(information)", n)

    print(f"\n4. linearity: CharLM greedy generate, batch 1: time per character, and its ratio to the "
          f"{chars[0]}-character one (target: about 1)")
    print(f"{'characters':>12} {'torch ms/char':>14} {'ratio':>7} {'numpy ms/char':>14} {'ratio':>7}")
    for k in chars:
        print(f"{k:12d} {lin[k] / k * 1e3:14.4f} {lin[k] / k / (lin[chars[0]] / chars[0]):7.2f} "
              f"{lin_np[k] / k * 1e3:14.4f} {lin_np[k] / k / (lin_np[chars[0]] / chars[0]):7.2f}")
    print(f"\ntotal {time.perf_counter() - t_all:.0f} s")

    if "--profile" in sys.argv:
        profile(attn, src, char)


if __name__ == "__main__":
    main()
