"""seqdsl.train: the files a run writes, the metrics, early stopping, the sizes bound from the data, the
NumPy backend against torch (float64, the same losses to 1e-8), the NumPy optimizers against
torch.optim, the schedule, the pickle-free checkpoint, NaN stops, disk errors and bad options.

Tiny models (E=4, H=8) on tiny synthetic data written here; torch runs on one thread."""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

import seqdsl
from seqdsl.errors import SpecError

SPEC = ROOT / "specs" / "tasks.seq"
TINY = {"E": 4, "H": 8}
MODELS = """\
use "lstm.seq"
use "rnn.seq"

model Tagger(V = 10, K = 10, E = 4, H = 8) {
    in  src: seq<int>
    enc = LSTM(E, H) over dropout(embed(src, V, E), 0.2)
    out tag ~ categorical(linear(dropout(enc.y, 0.3), K))
}

model Reg(H = 4) {
    in  x: seq[2]
    r = RNN(2, H) over x
    out total: [1] ~ normal(linear(r.h[last], 1), 0.5)
}
"""


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def reverse_data(path, n: int, seed: int, letters: str = "abcde", max_len: int = 5):
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n):
            s = "".join(rng.choice(list(letters), rng.integers(1, max_len + 1)))
            f.write(json.dumps({"src": s, "word": s[::-1]}) + "\n")
    return path


def tagger_data(path, n: int, seed: int, src: str = "abcdefg", tags: str = "XYZ"):
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n):
            k = int(rng.integers(1, 7))
            f.write(json.dumps({"src": "".join(rng.choice(list(src), k)), "tag": "".join(rng.choice(list(tags), k))})
                    + "\n")
    return path


@pytest.fixture
def data(tmp_path):
    return reverse_data(tmp_path / "train.jsonl", 40, 0), reverse_data(tmp_path / "valid.jsonl", 12, 1)


@pytest.fixture
def models(tmp_path):
    p = tmp_path / "models.seq"
    p.write_text(MODELS)
    return p


def steps_of(out) -> list:
    return [json.loads(line) for line in open(out / "metrics.jsonl") if '"type": "step"' in line]


def epochs_of(out) -> list:
    return [json.loads(line) for line in open(out / "metrics.jsonl") if '"type": "epoch"' in line]


def quick(spec, out, **kw):
    opts = dict(name="Translate", sizes=dict(TINY), batch=8, lr=1e-2, progress=False, fused=False)
    opts.update(kw)
    return seqdsl.train(spec, out=out, **opts)


# ---- a run and its files ----------------------------------------------------------------------
def test_a_run_writes_weights_vocab_metrics_plot_and_checkpoint(tmp_path, data):
    import torch

    out = tmp_path / "run"
    res = quick(SPEC, out, data=data[0], valid=data[1], epochs=2, progress=True)
    for f in ("weights.safetensors", "vocab.json", "metrics.jsonl", "loss.png", "checkpoint"):
        assert (out / f).is_file(), f
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from seqdsl.vocab import load as load_vocabs

    vocabs = load_vocabs(out / "vocab.json")
    assert res["sizes"]["Vs"] == len(vocabs["src"]) == 9 and res["sizes"]["Vt"] == len(vocabs["word"]) == 9
    assert res["steps"] == 10 and res["epochs"] == 2 and res["stopped"] == "epochs"
    steps, epochs = steps_of(out), epochs_of(out)
    assert [s["step"] for s in steps] == list(range(1, 11))
    assert all(math.isfinite(s["loss"]) and s["tokens"] > 0 for s in steps)
    assert [e["epoch"] for e in epochs] == [1, 2]
    v = epochs[-1]["valid"]
    assert v["loss"] == pytest.approx(v["word"]["nll"]) and v["word"]["ppl"] == pytest.approx(math.exp(v["loss"]))
    assert 0 <= v["word"]["seq_acc"] <= v["word"]["token_acc"] <= 1
    # the best weights load without pickle into a fresh module of the same sizes
    mod = seqdsl.compile(SPEC, name="Translate", backend="torch", sizes=res["sizes"])
    mod.load(out / "weights.safetensors")
    best = res["best"]["step"]
    assert best in (5, 10)
    if best == 10:
        from safetensors.numpy import load_file

        last = load_file(str(out / "checkpoint"))
        assert all(torch.equal(p.detach(), torch.from_numpy(last[f"model/{k}"])) for k, p in mod.params.items())


