"""Training data by field name: reading data files, vocabularies, bucketed batches, synthetic tasks.

In:  a compiled model (its fields), data files (.jsonl, .tsv, .txt; docs/data.md), a batch size and
     a seed; or a synthetic task's name, a size and a seed.
Out: `spec_fields(exe)` → {name: Field}; `load_dataset(path, fields, tokens="chars", mapping=None,
     vocabs=None, max_len=None, seq_len=None)` → `Dataset` (examples of ids and numbers, a
     vocabulary per token and label field); `Batches(ds, batch_size, seed, bucket=True,
     shuffle=True)` → padded `Batch`es with lengths, epoch by epoch, deterministic from the seed;
     `TASKS` and `write_task(task, n, seed, path, **options)` → a synthetic task's .jsonl file.
     Every problem with a data file is a `SpecError` naming the file, the line and the field.
     Nothing here imports torch.
"""

from __future__ import annotations

from .batches import Batch, Batches
from .dataset import Dataset, load_dataset
from .fields import Field, spec_fields
from .source import MAX_DATA_FILE
from .tasks import TASKS, make_task, write_task

__all__ = ["MAX_DATA_FILE", "TASKS", "Batch", "Batches", "Dataset", "Field", "load_dataset", "make_task",
           "spec_fields", "write_task"]
