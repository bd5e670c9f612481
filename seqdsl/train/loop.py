"""`seqdsl.train(...)`: learn a spec's parameters from a data file by gradient descent (docs/train.md).

In:  a spec and the model to train, the training (and validation) data file, the run directory
     DIR and the options (`options.Options`).
Out: DIR/weights.safetensors (torch) or DIR/weights.npz (numpy): the best weights by validation
     loss (the last, without a validation set); DIR/vocab.json; DIR/metrics.jsonl (a line per
     step and per epoch); DIR/loss.png; DIR/checkpoint (the whole state of the run, after every
     epoch and every `checkpoint_every` steps); a progress bar and a summary on stderr; and the
     summary as a dict. Every mistake is a `SpecError` (a NaN or inf loss or gradient included:
     the message names the step; the last checkpoint stays as it was).

Exact resume: everything a step depends on is a function of the saved state: the batches of
epoch e come from (seed, e) (`Batches.epoch(e, start=k)` skips the k done), the dropout masks
of step s from (seed, s), the learning rate from the step and the plateau state; the weights,
the optimizer's moments and the RNG states are saved bit for bit. The metrics log is cut back to
the length the checkpoint recorded, so a resumed run's log reads as one run's.
"""

from __future__ import annotations

import math
import os
import random
import time
from pathlib import Path

import numpy as np

from ..backends.validate import InputError
from ..errors import SpecError
from . import checkpoint, dist, faults, options
from .metrics import MetricsLog, Validation, describe
from .plot import draw
from .progress import Progress
from .schedule import Schedule


def step_seed(seed: int, step: int, rank: int | None = None) -> int:
    """The seed of step `step`'s dropout masks: a function of the run's seed and the step alone (and of
    the process's rank when several share the batch)."""
    return int(np.random.SeedSequence([seed, step] + ([] if rank is None else [rank])).generate_state(1)[0])


def _rng_state() -> tuple:
    """(tensors, JSON) of Python's and NumPy's global random states."""
    st = np.random.get_state(legacy=False)
    py = random.getstate()
    return ({"rng/numpy": np.asarray(st["state"]["key"], dtype=np.uint32)},
            {"numpy": {"pos": int(st["state"]["pos"]), "has_gauss": int(st["has_gauss"]), "gauss": float(st["gauss"])},
             "python": [py[0], list(py[1]), py[2]]})


def _set_rng_state(tensors: dict, state: dict) -> None:
    n = state["numpy"]
    np.random.set_state({"bit_generator": "MT19937", "state": {"key": tensors["rng/numpy"], "pos": n["pos"]},
                         "has_gauss": n["has_gauss"], "gauss": n["gauss"]})
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))


