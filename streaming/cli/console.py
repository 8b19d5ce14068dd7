"""What every ``medstream`` subcommand shares on the terminal: stderr and the usage failure."""

from __future__ import annotations

import typer
from rich.console import Console

stderr = Console(stderr=True)
EXIT_USAGE = 2


def fail(message: str) -> typer.Exit:
    """Print ``message`` as an error on stderr; the ``typer.Exit`` (status 2) to raise."""
    stderr.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(EXIT_USAGE)
