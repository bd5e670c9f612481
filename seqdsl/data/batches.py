"""Padded batches of a Dataset, bucketed by length and shuffled from a seed, epoch by epoch.

In:  a `Dataset`, the batch size, a seed; whether to bucket by length and to shuffle; for several
     processes, this process's `rank` among `world`.
Out: `Batches(ds, batch_size, seed, bucket=True, shuffle=True, rank=0, world=1)`: `len(batches)`
     (batches per epoch), `batches.epoch(e, start=k)` → the `Batch`es of epoch e from the k-th on
     (the same for the same seed and e: `start=k` is exactly the tail, for resuming), and
     `batches.order(e)` → the example indices of each batch. A `Batch` has `inputs` (name → array,
     batch-first, padded with PAD for ids and 0.0 for numbers: (B, T), (B, T, D), (B,) or (B, D)),
     `lengths` (name → (B,) int64, the real length of every sequence field), `size` (B), `tokens`
     (the number of real predicted positions) and `indices` (the examples, by index in the dataset).

Bucketing: the examples are shuffled (from the seed and the epoch), cut into chunks of 50 batches,
each chunk sorted by length (the sum of the example's sequence lengths, stably), cut into batches,
and the batches shuffled; so a batch holds examples of similar length and pads little. Every
example is in exactly one batch of each epoch; the last batch may be smaller. Without `shuffle`
nothing is shuffled (the file's order, sorted within chunks when bucketing).

With `world` processes each global batch of `batch_size * world` examples is cut in `world` parts,
part `rank` for this process (rows rank, rank + world, ...), so N processes with batch B see the
batches one process sees with batch N·B. The last global batch is dropped when it has fewer
examples than processes (no process may get none); with one process nothing is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SpecError
from ..vocab import PAD

CHUNK = 50  # batches per bucketing chunk


@dataclass
class Batch:
    inputs: dict
    lengths: dict
    size: int
    tokens: int
    indices: np.ndarray


def _whole(v, low: int, what: str) -> int:
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < low:
        raise SpecError(f"{what} must be a whole number >= {low}, got {v!r}")
    return int(v)


class Batches:
    def __init__(self, ds, batch_size: int, seed: int, bucket: bool = True, shuffle: bool = True,
                 rank: int = 0, world: int = 1):
        self.ds = ds
        self.batch_size = _whole(batch_size, 1, "the batch size")
        self.seed = _whole(seed, 0, "the seed")
        self.world = _whole(world, 1, "world (the number of processes)")
        self.rank = _whole(rank, 0, "rank")
        if self.rank >= self.world:
            raise SpecError(f"rank {rank} is not one of the {world} processes (0 to {world - 1})")
        self.bucket, self.shuffle = bool(bucket), bool(shuffle)
        self.fields = ds.fields
        self.seq = [n for n, f in ds.fields.items() if f.seq]
        self.lengths = {n: ds.lengths(n) for n in self.seq}
        self.size = sum(self.lengths.values()) if self.seq else np.zeros(len(ds), dtype=np.int64)
        if len(ds) < self.world:
            raise SpecError(f"{len(ds)} example{'s' if len(ds) != 1 else ''} cannot be shared among {world} "
                            "processes: each needs at least one")

    def __len__(self) -> int:
        n, g = len(self.ds), self.batch_size * self.world
        full, rest = divmod(n, g)
        return full + (1 if rest >= self.world else 0)

    def order(self, e: int) -> list:
        """The example indices of each global batch of epoch `e` (all processes' rows)."""
        e = _whole(e, 0, "the epoch")
        n, g = len(self.ds), self.batch_size * self.world
        rng = np.random.default_rng([self.seed, e])
        idx = rng.permutation(n) if self.shuffle else np.arange(n)
        if self.bucket:
            chunk = g * CHUNK
            idx = np.concatenate([c[np.argsort(self.size[c], kind="stable")]
                                  for c in (idx[i:i + chunk] for i in range(0, n, chunk))])
        batches = [idx[i:i + g] for i in range(0, n, g)]
        if self.bucket and self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return [b for b in batches if len(b) >= self.world]

    def epoch(self, e: int, start: int = 0):
        """The batches of epoch `e`, from the `start`-th on (0-based; `len(self)` gives none)."""
        start = _whole(start, 0, "start")
        order = self.order(e)
        if start > len(order):
            raise SpecError(f"start {start} is past the {len(order)} batches of an epoch")
        for rows in order[start:]:
            yield self.batch(rows[self.rank::self.world])

    def batch(self, rows) -> Batch:
        """The padded batch of the examples `rows` (indices into the dataset)."""
        rows = np.asarray(rows, dtype=np.int64)
        examples = self.ds.examples
        inputs, lengths, tokens = {}, {}, 0
        for name, field in self.fields.items():
            values = [examples[i][name] for i in rows]
            if field.seq:
                n = self.lengths[name][rows]
                lengths[name] = n
                out = np.full((len(rows), int(n.max())) + tuple(field.dims), PAD if field.ids else 0.0,
                              dtype=np.int64 if field.ids else np.float64)
                for j, v in enumerate(values):
                    out[j, :len(v)] = v
                tokens += int(n.sum()) if field.role == "observed" else 0
            else:
                out = np.stack(values)
                tokens += len(rows) if field.role == "observed" else 0
            inputs[name] = out
        return Batch(inputs, lengths, len(rows), tokens, rows)
