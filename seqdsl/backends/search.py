"""Generation: choosing each step's prediction, greedily, by sampling, or by beam search.

In:  a `stepping.Stepper` (begin/step of a compiled model), the inputs, and the strategy.
Out: `generate(stepper, inputs, ...)` → `Generated(tokens, lengths, scores, log_probs, outputs)`,
     NumPy arrays: tokens (B, L) int64 (padded with `vocab.PAD` after a sequence's end token),
     lengths (B,) (the end token counted), scores (B,) (the sum of the chosen tokens' log-probabilities;
     beam search ranks by it divided by length ** `length_penalty`), log_probs (B, L) (each chosen
     token's log-probability, 0 at padding) and outputs: every other output of the step (attention
     weights `attn` (B, L, S), ...), per generated step (0 at padding).

A model that reads its previous prediction never chooses `vocab.PAD` or `vocab.START` (ids 0 and 1:
padding, and the token its first step reads): each step chooses among the ids from `vocab.END` up
(when the vocabulary has more than those two), while the log-probabilities and scores reported
are the model's own, as teacher-forced rescoring gives them.

Bookkeeping is NumPy on the host; the executable's arrays (tensors for torch) stay where they are,
and only the step's distribution parameters come back each step. Sampling draws from
`numpy.random.default_rng(seed)`, so a seed gives the same tokens on both backends.

Beam search keeps, for each sample, the `beam` best unfinished hypotheses by total log-probability
(batched: the state holds B × beam rows); a hypothesis that chooses the end token among the `beam`
best candidates of the step is finished (so a beam of 1 is greedy decoding), and
a sample stops when `beam` hypotheses have finished or at `max_len`. The answer is the finished (or,
at `max_len`, unfinished) hypothesis with the best length-normalised score, log p / length ** α
(α = `length_penalty`, 1.0 by default; 0 ranks by log p alone).
"""

from __future__ import annotations

import numpy as np

from ..vocab import END, PAD, START
from .loss import NumpyOps
from .validate import InputError


class Generated:
    """What `generate` returns: tokens, lengths, scores, log_probs and outputs (the module's
    docstring), read by name, by index or unpacked in that order, like the namedtuple it was.

    Greedy decoding leaves the last three to their first read: `pending` works them out (the
    log-softmax of every generated step over the whole vocabulary, and the other outputs moved to
    NumPy) and is dropped after, so a caller that reads only the tokens does not pay for them.
    Until then the step's outputs are kept on the executable's arrays (B × L × vocabulary for the
    logits: what the log-probabilities are worked out from)."""

    __slots__ = ("tokens", "lengths", "_rest", "_pending")
    _fields = ("tokens", "lengths", "scores", "log_probs", "outputs")

    def __init__(self, tokens, lengths, scores=None, log_probs=None, outputs=None, pending=None):
        self.tokens, self.lengths = tokens, lengths
        self._rest = None if pending is not None else (scores, log_probs, outputs)
        self._pending = pending

    def _done(self) -> tuple:
        if self._rest is None:
            self._rest, self._pending = self._pending(), None
        return self._rest

    scores = property(lambda self: self._done()[0], doc="(B,) the sum of the chosen tokens' log-probabilities")
    log_probs = property(lambda self: self._done()[1], doc="(B, L) each chosen token's log-probability")
    outputs = property(lambda self: self._done()[2], doc="{name: (B, L, ...)} the step's other outputs")

    def __iter__(self):
        return iter((self.tokens, self.lengths) + self._done())

    def __len__(self) -> int:
        return 5

    def __getitem__(self, i):
        return tuple(self)[i]

    def _asdict(self) -> dict:
        return dict(zip(self._fields, self))

    def __reduce__(self):  # (pickled worked out: a pending result holds the step's arrays and a closure)
        return (Generated, tuple(self))

    def __repr__(self) -> str:
        return (f"Generated(tokens={self.tokens!r}, lengths={self.lengths!r}, scores={self.scores!r}, "
                f"log_probs={self.log_probs!r}, outputs={self.outputs!r})")

STRATEGIES = ("greedy", "sample", "beam")


log_softmax = NumpyOps.log_softmax  # (host bookkeeping: sampling, a model that chooses once)


