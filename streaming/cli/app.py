"""The ``medstream`` command: one Typer application with every subcommand registered."""

from __future__ import annotations

import typer

from streaming.cli.entities import ner_command
from streaming.cli.evaluation import eval_app
from streaming.cli.models import models_app
from streaming.cli.serve import serve_command, stream_command
from streaming.cli.transcribe import transcribe
from streaming.cli.translation import translate_command

app = typer.Typer(
    name="medstream",
    help="Speech recognition and translation for medical conversations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("transcribe")(transcribe)
app.add_typer(models_app, name="models")
app.add_typer(eval_app, name="eval")
app.command("ner")(ner_command)
app.command("translate")(translate_command)
app.command("serve")(serve_command)
app.command("stream")(stream_command)


def main() -> None:
    app()
