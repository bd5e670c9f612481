"""Fault injection for the tests of exact resume: the environment variable SEQDSL_TRAIN_FAULT makes
a run die (SIGKILL, as the kernel's OOM killer or a pre-empted machine would) or fail to write, at
a chosen place.

In:  SEQDSL_TRAIN_FAULT = "WHAT@N" (unset: nothing happens), where WHAT is
       kill-step        SIGKILL right after the N-th optimizer step (before it is logged),
       kill-log         SIGKILL right after the N-th step's line is logged,
       kill-checkpoint  SIGKILL half-way through writing the N-th checkpoint (a temporary file),
       enospc-checkpoint  the N-th checkpoint's write fails with "No space left on device".
Out: `at(what, n)` (kills when it matches) and `writer(n)` → None, or the `fault` callable
     `checkpoint.write` takes for the N-th checkpoint.
"""

from __future__ import annotations

import errno
import os
import signal

VAR = "SEQDSL_TRAIN_FAULT"


def _wanted() -> tuple:
    what, _, n = os.environ.get(VAR, "").partition("@")
    return (what, int(n)) if n.isdigit() else ("", -1)


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def at(what: str, n: int) -> None:
    if _wanted() == (what, n):
        _die()


def writer(n: int):
    what, k = _wanted()
    if k != n or what not in ("kill-checkpoint", "enospc-checkpoint"):
        return None

    def fault(f, data: bytes) -> None:
        f.write(data[: len(data) // 2])
        f.flush()
        if what == "kill-checkpoint":
            _die()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return fault