def _target(stepper) -> str:
    cats = [k for k, p in stepper.predicted.items() if p["dist"] == "categorical" and k in stepper.previous]
    if len(stepper.previous) != 1 or len(cats) != 1:
        raise ValueError(f"{stepper.exe.name}: generate() chooses one categorical prediction read at t-1; this model "
                         f"predicts {sorted(stepper.predicted)} and reads {sorted(stepper.previous)} (drive "
                         "begin() and step() yourself for other models)")
    return cats[0]


def _feed_prompt(stepper, y, state, prompt, batch):
    """Run the prompt's tokens through the steps (teacher forcing); the state and the last token."""
    prev = np.full(batch, int(stepper.previous[y]), dtype=np.int64)
    if prompt is None:
        return state, prev
    prompt = np.asarray(prompt)
    if prompt.ndim == 1:
        prompt = np.broadcast_to(prompt, (batch, prompt.shape[0]))
    if prompt.ndim != 2 or prompt.shape[0] != batch or prompt.dtype.kind not in "iu":
        raise ValueError(f"{stepper.exe.name}: prompt must be token ids of shape (B, P) or (P,), got "
                         f"{prompt.dtype} {prompt.shape}")
    classes = stepper.predicted[y]["classes"]
    if prompt.size and (prompt.min() < 0 or prompt.max() >= classes):  # a negative id would wrap around
        raise InputError(f"{stepper.exe.name}: the prompt must hold token ids in [0, {classes}), got ids from "
                         f"{prompt.min()} to {prompt.max()}")
    for i in range(prompt.shape[1]):
        _, state = stepper.step(state, {y: stepper.exe._tokens(prev)}, check=i == 0)
        prev = prompt[:, i].astype(np.int64)
    return state, prev


def _first_choice(stepper, y) -> int:
    """The lowest id step-wise generation may choose: past PAD and START, when the vocabulary has more."""
    return START + 1 if stepper.predicted[y]["classes"] > START + 1 else 0


def _pick(logp, strategy, temperature, top_k, rng, lo=0):
    """The chosen ids (B,) among ids >= lo, from log-probabilities (B, V)."""
    if lo:
        logp = np.concatenate([np.full((logp.shape[0], lo), -np.inf), logp[:, lo:]], 1)
    if strategy == "greedy":
        return logp.argmax(-1)
    z = logp / temperature
    if top_k and top_k < z.shape[1]:  # a top_k of the vocabulary or more keeps every token
        kth = np.sort(z, -1)[:, -top_k][:, None]
        z = np.where(z < kth, -np.inf, z)
    p = np.exp(log_softmax(z))
    u = rng.random((p.shape[0], 1))
    return np.minimum((np.cumsum(p, -1) < u).sum(-1), p.shape[1] - 1)


def generate(stepper, inputs: dict, lengths=None, max_len: int = 50, strategy: str = "greedy", beam: int = 1,
             temperature: float = 1.0, top_k: int | None = None, seed=None, prompt=None,
             length_penalty: float = 1.0) -> Generated:
    _check_options(stepper.exe.name, max_len, strategy, beam, temperature, top_k, length_penalty)
    if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0):
        raise ValueError(f"{stepper.exe.name}: seed must be a whole number >= 0 or None, got {seed!r}")
    y = _target(stepper)
    with stepper.cached():
        state = stepper.begin(inputs, lengths)
        batch = int(next(iter(state.values())).shape[0])
        state, prev = _feed_prompt(stepper, y, state, prompt, batch)
        if strategy == "beam":
            return _beam(stepper, y, state, prev, batch, max_len, beam, length_penalty)
        if strategy == "greedy":
            return _greedy(stepper, y, state, prev, max_len)
        return _sample(stepper, y, state, prev, batch, max_len, temperature, top_k, seed)


