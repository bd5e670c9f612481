"""Reading a data file line by line, and saying where in it something is wrong.

In:  a path (str or os.PathLike) to a data file.
Out: `open_data(path)` → (Path, a binary file object): a regular file of at most MAX_DATA_FILE bytes;
     `read_lines(path, f)` → (line number, byte offset, text) for each line, decoded as strict UTF-8
     (a byte order mark at the start is skipped), one line at a time, never the whole file;
     `at(path, line, message, col=1)` → the `SpecError` for a place in the file (`file:line:col:
     error: ...`; line 0 names the file alone). Every problem (a missing file, a folder, a FIFO, a
     file over the cap, invalid UTF-8, a line over MAX_LINE bytes) is such an error.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import Span, SpecError
from ..files import checked_path

MAX_DATA_FILE = 2 << 30  # bytes: 2 GiB
MAX_LINE = 64 << 20  # bytes in one line
BOM = b"\xef\xbb\xbf"


def at(path, line: int, message: str, col: int = 1, hint: str | None = None) -> SpecError:
    """The error `message` at `line` (1-based; 0: the file as a whole) and `col` of the data file `path`."""
    return SpecError(message, Span(str(path), line, col if line else 0), hint)


def data_path(path) -> Path:
    """`path` as a Path, or a `SpecError` when it is not one (not a str or PathLike, a NUL byte)."""
    return checked_path(path, "read the data file")


def open_data(path) -> tuple:
    """(Path, binary file object) of the data file `path`: an existing regular file of at most
    MAX_DATA_FILE bytes (a FIFO is refused before and after opening, so this never blocks)."""
    path = data_path(path)
    what = "cannot read the data file"
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise at(path, 0, f"{what}: it is {'a folder' if stat.S_ISDIR(st.st_mode) else 'not a regular file'}")
        if st.st_size > MAX_DATA_FILE:
            raise at(path, 0, f"{what}: it holds {st.st_size} bytes, more than the {MAX_DATA_FILE} bytes "
                     "(2 GiB) a data file may hold")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        f = os.fdopen(fd, "rb")
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            f.close()
            raise at(path, 0, f"{what}: it is not a regular file")
    except SpecError:
        raise
    except FileNotFoundError:
        raise at(path, 0, f"{what}: no such file") from None
    except OSError as e:
        raise at(path, 0, f"{what}: {e.strerror or e}") from None
    return path, f


def read_lines(path, f, keep_ends: bool = False):
    """(line, offset, text) for each line of the open binary file `f`: 1-based line numbers, the byte
    offset of the line's start, its text as strict UTF-8 without the line break (with it when
    `keep_ends`). A byte order mark at the very start is skipped."""
    line = offset = 0
    while True:
        try:
            raw = f.readline(MAX_LINE + 1)
        except OSError as e:
            raise at(path, line + 1, f"cannot read the data file: {e.strerror or e}") from None
        if not raw:
            return
        line += 1
        if len(raw) > MAX_LINE:
            raise at(path, line, f"the line is longer than {MAX_LINE} bytes (64 MiB), the most a line may hold")
        if offset + len(raw) > MAX_DATA_FILE:
            raise at(path, line, f"the file grew past the {MAX_DATA_FILE} bytes (2 GiB) a data file may hold")
        skip = len(BOM) if line == 1 and raw.startswith(BOM) else 0
        try:
            text = raw[skip:].decode("utf-8")
        except UnicodeDecodeError as e:
            bad = skip + e.start
            raise at(path, line, f"not UTF-8 text: byte {offset + bad} of the file (byte {bad + 1} of the line) "
                     f"is 0x{raw[bad]:02x}", bad + 1, "save the file as UTF-8") from None
        if not keep_ends:
            text = text[:-1] if text.endswith("\n") else text
            text = text[:-1] if text.endswith("\r") else text
        yield line, offset, text
        offset += len(raw)


def line_at(path, offset: int) -> str:
    """The text of the line that starts at byte `offset` of `path` (for placing an error found after
    reading), without its line break; "" when it cannot be read back."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            raw = f.readline(MAX_LINE + 1)
    except OSError:
        return ""
    if offset == 0 and raw.startswith(BOM):
        raw = raw[len(BOM):]
    return raw.decode("utf-8", "replace").rstrip("\r\n")