def test_metrics_are_the_models_own(tmp_path, data):
    """The validation loss is what exe.loss gives on the whole set at once, the accuracies are counted."""
    import torch

    out = tmp_path / "run"
    res = quick(SPEC, out, data=data[0], valid=data[1], steps=3, batch=4)
    mod = seqdsl.compile(SPEC, name="Translate", backend="torch", sizes=res["sizes"], fused=False)
    from safetensors.numpy import load_file

    state = load_file(str(out / "checkpoint"))
    with torch.no_grad():
        for k, p in mod.params.items():
            p.copy_(torch.from_numpy(state[f"model/{k}"]))
    from seqdsl.data import Batches, load_dataset, spec_fields
    from seqdsl.vocab import load as load_vocabs

    ds = load_dataset(data[1], spec_fields(mod), vocabs=load_vocabs(out / "vocab.json"))
    b = next(Batches(ds, len(ds), 0, bucket=False, shuffle=False).epoch(0))
    mod.eval()
    inputs = {k: torch.as_tensor(v) for k, v in b.inputs.items()}
    with torch.no_grad():
        loss = float(mod.loss(**inputs, lengths=b.lengths))
        logits = mod(**inputs, lengths=b.lengths)[0]["word"].numpy()
    mask = np.arange(logits.shape[1])[None] < b.lengths["word"][:, None]
    right = (logits.argmax(-1) == b.inputs["word"]) & mask
    got = res["valid"]
    assert got["loss"] == pytest.approx(loss, rel=1e-5)
    assert got["word"]["token_acc"] == pytest.approx(right.sum() / mask.sum())
    assert got["word"]["seq_acc"] == pytest.approx(np.mean((right | ~mask).all(1)))
    assert res["epochs"] == 0 and epochs_of(out)[-1]["partial"] is True


def test_early_stopping_keeps_the_best_epoch(tmp_path, data):
    # a learning rate below float32's resolution of the weights: the validation loss never improves
    res = quick(SPEC, tmp_path / "run", data=data[0], valid=data[1], epochs=10, patience=2, lr=1e-12)
    assert res["stopped"] == "early" and res["epochs"] == 3 and res["best"]["epoch"] == 1


def test_sizes_are_bound_from_the_data(tmp_path, models):
    data = tagger_data(tmp_path / "tags.jsonl", 20, 0)
    res = seqdsl.train(models, name="Tagger", data=data, out=tmp_path / "a", steps=1, batch=8, progress=False,
                       backend="numpy")
    assert res["sizes"]["V"] == 4 + 7 and res["sizes"]["K"] == 4 + 3  # V and K both default to 10
    res = seqdsl.train(models, name="Tagger", data=data, out=tmp_path / "b", steps=1, batch=8, progress=False,
                       backend="numpy", sizes={"K": 9})
    assert res["sizes"]["K"] == 9
    with pytest.raises(SpecError, match=r"field 'tag' has 7 tokens, but Tagger takes K=5, which you set") as e:
        seqdsl.train(models, name="Tagger", data=data, out=tmp_path / "c", steps=1, progress=False,
                     backend="numpy", sizes={"K": 5})
    assert "--set K=7" in e.value.hint


# ---- NumPy gradient descent = torch's ------------------------------------------------------------
@pytest.mark.parametrize("optimizer, extra", [("adam", dict(clip=0.5, schedule="cosine", warmup=2)),
                                              ("adamw", dict(warmup=3)), ("sgd", dict(clip=0.1))])
def test_numpy_backend_takes_torch_steps_in_float64(tmp_path, models, optimizer, extra):
    """The same losses over the first steps (dropout in the model: the masks follow the step's seed)."""
    data = tagger_data(tmp_path / "tags.jsonl", 32, 0)
    kw = dict(name="Tagger", data=data, steps=6, batch=8, lr=0.05, dtype="float64", progress=False,
              optimizer=optimizer, **extra)
    seqdsl.train(models, out=tmp_path / "torch", backend="torch", **kw)
    seqdsl.train(models, out=tmp_path / "numpy", backend="numpy", **kw)
    a, b = steps_of(tmp_path / "torch"), steps_of(tmp_path / "numpy")
    assert len(a) == len(b) == 6
    for x, y in zip(a, b):
        assert abs(x["loss"] - y["loss"]) < 1e-8, (x, y)
        assert x["lr"] == y["lr"] and abs(x["grad_norm"] - y["grad_norm"]) < 1e-8
    assert a[-1]["loss"] < a[0]["loss"]


