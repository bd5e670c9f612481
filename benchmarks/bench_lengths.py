"""Speed with `lengths=`: ratios measured in the same run.

1. The standard LSTM with lengths (torch, fused) forward+backward vs torch.nn.LSTM on the same
   PackedSequence. Target ≤ 1.1×.
2. Custom cells (the peephole LSTM, a generated loop) with lengths vs without, at the same padded
   shape: NumPy and torch forward, torch forward+backward. Target ≤ 1.15×. (Lengths that are all
   100 run the plain module: no mask at all.)
3. A batch with lengths vs the same batch padded to 100 without lengths (torch fused, which cannot
   skip the padding more cheaply than computing it): 32 different lengths from 10 to 100, and 4
   (a batch bucketed by length), forward and forward+backward, fresh lengths at every call.
4. The same for NumPy inference, which skips the padding (the standard LSTM and the peephole
   LSTM, both generated loops). Less than 1× where padding is skipped.
Shape (B, T, I, H) = (32, 100, 64, 256), float32, CPU.

Run: `.venv/bin/python benchmarks/bench_lengths.py` (part of `make bench`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from timing import alternate  # noqa: E402

import seqdsl  # noqa: E402
from seqdsl.interop import from_torch  # noqa: E402

B, T, I, H = 32, 100, 64, 256


REPEAT = 7


def spread(rng) -> np.ndarray:
    lens = rng.integers(10, T + 1, size=B)
    lens[0] = T
    return lens


def standard_lstm(rng) -> None:
    mod = seqdsl.compile(ROOT / "specs/lstm.seq", backend="torch", sizes={"I": I, "H": H})
    ref = torch.nn.LSTM(I, H, batch_first=True)
    from_torch(mod, ref)
    x = torch.randn(B, T, I)
    lens = spread(rng)
    lt = torch.as_tensor(lens)

    def ours():
        out, fin = mod(x=x, lengths={"x": lens})
        (out["y"].sum() + fin["h"].sum()).backward()

    def theirs():
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, lt, batch_first=True, enforce_sorted=False)
        y, (h, c) = ref(packed)
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=T)
        (y.sum() + h.sum()).backward()

    t = alternate({"ours": ours, "nn": theirs}, REPEAT)
    print(f"standard LSTM, lengths 10..100, fwd+bwd: seqdsl {t['ours'] * 1e3:8.2f} ms  "
          f"nn.LSTM packed {t['nn'] * 1e3:8.2f} ms  ratio {t['ours'] / t['nn']:.2f}  (target <= 1.1)")


def masked_vs_unmasked(rng) -> None:
    path = ROOT / "specs/peephole_lstm.seq"
    x = rng.normal(size=(B, T, I)).astype(np.float32)
    lens = spread(rng)
    full = np.full(B, T)
    exe = seqdsl.compile(path, sizes={"I": I, "H": H})
    mod = seqdsl.compile(path, backend="torch", sizes={"I": I, "H": H})
    xt = torch.from_numpy(x)

    def torch_run(lengths):
        def run():
            with torch.no_grad():
                mod(x=xt, lengths=lengths)
        return run

    # each backend timed on its own: NumPy's BLAS threads and torch's, run in turns, slow each other
    t = alternate({"np": lambda: exe(x=x), "np_len": lambda: exe(x=x, lengths={"x": lens}),
                   "np_full": lambda: exe(x=x, lengths={"x": full})}, repeat=9)
    t.update(alternate({"t": torch_run(None), "t_len": torch_run({"x": lens}), "t_full": torch_run({"x": full})},
                       repeat=9))
    xg = xt.clone().requires_grad_(True)

    def torch_train(lengths):
        def run():
            out, fin = mod(x=xg, lengths=lengths)
            (out["y"].sum() + fin["c"].sum()).backward()
        return run

    t.update(alternate({"g": torch_train(None), "g_len": torch_train({"x": lens}),
                        "g_full": torch_train({"x": full})}, repeat=9))
    for name, a, b, c in (("numpy", "np", "np_len", "np_full"), ("torch", "t", "t_len", "t_full"),
                          ("torch fwd+bwd", "g", "g_len", "g_full")):
        print(f"peephole LSTM ({name}): without lengths {t[a] * 1e3:8.2f} ms  with lengths 10..100 "
              f"{t[b] * 1e3:8.2f} ms ({t[b] / t[a]:.2f}x)  all 100 {t[c] * 1e3:8.2f} ms ({t[c] / t[a]:.2f}x)  "
              "(target <= 1.15)")


def lstm_call(mod, x, make, grad):
    """A call of the compiled standard LSTM on x with lengths from `make()` (None: padded, no
    lengths), forward only or forward and backward."""
    def f():
        lengths = None if make is None else {"x": make()}
        if grad:
            out, fin = mod(x=x, lengths=lengths)
            (out["y"].sum() + fin["c"].sum()).backward()
        else:
            with torch.no_grad():
                mod(x=x, lengths=lengths)
    return f


def spread_vs_padded(rng) -> None:
    """Lengths vs the same batch padded (no lengths), forward (inference) and forward+backward
    (training), fresh lengths at every call as in training. The fused kernel runs over the padded
    batch with the padding kept out (`_run_padded`), except in training with at most 4 distinct
    lengths, where it runs once per stretch of steps over which no sample ends (oneDNN sets each
    new shape up anew, ~0.5-1.4 ms here: a win for batches bucketed by length)."""
    mod = seqdsl.compile(ROOT / "specs/lstm.seq", backend="torch", sizes={"I": I, "H": H})
    x = torch.randn(B, T, I, requires_grad=True)
    cases = {"32 lengths 10..100": lambda: spread(rng),
             "4 lengths 25/50/75/100": lambda: rng.choice([25, 50, 75, 100], size=B)}
    run = lambda make, grad: lstm_call(mod, x, make, grad)  # noqa: E731

    for grad, what in ((False, "forward"), (True, "forward+backward")):
        t = alternate({"padded": run(None, grad), **{k: run(v, grad) for k, v in cases.items()}}, REPEAT)
        for k in cases:
            print(f"standard LSTM (torch, fused) {what}, {k} vs padded to 100 without lengths: "
                  f"{t[k] * 1e3:7.2f} ms vs {t['padded'] * 1e3:7.2f} ms  ratio {t[k] / t['padded']:.2f}")


def numpy_spread_vs_padded(rng) -> None:
    """NumPy inference runs only the samples still running (seqdsl/backends/emit_rows.py): the
    batch with lengths against the same batch padded to 100 without lengths, fresh lengths at
    every call. (Its gradients, `value_and_grad`, keep the masked loop over all T.)"""
    for spec in ("lstm", "peephole_lstm"):
        exe = seqdsl.compile(ROOT / f"specs/{spec}.seq", sizes={"I": I, "H": H})
        x = rng.normal(size=(B, T, I)).astype(np.float32)
        cases = {"32 lengths 10..100": lambda: spread(rng),
                 "4 lengths 25/50/75/100": lambda: rng.choice([25, 50, 75, 100], size=B)}
        runs = {"padded": lambda: exe(x=x)}
        runs.update({k: (lambda make=make: exe(x=x, lengths={"x": make()})) for k, make in cases.items()})
        t = alternate(runs, 9)
        for k in cases:
            print(f"{spec} (numpy) forward, {k} vs padded to 100 without lengths: "
                  f"{t[k] * 1e3:7.2f} ms vs {t['padded'] * 1e3:7.2f} ms  ratio {t[k] / t['padded']:.2f}")


def main() -> None:
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    print(f"(B, T, I, H) = {(B, T, I, H)}, float32, cpu, torch threads {torch.get_num_threads()}")
    standard_lstm(rng)
    masked_vs_unmasked(rng)
    spread_vs_padded(rng)
    numpy_spread_vs_padded(rng)


if __name__ == "__main__":
    main()
