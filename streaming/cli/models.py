"""``medstream models``: list every kind of model, resolve a name, convert an MT model."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ner.catalog import resolve_ner_model
from ner.encoder import resolve_encoder
from ner.export import MANIFEST as NER_MANIFEST
from ner.roles import RoleClassifier
from speech.catalog import HUB_IDS, convert_to_ctranslate2, resolve_asr_model
from speech.diarization import PINNED as _DIARIZER  # noqa: F401  (registers the diarizer)
from speech.errors import MedstreamError, ModelIntegrityError
from speech.packaged import (
    KIND_NAMES,
    KINDS,
    Kind,
    PinnedModel,
    find_pinned,
    pinned_models,
    resolve_pinned,
)
from streaming.cli.console import fail
from translate.catalog import (
    MT_HUB_IDS,
    TOKENIZER_FILES,
    hub_id,
    model_format,
    resolve_mt_model,
)

models_app = typer.Typer(help="The model catalog.", no_args_is_help=True)

HUB_NAMES: Mapping[Kind, Mapping[str, str]] = {"asr": HUB_IDS, "mt": MT_HUB_IDS}
"""Catalog names that stand for a Hugging Face Hub repository, by kind (not pinned)."""


@models_app.command("list")
def models_list() -> None:
    """Show every model medstream knows by name (ASR, NER, NER encoders, MT), its source, its
    pinned sha256 and whether it is available on this machine without a download (packaged
    models only when their weights have the pinned checksum)."""
    console = Console()
    problems: list[str] = []
    for kind in KINDS:
        pinned = pinned_models(kind)
        hub = HUB_NAMES.get(kind, {})
        table = Table(title=f"{KIND_NAMES[kind]}s",
                      caption=None if pinned else "none packaged: a directory, or the Hub")
        for column in ("name", "source", "pinned sha256", "available offline"):
            table.add_column(column)
        for name in sorted({*pinned, *hub}) if kind == "asr" else [*pinned, *hub]:
            model = pinned.get(name)
            status = _pinned_status(model, problems) if model is not None else "no"
            if not status.startswith("yes") and name in hub and _in_hf_cache(kind, name):
                status = "yes (hf-cache)"
            table.add_row(name, model.source if model is not None else hub[name],
                          model.weights_sha256[:12] if model is not None else "-", status)
        if kind == "mt":
            table.add_row("opus-mt-SRC-TGT", "Helsinki-NLP/opus-mt-SRC-TGT", "-", "per pair")
        console.print(table)
    for problem in problems:
        console.print(f"[bold red]integrity:[/] {problem}", highlight=False)


def _pinned_status(model: PinnedModel, problems: list[str]) -> str:
    """Whether a pinned model is here with the pinned weights (integrity errors are kept)."""
    tried: list[str] = []
    try:
        found = find_pinned(model, tried)
    except ModelIntegrityError as exc:
        problems.append(str(exc))
        return "no (fails the integrity check)"
    if found is None:
        return "no (not installed)" if model.requirements else "no (missing)"
    return f"yes ({'package' if model.requirements else 'project'}, weights verified)"


def _in_hf_cache(kind: Kind, name: str) -> bool:
    try:
        if kind == "asr":
            resolve_asr_model(name, allow_download=False)
        else:
            resolve_mt_model(name, allow_download=False)
    except MedstreamError:
        return False
    return True


@models_app.command("show")
def models_show(
    name: Annotated[str, typer.Argument(help="Model name (of any kind), Hub id or directory.")],
    offline: Annotated[bool, typer.Option(help="Never contact the model hub.")] = False,
) -> None:
    """Resolve one model and print its kind and where it comes from (or every place that was
    tried). A directory or a Hub id is resolved as an ASR model."""
    kinds = _kinds_of(name)
    try:
        lines = [f"{name} [{KIND_NAMES[kind]}]: {_resolve(kind, name, not offline)}"
                 for kind in kinds]
    except MedstreamError as exc:
        raise fail(str(exc)) from None
    typer.echo("\n".join(lines))


def _kinds_of(name: str) -> list[Kind]:
    """The kinds that know ``name``: pinned names of any kind, an NER export directory, MT
    catalog names; ASR otherwise (other directories, Hub ids, Whisper names)."""
    path = Path(name).expanduser()
    if path.exists():
        return ["ner"] if (path / NER_MANIFEST).is_file() else ["asr"]
    kinds = [kind for kind in KINDS if name in pinned_models(kind)]
    if not kinds and "/" not in name and name not in HUB_IDS and hub_id(name) is not None:
        kinds.append("mt")  # a name of MT_HUB_IDS or opus-mt-SRC-TGT
    return kinds or ["asr"]


def _resolve(kind: Kind, name: str, allow_download: bool) -> str:
    """``identifier (where)`` of ``name`` resolved as a model of ``kind``."""
    if kind == "asr":
        asr = resolve_asr_model(name, allow_download=allow_download)
        return f"{asr.identifier} (source: {asr.source})"
    if kind == "mt":
        mt = resolve_mt_model(name, allow_download=allow_download)
        return f"{mt.identifier} ({mt.format} model in {mt.path})"
    if kind == "roles":
        return RoleClassifier.load(name).identifier
    if kind == "diarization":
        verified = resolve_pinned(pinned_models(kind)[name])
        return f"{verified.identifier} (in {verified.path})"
    folder = resolve_ner_model(name) if kind == "ner" else resolve_encoder(name)
    return f"{folder.identifier} (in {folder.path})"


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