def test_numpy_optimizers_follow_torch_optim():
    import torch

    from seqdsl.train import numpy_optim

    rng = np.random.default_rng(0)
    shapes = {"W": (3, 4), "b": (4,)}
    for kind, wd in (("adam", 0.0), ("adam", 0.1), ("adamw", 0.01), ("sgd", 0.0), ("sgd", 0.05)):
        p_np = {k: rng.normal(size=s) for k, s in shapes.items()}
        p_t = {k: torch.tensor(v, requires_grad=True) for k, v in p_np.items()}
        opt_np = numpy_optim.make(kind, p_np, 0.1, wd)
        cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}.get(kind)
        opt_t = cls(p_t.values(), lr=0.1, weight_decay=wd) if cls else \
            torch.optim.SGD(p_t.values(), lr=0.1, momentum=numpy_optim.MOMENTUM, weight_decay=wd)
        for _ in range(5):
            grads = {k: rng.normal(size=s) for k, s in shapes.items()}
            for k, p in p_t.items():
                p.grad = torch.tensor(grads[k])
            norm_t = float(torch.nn.utils.clip_grad_norm_(list(p_t.values()), 1.0))
            g = {k: v.copy() for k, v in grads.items()}
            norm_np = numpy_optim.clip(list(g.values()), 1.0)
            assert norm_np == pytest.approx(norm_t, rel=1e-14)
            opt_t.step()
            opt_np.step(g)
            for k in shapes:
                np.testing.assert_allclose(p_np[k], p_t[k].detach().numpy(), rtol=0, atol=1e-14)