def _greedy(stepper, y, state, prev, max_len) -> Generated:
    """The argmax at every step, on the executable's own arrays (tensors stay on their device);
    log-probabilities, lengths and padding are worked out once at the end."""
    exe = stepper.exe
    ops = exe._loss_ops
    prev = exe._tokens(prev)
    lo = _first_choice(stepper, y)
    logits, toks = [], []
    extras = {k: [] for k in stepper.step_outputs if k != y}
    done = None
    for _ in range(max_len):
        out, state = stepper.step(state, {y: prev}, check=False)
        prev = ops.max_last(out[y][:, lo:] if lo else out[y])[1]  # (torch's max beats its argmax)
        prev = prev + lo if lo else prev
        logits.append(out[y])
        toks.append(prev)
        for k, v in extras.items():
            v.append(out[k])
        if done is None:
            done = prev == END
        else:
            done |= prev == END  # (in place, on the executable's arrays)
        if done.all():
            break
    return _finish(exe, logits, toks, extras)


def _finish(exe, logits, toks, extras) -> Generated:
    """Tokens and lengths now; log-probabilities, scores and the other outputs on first read."""
    ops = exe._loss_ops  # the log-probabilities on the executable's own arrays, in its dtype
    tokens = ops.stack(toks, 1)
    tok = exe._to_numpy(tokens).astype(np.int64)
    B, L = tok.shape
    ends = tok == END
    lens = np.where(ends.any(1), ends.argmax(1) + 1, L).astype(np.int64)
    real = np.arange(L)[None, :] < lens[:, None]

    def rest() -> tuple:
        chosen = exe._to_numpy(ops.chosen_log_prob(ops.stack(logits, 1), tokens)).astype(np.float64)
        chosen = np.where(real, chosen, 0.0)
        outputs = {}
        for k, vs in extras.items():  # zero after a sequence's end, as its log-probs
            v = exe._to_numpy(ops.stack(vs, 1))
            outputs[k] = np.where(real.reshape(real.shape + (1,) * (v.ndim - 2)), v, 0)
        return chosen.sum(1), chosen, outputs

    return Generated(np.where(real, tok, PAD), lens, pending=rest)


def _sample(stepper, y, state, prev, batch, max_len, temperature, top_k, seed) -> Generated:
    strategy = "sample"
    rng = np.random.default_rng(seed)
    done = np.zeros(batch, bool)
    toks, logps, extras = [], [], {}
    lens = np.full(batch, max_len, dtype=np.int64)
    lo = _first_choice(stepper, y)
    for t in range(max_len):
        out, state = stepper.step(state, {y: stepper.exe._tokens(prev)}, check=False)
        logp = log_softmax(stepper.exe._to_numpy(out[y]).astype(np.float64))
        tok = _pick(logp, strategy, temperature, top_k, rng, lo)
        tok = np.where(done, PAD, tok)
        logps.append(np.where(done, 0.0, logp[np.arange(batch), tok]))
        toks.append(tok)
        for k, v in out.items():
            if k != y:  # zero after a sequence's end, as its log-probs (and as beam search gives them)
                v = stepper.exe._to_numpy(v)
                extras.setdefault(k, []).append(np.where(done.reshape((-1,) + (1,) * (v.ndim - 1)), 0, v))
        ended = (tok == END) & ~done
        lens[ended] = t + 1
        done |= ended
        prev = np.where(done, END, tok)
        if done.all():
            break
    log_probs = np.stack(logps, 1)
    return Generated(np.stack(toks, 1).astype(np.int64), lens, log_probs.sum(1), log_probs,
                     {k: np.stack(v, 1) for k, v in extras.items()})


