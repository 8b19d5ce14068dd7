"""``medstream models``: list the catalog, resolve a name, convert an MT model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from speech.catalog import HUB_IDS, PACKAGED_MODELS, convert_to_ctranslate2, resolve_asr_model
from speech.errors import MedstreamError
from streaming.cli.console import fail
from translate.catalog import (
    MT_HUB_IDS,
    TOKENIZER_FILES,
    model_format,
    resolve_mt_model,
)

models_app = typer.Typer(help="The model catalog.", no_args_is_help=True)


@models_app.command("list")
def models_list() -> None:
    """Show catalog names and whether each is available on this machine without a download."""
    table = Table(title="ASR models")
    table.add_column("name")
    table.add_column("source")
    table.add_column("available offline")
    for name in sorted({*PACKAGED_MODELS, *HUB_IDS}):
        packaged = PACKAGED_MODELS.get(name)
        source = " + ".join(packaged.requirements) if packaged else HUB_IDS[name]
        try:
            resolved = resolve_asr_model(name, allow_download=False)
            status = f"yes ({resolved.source})"
        except MedstreamError:
            status = "no"
        table.add_row(name, source, status)
    Console().print(table)
    mt = Table(title="MT models (none ships in a package: a directory, or the Hub)")
    mt.add_column("name")
    mt.add_column("source")
    mt.add_column("available offline")
    for name, repo in MT_HUB_IDS.items():
        try:
            resolve_mt_model(name, allow_download=False)
            status = "yes (hf-cache)"
        except MedstreamError:
            status = "no"
        mt.add_row(name, repo, status)
    mt.add_row("opus-mt-SRC-TGT", "Helsinki-NLP/opus-mt-SRC-TGT", "per pair")
    Console().print(mt)


@models_app.command("show")
def models_show(
    name: Annotated[str, typer.Argument(help="Model name, Hub id or directory.")],
    offline: Annotated[bool, typer.Option(help="Never contact the model hub.")] = False,
) -> None:
    """Resolve one model and print where it comes from (or every place that was tried)."""
    try:
        resolved = resolve_asr_model(name, allow_download=not offline)
    except MedstreamError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"{resolved.name}: {resolved.identifier} (source: {resolved.source})")


@models_app.command("convert")
def models_convert(
    name: Annotated[str, typer.Argument(help="A transformers MT model: directory, catalog name "
                                        "(" + ", ".join(MT_HUB_IDS) + ", opus-mt-SRC-TGT) or "
                                        "Hub id.")],
    out: Annotated[Path, typer.Argument(help="Directory to write the CTranslate2 model to.")],
    quantization: Annotated[str, typer.Option(help="int8, int8_float16, float16, float32 … "
                                              "(CTranslate2 can still pick another compute "
                                              "type at load time).")] = "int8_float16",
    offline: Annotated[bool, typer.Option(help="Never contact the model hub.")] = False,
    force: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
) -> None:
    """Convert a transformers MT model (Marian/OPUS-MT, NLLB-200, M2M100) to CTranslate2,
    tokenizer files included, so that `medstream translate --model OUT` serves it."""
    try:
        resolved = resolve_mt_model(name, allow_download=not offline)
    except MedstreamError as exc:
        raise fail(str(exc)) from None
    if resolved.format != "transformers":
        raise fail(f"{resolved.identifier} is already a CTranslate2 model")
    if out.exists() and not force:
        raise fail(f"{out} exists: choose another folder or pass --force")
    convert_to_ctranslate2(resolved.path, out, TOKENIZER_FILES, quantization)
    if model_format(out) != "ctranslate2":
        raise fail(f"the conversion in {out} is not a loadable CTranslate2 model")
    typer.echo(f"{resolved.identifier} -> {out} ({quantization})")