def test_the_schedule():
    from seqdsl.train.schedule import Schedule

    s = Schedule("cosine", 4, 14)
    assert [s.factor(i) for i in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert s.factor(4) == 1.0 and s.factor(9) == pytest.approx(0.5) and s.factor(14) == pytest.approx(0.0)
    p = Schedule("plateau", 0, 100)
    cuts = [p.epoch_end(v) for v in (1.0, 0.9, 0.9, 0.9, 0.95, 0.89, 0.9)]
    assert cuts == [False, False, False, False, True, False, False] and p.factor(50) == 0.5
    q = Schedule("plateau", 0, 100)
    q.load(p.state())
    assert q.factor(3) == 0.5 and q.state() == p.state()


# ---- the checkpoint ----------------------------------------------------------------------------------
def test_the_checkpoint_is_safetensors_with_json_not_pickle(tmp_path, data):
    out = tmp_path / "run"
    quick(SPEC, out, data=data[0], steps=4, checkpoint_every=2)
    raw = (out / "checkpoint").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    assert header["__metadata__"]["format"] == "seqdsl-checkpoint/1"
    state = json.loads(header["__metadata__"]["seqdsl"])
    assert state["step"] == 4 and state["epoch"] == 0 and state["batch"] == 4
    assert b"\x80\x04" not in raw[:8 + n] and b"torch._utils" not in raw
    from safetensors import safe_open

    with safe_open(str(out / "checkpoint"), framework="np") as f:
        names = set(f.keys())
        assert f.metadata()["format"] == "seqdsl-checkpoint/1"
    assert {"model/enc.W_ii", "optim/enc.W_ii/exp_avg", "optim/enc.W_ii/exp_avg_sq", "rng/torch", "rng/numpy",
            "history/step_loss"} <= names
    from seqdsl.train import checkpoint

    tensors, st = checkpoint.read(out / "checkpoint")
    assert st["history"] == state["history"] and st["step"] == 4 and tensors["history/step_loss"].shape == (4,)
    assert state["schedule"]["best"] == {"float": "inf"} and st["schedule"]["best"] == math.inf  # JSON has no inf
    (tmp_path / "bad").write_bytes(raw[:100])
    with pytest.raises(SpecError, match="cannot read the checkpoint"):
        checkpoint.read(tmp_path / "bad")


# ---- failures ---------------------------------------------------------------------------------------
def test_an_infinite_loss_stops_the_run_and_keeps_the_last_checkpoint(tmp_path, models):
    rng = np.random.default_rng(0)
    path = tmp_path / "reg.jsonl"
    with open(path, "w") as f:
        for i in range(24):
            total = 1e200 if i == 23 else float(rng.normal())  # one example's square overflows
            f.write(json.dumps({"x": rng.normal(size=(3, 2)).round(3).tolist(), "total": [total]}) + "\n")
    out = tmp_path / "run"
    with pytest.raises(SpecError, match=r"training stopped at step (\d+) \(epoch \d+, batch \d+\): the loss is inf") \
            as e:
        seqdsl.train(models, name="Reg", data=path, out=out, epochs=5, batch=4, checkpoint_every=2, progress=False,
                     backend="numpy", dtype="float64")
    step = int(e.value.message.split("step ")[1].split(" ")[0])
    stopped = [json.loads(line) for line in open(out / "metrics.jsonl") if '"stopped"' in line]
    assert stopped[-1]["step"] == step and step <= 6  # within the first epoch
    from seqdsl.train import checkpoint

    if step > 2:
        _, state = checkpoint.read(out / "checkpoint")
        assert state["step"] == (step - 1) // 2 * 2 and f"step {state['step']}) is kept" in e.value.message
    else:
        assert "no checkpoint had been written yet" in e.value.message


def test_a_full_disk_is_an_error_that_keeps_the_previous_checkpoint(tmp_path, data, monkeypatch):
    monkeypatch.setenv("SEQDSL_TRAIN_FAULT", "enospc-checkpoint@2")
    out = tmp_path / "run"
    with pytest.raises(SpecError, match=r"No space left on device; training stopped at step 4, and the previous "
                                        r"checkpoint \(step 2\) is intact"):
        quick(SPEC, out, data=data[0], steps=8, checkpoint_every=2, backend="numpy")
    from seqdsl.train import checkpoint

    assert checkpoint.read(out / "checkpoint")[1]["step"] == 2
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint", "metrics.jsonl", "vocab.json"]  # no temp file


def test_an_unusable_run_directory_is_an_error(tmp_path, data):
    (tmp_path / "file").write_text("x")
    with pytest.raises(SpecError, match="cannot create the run directory"):
        quick(SPEC, tmp_path / "file" / "run", data=data[0], steps=1)
    with pytest.raises(SpecError, match="cannot use .* as the run directory: it is not a folder"):
        quick(SPEC, tmp_path / "file", data=data[0], steps=1)
    with pytest.raises(SpecError, match="cannot create the run directory /proc/seqdsl-run"):
        quick(SPEC, "/proc/seqdsl-run", data=data[0], steps=1)


def test_a_run_directory_is_not_overwritten_and_resume_checks_the_options(tmp_path, data):
    out = tmp_path / "run"
    quick(SPEC, out, data=data[0], steps=2, backend="numpy")
    with pytest.raises(SpecError, match="already holds a training run") as e:
        quick(SPEC, out, data=data[0], steps=2, backend="numpy")
    assert "--resume" in e.value.hint
    with pytest.raises(SpecError, match=r"other options: lr was 0.01, now 0.1"):
        quick(SPEC, out, data=data[0], steps=2, backend="numpy", resume=True, lr=0.1)
    res = quick(SPEC, out, data=data[0], steps=2, backend="numpy", resume=True)  # finished: nothing to do
    assert res["steps"] == 2 and len(steps_of(out)) == 2
    res = quick(SPEC, out, data=data[0], steps=3, backend="numpy", resume=True)  # more steps: continues
    assert res["steps"] == 3 and [s["step"] for s in steps_of(out)] == [1, 2, 3]
    reverse_data(data[0], 40, 7)
    with pytest.raises(SpecError, match="the data file changed"):
        quick(SPEC, out, data=data[0], steps=4, backend="numpy", resume=True)


@pytest.mark.parametrize("kw, message", [
    (dict(epochs=2, steps=3), "give epochs or steps, not both"),
    (dict(patience=2), r"patience \(early stopping\) watches the validation loss"),
    (dict(schedule="plateau"), "schedule='plateau' watches the validation loss"),
    (dict(optimizer="adagrad"), "optimizer must be one of adam, adamw, sgd"),
    (dict(lr=-1.0), "lr must be a finite number > 0"),
    (dict(batch=0), "batch must be a whole number >= 1"),
    (dict(backend="numpy", device="cuda"), "the numpy backend runs on the CPU only"),
    (dict(sizes={"Q": 3}), "Translate has no size 'Q'"),
    (dict(name="Nope"), "no definition named 'Nope'"),
])
def test_bad_options_are_spec_errors(tmp_path, data, kw, message):
    with pytest.raises(SpecError, match=message):
        quick(SPEC, tmp_path / "run", data=data[0], **kw)


def test_a_model_that_predicts_nothing_cannot_be_trained(tmp_path, data):
    with pytest.raises(SpecError, match="predicts nothing"):
        seqdsl.train(ROOT / "specs" / "lstm.seq", data=data[0], out=tmp_path / "run", progress=False)


def test_importing_seqdsl_and_its_trainer_imports_no_torch_tqdm_or_matplotlib():
    code = ("import sys, seqdsl; t = seqdsl.train; import seqdsl.train.loop; assert callable(seqdsl.train); "
            "bad = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'tqdm', 'matplotlib'}); "
            "assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
