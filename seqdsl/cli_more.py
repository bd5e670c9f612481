"""The CLI commands that need a backend or the renderer: `compile` and `render`.

In:  parsed argparse namespaces.
Out: files written; messages on stdout/stderr; exit codes as in seqdsl.cli.
"""

from __future__ import annotations

from . import compile_cli, render_cli

COMMANDS: dict = {"compile": compile_cli.cmd_compile, "render": render_cli.cmd_render}
REGISTRARS: list = [compile_cli.register, render_cli.register]


def add_commands(sub) -> None:
    """Register the subcommands that live in their own modules."""
    for register in REGISTRARS:
        register(sub)
