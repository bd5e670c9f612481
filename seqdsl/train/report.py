"""The end of a run: the summary `seqdsl.train` returns, and the few lines it prints.

In:  a finished `loop.Run` (its options, history, best epoch, step count, time, files).
Out: `summarize(run)` → {"out", "model", "backend", "sizes", "steps", "epochs", "stopped",
     "train_loss", "valid", "best", "time_s", "tokens_per_s", "files": {...}, "history"}; the
     summary lines go to stderr through the run's progress (nothing when progress is off).
"""

from __future__ import annotations

import time

from .metrics import describe

STOPPED = {"epochs": "the epochs asked for are done", "steps": "the steps asked for are done",
           "early": "early stopping: the validation loss stopped improving"}


def summarize(run) -> dict:
    opts, out = run.opts, run.out
    last = run.history[-1] if run.history else {}
    files = {"weights": run.weights_path, "vocab": out / "vocab.json", "metrics": out / "metrics.jsonl",
             "plot": out / "loss.png", "checkpoint": run.ckpt_path}
    files = {k: str(v) for k, v in files.items() if v.exists()}
    elapsed = run.elapsed + time.perf_counter() - run.t0 if run.history else run.elapsed
    res = {"out": str(out), "model": run.prep.exe.name, "backend": opts.backend, "sizes": run.prep.sizes,
           "steps": run.step, "epochs": sum(1 for e in run.history if not e.get("partial")),
           "stopped": run.stopped, "train_loss": last.get("train_loss"), "valid": last.get("valid"),
           "best": run.best, "time_s": elapsed, "tokens_per_s": run.progress.tokens_per_s(),
           "files": files, "history": run.history}
    _print(run, res)
    return res


def _print(run, res: dict) -> None:
    say = run.progress.write
    bound = ", ".join(f"{k}={v}" for k, v in run.prep.bound.items())
    part = " and part of one" if run.history and run.history[-1].get("partial") else ""
    say(f"trained {res['model']} ({res['backend']}) for {res['steps']} steps, {res['epochs']} epochs{part} in "
        f"{res['time_s']:.1f} s ({res['tokens_per_s']:,.0f} tokens/s); stopped: {STOPPED.get(res['stopped'], '?')}"
        + (f"; sizes from the data: {bound}" if bound else ""))
    best = res["best"]
    if best and best.get("valid"):
        say(f"best at epoch {best['epoch']} (step {best['step']}): {describe(best['valid'])}")
    elif res["train_loss"] is not None:
        say(f"last train loss {res['train_loss']:.4f} (no validation set: the weights are the last ones)")
    say("wrote " + ", ".join(res["files"].values()))