def _check_options(name, max_len, strategy, beam, temperature, top_k, length_penalty) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"{name}: unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if not isinstance(max_len, (int, np.integer)) or isinstance(max_len, bool) or max_len < 1:
        raise ValueError(f"{name}: max_len must be a whole number >= 1, got {max_len!r}")
    if not isinstance(beam, (int, np.integer)) or isinstance(beam, bool) or beam < 1:
        raise ValueError(f"{name}: beam must be a whole number >= 1, got {beam!r}")
    if not (isinstance(temperature, (int, float)) and temperature > 0 and np.isfinite(temperature)):
        raise ValueError(f"{name}: temperature must be a number > 0, got {temperature!r}")
    if top_k is not None and (not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ValueError(f"{name}: top_k must be a whole number >= 1 or None, got {top_k!r}")
    if not (isinstance(length_penalty, (int, float)) and np.isfinite(length_penalty) and length_penalty >= 0):
        raise ValueError(f"{name}: length_penalty must be a number >= 0 (0 ranks by log p alone, 1 by log p per "
                         f"token), got {length_penalty!r}")
    unused = [f"beam={beam}"] if beam != 1 and strategy != "beam" else []
    if strategy != "sample":
        unused += [f"temperature={temperature!r}"] if temperature != 1.0 else []
        unused += [f"top_k={top_k!r}"] if top_k is not None else []
    unused += [f"length_penalty={length_penalty!r}"] if length_penalty != 1.0 and strategy != "beam" else []
    if unused:
        raise ValueError(f"{name}: {', '.join(unused)} would do nothing with strategy={strategy!r}; beam= and "
                         "length_penalty= are for strategy='beam', temperature= and top_k= for strategy='sample'")


class _Finished:
    """The finished hypotheses of each sample: (normalised score, log p, tokens, log-probs, rows),
    `rows` the row of the batch each step of the hypothesis ran in (where its other outputs are:
    `steps`, each step's outputs by name, (B × beam, ...))."""

    def __init__(self, batch, alpha):
        self.items = [[] for _ in range(batch)]
        self.alpha = alpha
        self.steps: dict = {}

    def add(self, b, logp_sum, toks, logps, rows):
        n = len(toks)
        self.items[b].append((logp_sum / (n ** self.alpha), logp_sum, toks, logps, rows))


def _candidates(total, K) -> tuple:
    """The 2K best (hypothesis, token) candidates of each sample from `total` (B, K × V): their
    number n, their totals and their indices into K × V, each (B, n), best first (ties by index)."""
    batch, KV = total.shape
    n = min(2 * K, KV)
    part = (np.argpartition(total, KV - n, axis=1)[:, KV - n:] if n < KV
            else np.tile(np.arange(KV), (batch, 1)))  # the n best, in no order
    vals = np.take_along_axis(total, part, 1)
    idx = np.take_along_axis(part, np.lexsort((part, -vals), axis=1), 1)
    return n, np.take_along_axis(total, idx, 1), idx


def _beam(stepper, y, state, prev, batch, max_len, K, alpha) -> Generated:
    exe = stepper.exe
    ops = exe._loss_ops
    rows = np.repeat(np.arange(batch), K)
    state = stepper.reorder(state, rows)
    prev = np.repeat(prev, K)
    cum = np.full((batch, K), -np.inf)
    cum[:, 0] = 0.0  # one live hypothesis per sample at first: the others would repeat it
    hist = np.zeros((batch * K, 0), np.int64)
    hist_lp = np.zeros((batch * K, 0))
    hist_rows = np.zeros((batch * K, 0), np.int64)  # the row each step of a live hypothesis ran in
    fin = _Finished(batch, alpha)
    steps = fin.steps  # each step's other outputs (the attention weights, ...), by name
    active = np.ones(batch, bool)
    lo = _first_choice(stepper, y)
    for _ in range(max_len):
        out, state = stepper.step(state, {y: exe._tokens(prev)}, check=False)
        logp = exe._to_numpy(ops.log_softmax(ops.float64(out[y])))  # (B*K, V), on the executable's arrays
        V = logp.shape[1]
        for k, v in out.items():
            if k != y:
                steps.setdefault(k, []).append(exe._to_numpy(v))
        total = cum.reshape(-1, 1) + logp
        total[:, :lo] = -np.inf  # (never chosen)
        n, cand, idx = _candidates(total.reshape(batch, K * V), K)
        beam_of, tok = idx // V, idx % V
        src = np.arange(batch)[:, None] * K + beam_of  # the row each candidate extends
        # an end ranked below the K best does not finish (as with K = 1, greedy)
        ends = (tok[:, :K] == END) & np.isfinite(cand[:, :K]) & active[:, None]
        for b, j in zip(*np.nonzero(ends)):  # (row-major: each sample's candidates best first)
            if len(fin.items[b]) < K:
                r = src[b, j]
                fin.add(b, cand[b, j], np.append(hist[r], END), np.append(hist_lp[r], logp[r, END]),
                        np.append(hist_rows[r], r))
            if len(fin.items[b]) >= K:
                active[b] = False
        keep = np.argsort(tok == END, axis=1, kind="stable")[:, :K]  # the K best that do not end
        pick = np.take_along_axis(src, keep, 1).reshape(-1)
        new_tok = np.take_along_axis(tok, keep, 1).reshape(-1)
        new_cum = np.take_along_axis(cand, keep, 1)
        new_cum[np.take_along_axis(tok, keep, 1) == END] = -np.inf
        hist = np.concatenate([hist[pick], new_tok[:, None]], 1)
        hist_lp = np.concatenate([hist_lp[pick], logp[pick, new_tok][:, None]], 1)
        hist_rows = np.concatenate([hist_rows[pick], pick[:, None]], 1)
        state = stepper.reorder(state, pick)
        cum, prev = new_cum, new_tok
        if not active.any():
            break
    for b in range(batch):  # at max_len: the unfinished hypotheses compete too
        if active[b]:
            for j in range(K):
                r = b * K + j
                if np.isfinite(cum[b, j]):
                    fin.add(b, cum[b, j], hist[r], hist_lp[r], hist_rows[r])
    return _best(fin, batch)


def _best(fin, batch) -> Generated:
    best = [max(items, key=lambda it: it[0]) for items in fin.items]
    L = max(len(it[2]) for it in best)
    tokens = np.full((batch, L), PAD, np.int64)
    log_probs = np.zeros((batch, L))
    lens = np.zeros(batch, np.int64)
    rows = np.zeros((batch, L), np.int64)  # the row each step of the best hypothesis ran in
    for b, (_s, _lp, toks, lps, ran) in enumerate(best):
        tokens[b, :len(toks)] = toks
        log_probs[b, :len(toks)] = lps
        lens[b] = len(toks)
        rows[b, :len(toks)] = ran
    real = np.arange(L)[None, :] < lens[:, None]
    outputs = {}
    for k, vs in fin.steps.items():  # zero after a sequence's end, as its log-probs
        v = np.stack([vs[t][rows[:, t]] for t in range(L)], 1)
        outputs[k] = np.where(real.reshape(real.shape + (1,) * (v.ndim - 2)), v, 0)
    scores = np.array([it[1] for it in best])
    return Generated(tokens, lens, scores, log_probs, outputs)


def choose_once(exe, inputs: dict, lengths=None, strategy: str = "greedy", temperature: float = 1.0, top_k=None,
                seed=None, beam: int = 1, length_penalty: float = 1.0) -> Generated:
    """A model that predicts without reading its previous prediction (Sentiment's label, a tagger's
    tags): one call, then a choice at each position (beam search would choose the same: the choices
    are independent). tokens (B, 1) for a per-sample prediction, (B, T) per step (PAD past a
    sample's length)."""
    _check_options(exe.name, 1, strategy, beam, temperature, top_k, length_penalty)
    cats = [k for k, p in exe._ns["PREDICTED"].items() if p["dist"] == "categorical"]
    if len(cats) != 1:
        raise ValueError(f"{exe.name}: generate() chooses one categorical prediction; this model predicts "
                         f"{sorted(exe._ns['PREDICTED'])}")
    y = cats[0]
    outputs, _ = exe(lengths=lengths, **inputs)
    logits = exe._to_numpy(outputs[y]).astype(np.float64)
    per_step = logits.ndim == 3
    if not per_step:
        logits = logits[:, None]
    B, T, V = logits.shape
    logp = log_softmax(logits).reshape(B * T, V)
    tok = _pick(logp, strategy if strategy != "beam" else "greedy", temperature, top_k, np.random.default_rng(seed))
    chosen = logp[np.arange(B * T), tok].reshape(B, T)
    tok = tok.reshape(B, T)
    lens = np.full(B, T, dtype=np.int64)
    axis = (exe._ns["OUTPUT_AXES"].get(y) or (None,))[0]
    if per_step and lengths is not None and axis in lengths:
        lens = np.asarray(exe._to_numpy(lengths[axis]) if hasattr(lengths[axis], "shape") else lengths[axis],
                          dtype=np.int64)
    real = np.arange(T)[None, :] < lens[:, None]
    tok = np.where(real, tok, PAD).astype(np.int64)
    chosen = np.where(real, chosen, 0.0)
    others = {k: exe._to_numpy(v) for k, v in outputs.items() if k != y}
    return Generated(tok, lens, chosen.sum(1), chosen, others)
