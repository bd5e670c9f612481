"""The records of a .jsonl or .tsv data file: each example's values by field, checked, not yet encoded.

In:  an open data file (`source.open_data`), the model's fields ({name: Field}) and the file key each
     field is read from ({name: key}, the name itself unless mapped).
Out: `Reader(path, fmt, fields, keys).read(f)` → [Record(line, offset, values)], values being
     {name: (mode, payload)} as `values.json_value` / `values.tsv_value` give them; `reader.modes`
     says whether each token or label field came as text or as ids. Every problem is a `SpecError`
     at the file, line and column, naming the field: broken JSON, a line that is not an object, a
     key seen twice, an unknown key (with the fields and a did-you-mean), a missing field, a value
     of the wrong kind, a TSV header without a field, a row with the wrong number of columns, a
     field given as text on one line and as ids on another. `reader.error(record, name, message)`
     places a problem found later (while encoding) the same way.
"""

from __future__ import annotations

import json
import re

from ..errors import closest, did_you_mean
from ..files import strict_json
from .source import at, line_at, read_lines
from .values import Bad, json_value, kind_of, tsv_value


class Record:
    """One example as read: its `line` (1-based), the byte `offset` of the line, its `values`."""

    __slots__ = ("line", "offset", "values")

    def __init__(self, line: int, offset: int, values: dict):
        self.line, self.offset, self.values = line, offset, values


class Reader:
    def __init__(self, path, fmt: str, fields: dict, keys: dict):
        self.path, self.fmt, self.fields, self.keys = path, fmt, fields, keys
        self.names = {key: name for name, key in keys.items()}  # file key → field name
        self.columns: list = []  # TSV: the field name of each column
        self.modes: dict = {}  # name → (mode, line) for token and label fields

    # ---- placing errors ------------------------------------------------------------------------
    def label(self, name: str) -> str:
        key = self.keys[name]
        return f"field '{name}'" + (f" (key '{key}')" if key != name else "")

    def col(self, text: str, name: str) -> int:
        """The column where `name`'s value starts on the line `text` (1 when it cannot be told)."""
        if self.fmt == ".tsv":
            if name not in self.columns:
                return 1
            cells = text.split("\t")
            i = self.columns.index(name)
            return 1 + sum(len(c) + 1 for c in cells[:i]) if i < len(cells) else 1
        m = re.search(re.escape(json.dumps(self.keys[name], ensure_ascii=False)) + r"\s*:", text)
        return m.start() + 1 if m else 1

    def at_field(self, line: int, text: str, name: str, message: str, hint=None):
        sep = " " if message.split(" ", 1)[0] in ("is", "has", "holds") else ": "
        return at(self.path, line, f"{self.label(name)}{sep}{message}", self.col(text, name), hint)

    def error(self, record: Record, name: str, message: str, hint=None):
        """The error `message` about `name` in `record`, found after reading (the line is read back)."""
        return self.at_field(record.line, line_at(self.path, record.offset), name, message, hint)

    # ---- reading -------------------------------------------------------------------------------
    def read(self, f) -> list:
        return self._jsonl(f) if self.fmt == ".jsonl" else self._tsv(f)

    def _record(self, line: int, offset: int, text: str, raw: dict, convert) -> Record:
        """The record of one line: `convert(field, raw[name])` for each field, checked."""
        values = {}
        for name, field in self.fields.items():
            try:
                mode, payload = convert(field, raw[name])
            except Bad as e:
                raise self.at_field(line, text, name, str(e)) from None
            if mode != "numbers":
                first = self.modes.setdefault(name, (mode, line))
                if first[0] != mode:
                    raise self.at_field(line, text, name, f"holds {self._mode(mode)} here but "
                                        f"{self._mode(first[0])} on line {first[1]}: give every line the same kind")
            values[name] = (mode, payload)
        return Record(line, offset, values)

    def _mode(self, mode: str) -> str:
        return {"text": "text", "ids": "ids (whole numbers)"}[mode]

    def _jsonl(self, f) -> list:
        records = []
        for line, offset, text in read_lines(self.path, f):
            if not text.strip():
                continue
            obj = self._object(line, text)
            raw = {name: obj[key] for name, key in self.keys.items()}
            records.append(self._record(line, offset, text, raw, json_value))
        return records

    def _object(self, line: int, text: str) -> dict:
        try:
            obj = strict_json(text)
        except json.JSONDecodeError as e:
            raise at(self.path, line, f"not valid JSON: {e.msg}", e.colno,
                     "a .jsonl file holds one JSON object per line") from None
        except ValueError as e:
            raise at(self.path, line, f"not valid JSON: {e}") from None
        except RecursionError:
            raise at(self.path, line, "not valid JSON: nested too deeply") from None
        if not isinstance(obj, dict):
            raise at(self.path, line, f"the line holds {kind_of(obj)}, not a JSON object whose keys are the "
                     f"fields ({self._fields()})")
        for key in obj:
            if key not in self.names:
                m = re.search(re.escape(json.dumps(key, ensure_ascii=False)), text)
                raise at(self.path, line, f"unknown field '{key}': the fields are {self._fields()}",
                         m.start() + 1 if m else 1, self._hint(key))
        for name, key in self.keys.items():
            if key not in obj:
                raise at(self.path, line, f"missing {self.label(name)}: every line holds {self._fields()}")
        return obj

    def _fields(self) -> str:
        return ", ".join(f"{key} ({self.fields[name].describe()})" for name, key in self.keys.items())

    def _hint(self, key: str) -> str | None:
        near = closest(key, list(self.names))
        if near is None:
            return None
        name = self.names[near]
        return (f"{did_you_mean(key, [near])} (or read the field '{name}' from the key '{key}': --map {name}={key}, "
                f"or mapping={{'{name}': '{key}'}} from Python)")

    def _tsv(self, f) -> list:
        records, lines = [], read_lines(self.path, f)
        for line, _offset, text in lines:
            if text.strip():
                self._header(line, text)
                break
        for line, offset, text in lines:
            if not text:
                continue
            cells = text.split("\t")
            if len(cells) != len(self.columns):
                raise at(self.path, line, f"the row has {len(cells)} column{'s' if len(cells) != 1 else ''} "
                         f"(cells separated by tabs); the header has {len(self.columns)}: "
                         f"{', '.join(self.keys[n] for n in self.columns)}")
            records.append(self._record(line, offset, text, dict(zip(self.columns, cells)), tsv_value))
        return records

    def _header(self, line: int, text: str) -> None:
        cells = text.split("\t")
        col = 1
        for cell in cells:
            key = cell.strip()
            if key not in self.names:
                raise at(self.path, line, f"the header names an unknown field '{key}': the fields are "
                         f"{self._fields()}", col, self._hint(key) or "the first line of a .tsv file names the "
                         "field of each column, separated by tabs")
            if self.names[key] in self.columns:
                raise at(self.path, line, f"the header names the field '{key}' twice", col)
            self.columns.append(self.names[key])
            col += len(cell) + 1
        for name in self.keys:
            if name not in self.columns:
                raise at(self.path, line, f"the header has no column for {self.label(name)}: it must name "
                         f"{self._fields()}")