class Run:
    """One training run in its directory: set up fresh or from DIR/checkpoint, then `go()`."""

    def __init__(self, opts: options.Options):
        self.opts, self.out = opts, Path(opts.out)
        self.rank, self.world = dist.rank_and_world()
        self.main = self.rank == 0  # with several processes, the first writes the files
        if self.world > 1 and opts.backend != "torch":
            raise SpecError(f"the {opts.backend} backend trains in one process; run it without torchrun "
                            f"(WORLD_SIZE is {self.world})")
        self.ckpt_path = self.out / "checkpoint"
        self.log = MetricsLog(self.out / "metrics.jsonl", enabled=self.main)
        self.step = self.epoch = self.batch_index = self.epoch_start = 0
        self.history: list = []
        self.step_losses: list = []
        self.best: dict | None = None
        self.bad_epochs, self.stopped, self.elapsed, self.writes = 0, None, 0.0, 0
        self.saved_step: int | None = None

    # ---- set-up ------------------------------------------------------------------------------
    def _make_dir(self) -> None:
        if self.out.exists() and not self.out.is_dir():
            raise SpecError(f"cannot use {self.out} as the run directory: it is not a folder")
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SpecError(f"cannot create the run directory {self.out}: {e.strerror or e}") from None
        if not os.access(self.out, os.W_OK | os.X_OK):
            raise SpecError(f"cannot write in the run directory {self.out}: permission denied")

    def _sweep(self) -> None:
        """Remove the temporary files a killed run may have left half-written (`files.write_file`'s
        `.NAME.XXXXXXXX.tmp`): whole files are only ever renamed into place."""
        for name in ("checkpoint", "vocab.json", "loss.png", self.engine.weights_name):
            for tmp in self.out.glob(f".{name}.*.tmp"):
                try:
                    tmp.unlink()
                except OSError:
                    pass

    def _saved(self):
        """(tensors, state) of DIR/checkpoint when resuming from it; None for a fresh run."""
        exists = self.ckpt_path.exists()
        if exists and not self.opts.resume:
            raise SpecError(f"{self.out} already holds a training run ({self.ckpt_path})", None,
                            "continue it with --resume (resume=True), or choose another --out")
        if not (exists and self.opts.resume):
            return None
        tensors, state = checkpoint.read(self.ckpt_path)
        if not isinstance(state, dict) or not {"run", "limits", "hashes", "sizes"} <= set(state):
            raise SpecError(f"cannot resume from {self.ckpt_path}: it is damaged or from another version of seqdsl")
        problems = options.resume_problems(state["run"], self.opts)
        if problems:
            raise SpecError(f"cannot resume the run in {self.out} with other options: " + "; ".join(problems),
                            None, "resume with the options the run was started with")
        limits = {"epochs": self.opts.epochs, "steps": self.opts.steps}
        if self.opts.schedule == "cosine" and state["limits"] != limits:
            was = ", ".join(f"{k}={v}" for k, v in state["limits"].items() if v is not None)
            raise SpecError(f"cannot resume the run in {self.out} with another length: a cosine schedule is shaped by "
                            f"the run's length ({was})", None, "resume with the same --epochs or --steps")
        return tensors, state

    def setup(self) -> None:
        from .prepare import file_hash, prepare

        opts = self.opts
        self._make_dir()
        saved = self._saved()
        vocab_path = self.out / "vocab.json"
        vocabs = None
        if saved is not None and vocab_path.exists():
            from ..vocab import load as load_vocabs

            vocabs = load_vocabs(vocab_path)
        hashes = {k: file_hash(p) for k, p in (("spec", opts.spec), ("data", opts.data), ("valid", opts.valid)) if p}
        if saved is not None and saved[1]["hashes"] != hashes:
            changed = [k for k in hashes if saved[1]["hashes"].get(k) != hashes[k]]
            raise SpecError(f"cannot resume the run in {self.out}: the {' and '.join(changed)} file changed since "
                            "it started", None, "resume with the files the run was started with")
        self.hashes = hashes
        self.prep = prep = prepare(opts, vocabs)
        self._make_engine(prep)
        if self.main:
            self._sweep()
        if saved is not None:
            try:
                self._restore(*saved)
            except (KeyError, TypeError, ValueError, IndexError) as e:
                raise SpecError(f"cannot resume from {self.ckpt_path}: it is damaged or from another version of "
                                f"seqdsl ({type(e).__name__}: {e})") from None
        else:
            self._seed_globals()
            if prep.train.vocabs and self.main:
                from ..vocab import save as save_vocabs

                save_vocabs(vocab_path, prep.train.vocabs)
        self.log.open(None if saved is None else saved[1]["log_offset"])

    def _seed_globals(self) -> None:
        """A fresh run seeds Python's, NumPy's (and the engine's: torch's) global generators from its seed,
        so that their states, saved in every checkpoint, are part of the run too."""
        random.seed(self.opts.seed)
        np.random.seed(self.opts.seed)
        self.engine.seed(self.opts.seed)

    def _make_engine(self, prep) -> None:
        from ..data import Batches

        opts = self.opts
        if opts.backend == "torch":
            try:
                import torch  # noqa: F401
            except ImportError:
                raise SpecError("the torch backend needs torch", None,
                                "install it (pip install 'seqdsl[torch]'), or train with --backend numpy") from None
            from .torch_engine import TorchEngine as Engine
        else:
            from .numpy_engine import NumpyEngine as Engine
        self.engine = Engine(prep.exe, opts)
        self.batches = Batches(prep.train, opts.batch, opts.seed, bucket=True, shuffle=True, rank=self.rank,
                               world=self.world)
        if len(self.batches) == 0:
            raise SpecError(f"{opts.data} holds no examples to train on")
        self.valid_batches = Batches(prep.valid, opts.batch, opts.seed, bucket=True, shuffle=False) \
            if prep.valid is not None else None
        total = opts.steps or opts.epochs * len(self.batches)
        self.schedule = Schedule(opts.schedule, opts.warmup, total)
        self.weights_path = self.out / self.engine.weights_name
        self.predicted = prep.exe._ns["PREDICTED"]

    def _restore(self, tensors: dict, state: dict) -> None:
        if state["sizes"] != self.prep.sizes:
            raise SpecError(f"cannot resume the run in {self.out}: it trained at the sizes {state['sizes']}, "
                            f"and these options give {self.prep.sizes}")
        self.engine.load(tensors, state["engine"])
        _set_rng_state(tensors, state["rng"])
        self.schedule.load(state["schedule"])
        self.step, self.epoch, self.batch_index = state["step"], state["epoch"], state["batch"]
        self.epoch_start, self.history, self.best = state["epoch_start"], state["history"], state["best"]
        self.bad_epochs, self.elapsed = state["bad_epochs"], state["elapsed"]
        self.stopped = state["stopped"]
        self.step_losses = [float(x) for x in tensors["history/step_loss"]]
        self.saved_step = self.step
        if self.stopped in ("epochs", "steps") and not self._limit_reached():
            self.stopped = None  # resumed with more epochs or steps than the run had

    # ---- the checkpoint ----------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        offset = self.log.sync()
        tensors, engine_state = self.engine.state()
        rng_tensors, rng_state = _rng_state()
        tensors.update(rng_tensors)
        tensors["history/step_loss"] = np.asarray(self.step_losses, dtype=np.float64)
        state = {"run": options.fingerprint(self.opts), "hashes": self.hashes, "sizes": self.prep.sizes,
                 "step": self.step, "epoch": self.epoch, "batch": self.batch_index, "epoch_start": self.epoch_start,
                 "limits": {"epochs": self.opts.epochs, "steps": self.opts.steps},
                 "schedule": self.schedule.state(), "engine": engine_state, "rng": rng_state,
                 "history": self.history, "best": self.best, "bad_epochs": self.bad_epochs, "stopped": self.stopped,
                 "log_offset": offset, "elapsed": self.elapsed + time.perf_counter() - self.t0}
        self.writes += 1
        if not self.main:
            return
        try:
            checkpoint.write(self.ckpt_path, tensors, state, faults.writer(self.writes))
        except SpecError as e:
            kept = (f"the previous checkpoint (step {self.saved_step}) is intact" if self.saved_step is not None
                    else "no checkpoint had been written yet")
            raise SpecError(f"{e.message}; training stopped at step {self.step}, and {kept}", None,
                            "free some space (or make the run directory writable) and continue with --resume"
                            ) from None
        self.saved_step = self.step

    # ---- training ----------------------------------------------------------------------------
    def _limit_reached(self) -> bool:
        if self.opts.steps is not None:
            return self.step >= self.opts.steps
        return self.epoch >= self.opts.epochs

    def _nonfinite(self, loss: float, norm: float) -> SpecError:
        what = f"the loss is {loss}" if not math.isfinite(loss) else f"the gradient norm is {norm}"
        where = f"step {self.step + 1} (epoch {self.epoch + 1}, batch {self.batch_index + 1})"
        kept = (f"the last good checkpoint ({self.ckpt_path}, step {self.saved_step}) is kept"
                if self.saved_step is not None else "no checkpoint had been written yet")
        self.log.write({"type": "stopped", "step": self.step + 1, "reason": what})
        return SpecError(f"training stopped at {where}: {what}; the parameters were not updated, and {kept}",
                         None, "lower the learning rate (--lr), clip the gradients (--clip X) or add --warmup N")

    def _refused(self, e: Exception, what: str) -> SpecError:
        return SpecError(f"{self.prep.exe.name} refused {what}: {e}", None,
                         "check that the data's fields have the shapes the spec declares (seqdsl check shows them)")

    def train_step(self, batch) -> None:
        lr = self.opts.lr * self.schedule.factor(self.step)
        try:
            loss, norm = self.engine.step(batch, lr, step_seed(self.opts.seed, self.step,
                                                               self.rank if self.world > 1 else None))
        except InputError as e:
            raise self._refused(e, f"the batch of step {self.step + 1} (examples on lines "
                                   f"{self._lines(self.prep.train, batch)} of {self.opts.data})") from None
        if not (math.isfinite(loss) and math.isfinite(norm)):
            raise self._nonfinite(loss, norm)
        self.step += 1
        self.batch_index += 1
        faults.at("kill-step", self.step)
        self.step_losses.append(loss)
        self.log.write({"type": "step", "step": self.step, "epoch": self.epoch + 1, "batch": self.batch_index,
                        "loss": loss, "lr": lr, "grad_norm": norm, "tokens": int(batch.tokens)})
        faults.at("kill-log", self.step)
        self.progress.update(loss, int(batch.tokens), self.epoch)

    @staticmethod
    def _lines(ds, batch) -> str:
        lines = sorted(ds.lines[i] for i in batch.indices)
        return ", ".join(map(str, lines[:5])) + (", ..." if len(lines) > 5 else "")

    def validate(self) -> dict | None:
        if self.valid_batches is None:
            return None
        acc = Validation(self.predicted)
        for b in self.valid_batches.epoch(0):
            try:
                outputs, parts = self.engine.evaluate(b)
            except InputError as e:
                raise self._refused(e, f"a validation batch (examples on lines {self._lines(self.prep.valid, b)} "
                                       f"of {self.opts.valid})") from None
            acc.add(outputs, parts, b)
        return acc.result()

    def end_epoch(self) -> None:
        partial = self.batch_index < len(self.batches)
        losses = self.step_losses[self.epoch_start:]
        valid = self.validate()
        record = {"type": "epoch", "epoch": self.epoch + 1, "step": self.step,
                  "train_loss": float(np.mean(losses)) if losses else None, "valid": valid,
                  "lr": self.opts.lr * self.schedule.factor(self.step), "partial": partial,
                  "time_s": round(self.elapsed + time.perf_counter() - self.t0, 3)}
        loss = valid["loss"] if valid else None
        improved = loss is None or (math.isfinite(loss) and (self.best is None or loss < self.best["loss"]))
        if improved:
            if self.main:
                self.engine.save_weights(self.weights_path)
            self.best, self.bad_epochs = {"epoch": self.epoch + 1, "step": self.step, "loss": loss, "valid": valid}, 0
        else:
            self.bad_epochs += 1
        record["best"] = improved
        self.history.append(record)
        self.log.write(record)
        self.schedule.epoch_end(loss)
        train = "" if record["train_loss"] is None else f"train loss {record['train_loss']:.4f}"
        self.progress.write(f"epoch {self.epoch + 1}{' (part)' if partial else ''}: " + " | ".join(
            [x for x in (train, describe(valid) if valid else "") if x]) + (" *" if improved and valid else ""))
        if self.main:
            draw(self.out / "loss.png", self.step_losses, self.history)
        if not partial:
            self.epoch, self.batch_index = self.epoch + 1, 0
        self.epoch_start = self.step
        if self.opts.patience is not None and self.bad_epochs >= self.opts.patience:
            self.stopped = "early"
        elif self._limit_reached():
            self.stopped = "steps" if self.opts.steps is not None else "epochs"
        self.save_checkpoint()

    def go(self) -> dict:
        self.t0 = time.perf_counter()
        total = self.opts.steps or self.opts.epochs * len(self.batches)
        self.progress = Progress(self.opts.progress and self.main, total, self.step, bar=self.stopped is None)
        if self.stopped is not None:
            self.progress.write(f"the run in {self.out} is finished ({self.stopped}); nothing to do")
        try:
            while self.stopped is None:
                for b in self.batches.epoch(self.epoch, start=self.batch_index):
                    self.train_step(b)
                    if self.opts.steps is not None and self.step >= self.opts.steps:
                        break
                    if self.step % self.opts.checkpoint_every == 0 and self.batch_index < len(self.batches):
                        self.save_checkpoint()
                self.end_epoch()
        finally:
            self.progress.close()
            self.log.close()
            self.engine.close()
        return self.summary()

    # ---- the end -----------------------------------------------------------------------------
    def summary(self) -> dict:
        from .report import summarize

        return summarize(self)


def train(spec, name=None, data=None, valid=None, out=None, epochs=None, steps=None, batch=32, lr=1e-3,
          optimizer="adam", clip=None, schedule=None, warmup=0, seed=0, resume=False, backend="torch", device="cpu",
          sizes=None, tokens="chars", mapping=None, patience=None, seq_len=None, max_len=None, progress=True,
          dtype="float32", checkpoint_every=None, weight_decay=None, fused=True) -> dict:
    """Train the model `name` of `spec` on `data`, writing the run into `out`; see docs/train.md."""
    opts = options.make(spec=spec, name=name, data=data, valid=valid, out=out, epochs=epochs, steps=steps,
                        batch=batch, lr=lr, optimizer=optimizer, clip=clip, schedule=schedule, warmup=warmup,
                        seed=seed, resume=resume, backend=backend, device=device, sizes=sizes, tokens=tokens,
                        mapping=mapping, patience=patience, seq_len=seq_len, max_len=max_len, progress=progress,
                        dtype=dtype, checkpoint_every=checkpoint_every, weight_decay=weight_decay, fused=fused)
    run = Run(opts)
    run.setup()
    return run.go()
