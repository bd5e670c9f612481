"""Training speed: one step of Translate (specs/tasks.seq) vs a hand-written PyTorch loop, ratios
measured in the same run; and the share of a step that data loading takes.

- one training step (zero the gradients, forward, loss, backward, optimizer step) of Translate
  compiled with `seqdsl.compile(..., backend="torch")` and trained through
  `exe.loss(src=..., word=..., lengths=...)` + torch.optim.Adam, against the same model written by
  hand (nn.Embedding, an nn.LSTM encoder, an nn.LSTM decoder started from the encoder's final
  (h, c), nn.Linear, cross-entropy over the real positions; the decoder reads the target shifted
  right behind the start token 1) with the same optimizer on the same batches. The weights are
  copied so that both compute the same loss on the first batch (checked to 1e-5).
  Batch 64, 20 tokens (source and target), E = H = 256, Vs = Vt = 64. Target: seqdsl ≤ 1.05× hand.
- data loading: `seqdsl.data.Batches` over a `seqdsl data reverse` file (source lengths 10 to 19,
  read with `load_dataset` against the spec's fields), per batch of 64 including the conversion to
  torch tensors, against the seqdsl training step above. Target: < 5% of a step.

Median of the repeats after a warm-up; the two loops alternate within each repeat. CPU only.

Run: `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_train.py [--quick] [--threads N]`
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from timing import alternate  # noqa: E402

import seqdsl  # noqa: E402
from seqdsl.data import Batches, load_dataset, spec_fields  # noqa: E402

B, T, V, E, H = 64, 20, 64, 256, 256
START = 1


class Hand(torch.nn.Module):
    """Translate written by hand in PyTorch."""

    def __init__(self, vs: int, vt: int, e: int, h: int):
        super().__init__()
        self.src_embed = torch.nn.Embedding(vs, e)
        self.enc = torch.nn.LSTM(e, h, batch_first=True)
        self.tgt_embed = torch.nn.Embedding(vt, e)
        self.dec = torch.nn.LSTM(e, h, batch_first=True)
        self.out = torch.nn.Linear(h, vt)

    def loss(self, src, word, src_len, word_len):
        packed = torch.nn.utils.rnn.pack_padded_sequence(self.src_embed(src), src_len, batch_first=True,
                                                         enforce_sorted=False)
        _, (h, c) = self.enc(packed)
        prev = torch.cat([word.new_full((word.shape[0], 1), START), word[:, :-1]], 1)
        packed = torch.nn.utils.rnn.pack_padded_sequence(self.tgt_embed(prev), word_len, batch_first=True,
                                                         enforce_sorted=False)
        y, _ = self.dec(packed, (h, c))
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=word.shape[1])
        logits = self.out(y)
        mask = torch.arange(word.shape[1])[None, :] < word_len[:, None]
        return torch.nn.functional.cross_entropy(logits[mask], word[mask])


def copy_weights(exe, hand: Hand) -> None:
    P = exe.params
    cat = lambda pre, names: torch.cat([P[f"{pre}.{n}"] for n in names])
    with torch.no_grad():
        hand.src_embed.weight.copy_(P["enc_embed.weight"])
        hand.tgt_embed.weight.copy_(P["dec_embed.weight"])
        for pre, lstm in (("enc", hand.enc), ("dec", hand.dec)):
            lstm.weight_ih_l0.copy_(cat(pre, ["W_ii", "W_if", "W_ig", "W_io"]))
            lstm.weight_hh_l0.copy_(cat(pre, ["W_hi", "W_hf", "W_hg", "W_ho"]))
            lstm.bias_ih_l0.copy_(cat(pre, ["b_ii", "b_if", "b_ig", "b_io"]))
            lstm.bias_hh_l0.copy_(cat(pre, ["b_hi", "b_hf", "b_hg", "b_ho"]))
        hand.out.weight.copy_(P["word.W"])
        hand.out.bias.copy_(P["word.b"])


def make_batches(n: int, seed: int = 0) -> list:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        src = torch.randint(4, V, (B, T), generator=g)
        word = torch.randint(4, V, (B, T), generator=g)
        out.append((src, word, torch.full((B,), T, dtype=torch.int64), torch.full((B,), T, dtype=torch.int64)))
    return out


def main() -> None:
    quick = "--quick" in sys.argv
    if "--threads" in sys.argv:
        torch.set_num_threads(int(sys.argv[sys.argv.index("--threads") + 1]))
    repeat, warmup = (5, 2) if quick else (20, 3)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {B}, tokens {T}, E {E}, H {H}, "
          f"Vs = Vt = {V}; median of {repeat} after {warmup} warm-up")

    exe = seqdsl.compile(ROOT / "specs/tasks.seq", name="Translate", backend="torch",
                         sizes={"Vs": V, "Vt": V, "E": E, "H": H})
    hand = Hand(V, V, E, H)
    copy_weights(exe, hand)
    batches = make_batches(8)
    src, word, ls, lw = batches[0]
    with torch.no_grad():
        a = exe.loss(src=src, word=word, lengths={"src": ls, "word": lw}).item()
        b = hand.loss(src, word, ls, lw).item()
    assert abs(a - b) < 1e-5, (a, b)
    print(f"first-batch loss: seqdsl {a:.6f}, hand {b:.6f} (|diff| {abs(a - b):.1e})")

    opt_ours = torch.optim.Adam(exe.parameters(), lr=1e-3)
    opt_hand = torch.optim.Adam(hand.parameters(), lr=1e-3)
    state = {"ours": 0, "hand": 0}

    def step_ours():
        src, word, ls, lw = batches[state["ours"] % len(batches)]
        state["ours"] += 1
        opt_ours.zero_grad(set_to_none=True)
        exe.loss(src=src, word=word, lengths={"src": ls, "word": lw}).backward()
        opt_ours.step()

    def step_hand():
        src, word, ls, lw = batches[state["hand"] % len(batches)]
        state["hand"] += 1
        opt_hand.zero_grad(set_to_none=True)
        hand.loss(src, word, ls, lw).backward()
        opt_hand.step()

    m = alternate({"hand": step_hand, "ours": step_ours}, repeat, warmup)
    ratio = m["ours"] / m["hand"]
    print(f"{'training step':22} {'hand (ms)':>10} {'seqdsl (ms)':>12} {'ratio':>6}")
    print(f"{'Translate':22} {m['hand'] * 1e3:10.2f} {m['ours'] * 1e3:12.2f} {ratio:6.3f}   "
          f"target <= 1.05: {'ok' if ratio <= 1.05 else 'MISSED'}")

    # data loading: a reverse file with sources of 10 to 19 digits (20 tokens with </s>)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reverse.jsonl"
        n = 640 if quick else 6400
        subprocess.run([sys.executable, "-m", "seqdsl", "data", "reverse", "-n", str(n), "--seed", "1",
                        "--min-len", "10", "--max-len", "19", "-o", str(path)], check=True, capture_output=True)
        fields = spec_fields(exe)
        t0 = time.perf_counter()
        ds = load_dataset(str(path), fields)
        t_load = time.perf_counter() - t0
        batcher = Batches(ds, batch_size=B, seed=0)
        per = []
        for e in range(3 if quick else 5):
            t0 = time.perf_counter()
            k = 0
            for bt in batcher.epoch(e):
                {key: torch.from_numpy(np.asarray(v)) for key, v in bt.inputs.items()}
                {key: torch.from_numpy(np.asarray(v)) for key, v in bt.lengths.items()}
                k += 1
            per.append((time.perf_counter() - t0) / k)
        t_batch = statistics.median(per[1:])
        real = [_tensors(bt) for bt in batcher.epoch(0)][:8]
    share = t_batch / m["ours"]
    print(f"data: load_dataset of {n} examples {t_load * 1e3:.1f} ms once ({t_load / n * 1e6:.1f} us/example); "
          f"Batches {t_batch * 1e3:.3f} ms per batch of {B} = {share * 100:.2f}% of a seqdsl step   "
          f"target < 5%: {'ok' if share < 0.05 else 'MISSED'}")

    # the same two loops on the file's own batches: mixed lengths, as `seqdsl train` feeds them
    batches[:] = real
    distinct = sorted({len(set(b[2].tolist())) for b in real} | {len(set(b[3].tolist())) for b in real})
    m = alternate({"hand": step_hand, "ours": step_ours}, repeat, warmup)
    print(f"{'Translate, real batches':22} {m['hand'] * 1e3:10.2f} {m['ours'] * 1e3:12.2f} "
          f"{m['ours'] / m['hand']:6.3f}   (lengths 11-20, {'/'.join(map(str, distinct))} distinct per batch)")


def _tensors(bt) -> tuple:
    """(src, word, src lengths, word lengths) of a `Batches` batch, as torch tensors."""
    return tuple(torch.from_numpy(np.asarray(d[k])) for d, k in
                 ((bt.inputs, "src"), (bt.inputs, "word"), (bt.lengths, "src"), (bt.lengths, "word")))


if __name__ == "__main__":
    main()
