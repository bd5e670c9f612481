"""The CLI commands that need a backend or the renderer: `compile` and `render`.

In:  parsed argparse namespaces.
Out: files written; messages on stdout/stderr; exit codes as in seqdsl.cli.
"""

from __future__ import annotations

COMMANDS: dict = {}


def add_commands(sub) -> None:
    """Register subcommands (filled in by the backend and render modules)."""
    for register in REGISTRARS:
        register(sub)


REGISTRARS: list = []
