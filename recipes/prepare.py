"""Data preparation: speech corpora in their usual layouts to NeMo JSONL manifests.

Usage, from the repository root (``--output`` is the manifest written; every command checks the
result and prints a report, see below)::

    python -m recipes.prepare folder DIR --lang en --output data/en/train.jsonl
    python -m recipes.prepare common-voice cv-corpus/de/train.tsv --output data/de/train.jsonl
    python -m recipes.prepare hf NAME_OR_DIR --split train [--config CONFIG] --lang de \\
        --output data/de/train.jsonl
    python -m recipes.prepare multimed ROOT_OR_HF_NAME --lang vi --split train \\
        [--translations en,de] --output data/vi/train.jsonl
    python -m recipes.prepare check data/de/train.jsonl [--output cleaned.jsonl]

Sources:

- **folder** (:func:`from_folder`): every audio file under ``DIR`` (recursive; ``.wav .flac
  .mp3 .ogg .opus .m4a``) with its transcript beside it (same stem, ``.txt`` or ``.lab``), or
  in one ``DIR/transcripts.tsv`` or Kaldi-style ``DIR/text`` file (``stem<space or tab>text``
  per line). A sidecar file wins over the shared file.
- **common-voice** (:func:`from_common_voice`): a Common Voice ``validated.tsv`` / ``train.tsv``
  (columns found by header name: ``path`` relative to ``clips/`` beside the TSV, ``sentence``;
  ``client_id`` is kept as ``speaker``, ``locale`` as ``lang`` when present).
- **hf** (:func:`from_hf_dataset`): a Hugging Face dataset through ``datasets`` (hub name or a
  folder written by ``save_to_disk``). Audio is decoded here (PyAV, not torchcodec) and written
  as 16 kHz mono wav files, so the manifest points at real files.
- **multimed** (:func:`from_multimed`): MultiMed / MultiMed-ST, either from the hub
  (``leduckhai/MultiMed``: a config per language, ``English``, ``Vietnamese``, ``German``,
  ``French``, ``Chinese``, splits ``train``, ``eval``, ``test``, columns ``audio``, ``text``,
  ``duration``; ``leduckhai/MultiMed-ST``: the same with one translation column per target
  language named after it, e.g. ``German``, and the test split ``corrected.test``), or from
  disk in this layout::

      ROOT/<lang>/<split>.jsonl    one JSON object per line: "audio" (or "audio_filepath"),
                                   relative to ROOT/<lang> or absolute, "text", translations
                                   as "translation_<tgt>" (also read: "text_<tgt>" or the
                                   target language's English name, as on the hub); other
                                   keys are kept; "duration" is re-read from the file
      ROOT/<lang>/<split>.tsv      the same with a header row (tab-separated, no quoting)
      ROOT/<lang>/audio/...        the audio files

Manifest conventions (:mod:`recipes.manifests`): ``audio_filepath`` (relative to the manifest's
folder when the audio lies under it, else absolute), ``duration`` (seconds, read from the file),
``text`` (as given: recipes normalise it), ``lang`` (ISO 639-1), and extra keys such as
``speaker``. **A translation of the utterance into language ``xx`` is the key
``translation_xx``**: the speech translation recipe reads ``translation_<tgt>`` as its target.

Every builder returns ``(entries, problems)`` and never stops at the first problem: audio without
a transcript, missing or unreadable audio, empty text, malformed rows. The command then checks the
entries (:func:`recipes.manifests.validate`: durations within ``--min-duration`` and
``--max-duration``), flags speaking-rate outliers (:func:`recipes.manifests.rate_outliers`: kept,
reported), prints the kept hours and the problems grouped by kind with first examples, writes the
manifest and exits non-zero only when nothing usable remains (1), or when the source cannot be
read at all (2).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from recipes.manifests import (
    Entry,
    Problem,
    rate_outliers,
    read_manifest,
    validate,
    write_manifest,
)

SAMPLE_RATE = 16_000
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a"})
TRANSCRIPT_SUFFIXES = (".txt", ".lab")
TRANSCRIPT_FILES = ("transcripts.tsv", "text")
TEXT_COLUMNS = ("sentence", "text", "transcription", "normalized_text")
LANGUAGE_NAMES = {"english": "en", "vietnamese": "vi", "german": "de", "french": "fr",
                  "chinese": "zh", "spanish": "es", "portuguese": "pt", "italian": "it",
                  "dutch": "nl", "japanese": "ja", "korean": "ko", "russian": "ru",
                  "arabic": "ar", "swedish": "sv", "polish": "pl", "turkish": "tr"}
"""English language names (the hub's MultiMed configs and MultiMed-ST translation columns)."""
RESERVED_KEYS = frozenset({"audio_filepath", "duration", "text", "lang"})
"""Manifest keys a source column may not overwrite as an extra key."""

Prepared = tuple[list[Entry], list[Problem]]


class PrepareError(Exception):
    """The source cannot be read at all (not a per-utterance problem)."""


def from_folder(folder: Path, lang: str = "", audio_dir: Path | None = None) -> Prepared:
    """Audio files under ``folder`` with a ``.txt``/``.lab`` transcript of the same stem beside
    them or a line in ``folder/transcripts.tsv`` or ``folder/text``. ``audio_dir`` receives wav
    copies of files libsndfile cannot read (see :func:`audio_entry`)."""
    if not folder.is_dir():
        raise PrepareError(f"{folder} is not a folder")
    shared, problems = _read_transcript_files(folder)
    audio = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES
                   and p.is_file())
    entries: list[Entry] = []
    for number, path in enumerate(audio, 1):
        try:
            text = _sidecar_text(path)
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(number, str(path), f"unreadable transcript ({exc})",
                                    "unreadable transcript"))
            continue
        if text is None and path.stem in shared:
            text = shared[path.stem][0]
        if text is None:
            problems.append(Problem(number, str(path), "no transcript: no "
                                    f"{path.stem}.txt or .lab beside it, nor a line in "
                                    f"{' or '.join(TRANSCRIPT_FILES)}", "no transcript"))
            continue
        _collect(audio_entry(path, text, lang, {}, number, audio_dir), entries, problems)
    stems = {path.stem for path in audio}
    problems += [Problem(line, str(where), f"'{stem}' has no audio file",
                         "transcript without audio")
                 for stem, (_, where, line) in shared.items() if stem not in stems]
    return entries, problems


def from_common_voice(tsv: Path, clips_dir: Path | None = None, lang: str = "",
                      audio_dir: Path | None = None) -> Prepared:
    """Rows of a Common Voice TSV (``validated.tsv``, ``train.tsv``, ...): ``path`` is looked up
    in ``clips_dir`` (default: ``clips/`` beside the TSV), ``sentence`` is the text,
    ``client_id`` becomes ``speaker`` and ``locale`` (when the column exists) the language."""
    clips = clips_dir or tsv.parent / "clips"
    entries: list[Entry] = []
    problems: list[Problem] = []
    try:
        with tsv.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            missing = {"path", "sentence"} - set(reader.fieldnames or ())
            if missing:
                raise PrepareError(f"{tsv} has no column {', '.join(sorted(missing))} "
                                   f"(header: {reader.fieldnames}); is it a Common Voice TSV?")
            for row in reader:
                line = reader.line_num
                if None in row or None in row.values():
                    problems.append(Problem(line, row.get("path") or "", f"{tsv}:{line}: "
                                            "wrong number of fields", "malformed row"))
                    continue
                extra = {"speaker": row["client_id"]} if row.get("client_id") else {}
                extra |= {key: row[key] for key in ("gender", "age", "accents", "accent")
                          if row.get(key)}
                _collect(audio_entry(clips / row["path"], row["sentence"],
                                     row.get("locale") or lang, extra, line, audio_dir),
                         entries, problems)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PrepareError(f"cannot read {tsv}: {exc}") from exc
    return entries, problems


def from_hf_dataset(name_or_path: str, split: str = "train", config: str | None = None, *,
                    audio_dir: Path, audio_column: str = "audio",
                    text_column: str | None = None, lang: str = "",
                    translation_columns: Mapping[str, str] | None = None) -> Prepared:
    """Rows of a Hugging Face dataset (hub name, or a folder written by ``save_to_disk``).

    The text column is ``text_column`` or the first of ``sentence``, ``text``, ``transcription``,
    ``normalized_text``. Audio (decoded or not, bytes, a path or an array) is decoded here and
    written to ``audio_dir/<split>-<row>.wav`` at 16 kHz mono. Translations
    (``translation_columns``: column → language; by default columns named ``text_xx``,
    ``translation_xx`` or after a language, e.g. ``German``) become ``translation_xx``; other
    plain columns (strings, numbers) are kept as extra keys. Raises :class:`PrepareError` when
    ``datasets`` is missing or the dataset cannot be loaded (offline: not in the cache).
    """
    dataset = _load_hf(name_or_path, split, config)
    columns = list(dataset.column_names)
    if audio_column not in columns:
        raise PrepareError(f"{name_or_path} has no audio column {audio_column!r} (columns: "
                           f"{columns}); pass --audio-column")
    text_column = text_column or next((c for c in TEXT_COLUMNS if c in columns), None)
    if text_column is None or text_column not in columns:
        raise PrepareError(f"{name_or_path} has no text column among "
                           f"{text_column or TEXT_COLUMNS} (columns: {columns}); "
                           "pass --text-column")
    translations = (dict(translation_columns) if translation_columns is not None
                    else translation_columns_of(columns, lang))
    datasets = _datasets()
    if isinstance(dataset.features[audio_column], datasets.Audio):
        # Decoding through datasets needs torchcodec; the raw bytes and path need nothing.
        dataset = dataset.cast_column(audio_column, datasets.Audio(decode=False))
    # A column named after the source language repeats the transcript: neither kind is extra.
    skip = {audio_column, text_column, *translations, *translation_columns_of(columns),
            *RESERVED_KEYS}
    entries: list[Entry] = []
    problems: list[Problem] = []
    for number, row in enumerate(dataset, 1):
        name = _audio_name(row[audio_column]) or f"{name_or_path}[{split}][{number - 1}]"
        text = str(row[text_column] or "").strip()
        if not text:
            problems.append(Problem(number, name, "empty text", "empty text"))
            continue
        try:
            samples = _decode(row[audio_column], name)
        except (ValueError, TypeError, OSError) as exc:
            problems.append(Problem(number, name, f"unreadable audio ({exc})",
                                    "unreadable audio"))
            continue
        extra: dict[str, Any] = {key: value for key, value in row.items() if key not in skip
                                 and isinstance(value, str | int | float | bool)}
        extra |= {f"translation_{code}": str(row[column]).strip()
                  for column, code in translations.items() if row[column]}
        path = _write_wav(samples, audio_dir / f"{_safe(split)}-{number - 1:06d}.wav")
        entries.append(Entry(path, round(len(samples) / SAMPLE_RATE, 3), text, lang, extra))
    return entries, problems


def from_multimed(root: str, lang: str, split: str = "train", *, audio_dir: Path,
                  translations: Sequence[str] | None = None,
                  config: str | None = None) -> Prepared:
    """MultiMed / MultiMed-ST utterances in ``lang`` (ISO 639-1): from ``ROOT/<lang>/<split>``
    on disk (layout in the module docstring), else from the hub dataset ``root`` (config
    ``config`` or the language's English name, e.g. ``Vietnamese``). ``translations`` limits
    the ``translation_xx`` keys kept to those languages; an entry missing one of them is
    reported (kept: it still serves ASR)."""
    folder = Path(root) / lang
    if folder.is_dir():
        entries, problems = _multimed_from_disk(folder, lang, split, audio_dir)
    else:
        names = {code: name.capitalize() for name, code in LANGUAGE_NAMES.items()}
        entries, problems = from_hf_dataset(root, split, config or names.get(lang, lang),
                                            audio_dir=audio_dir, text_column="text", lang=lang)
    if translations is None:
        return entries, problems
    wanted = {f"translation_{code}" for code in translations}
    kept = []
    for number, entry in enumerate(entries, 1):
        extra = {k: v for k, v in entry.extra.items()
                 if not k.startswith("translation_") or k in wanted}
        problems += [Problem(number, str(entry.audio_filepath), f"no {key}",
                             "missing translation", warning=True)
                     for key in sorted(wanted - extra.keys())]
        kept.append(Entry(entry.audio_filepath, entry.duration, entry.text, entry.lang, extra))
    return kept, problems


def translation_columns_of(columns: Iterable[str], source_lang: str = "") -> dict[str, str]:
    """Columns that hold translations, mapped to their language: ``text_xx``,
    ``translation_xx`` or a language's English name (``German``); the source language's own
    column is not a translation."""
    found = {}
    for column in columns:
        key = column.lower()
        match = re.fullmatch(r"(?:text|translation)_([a-z]{2,3}(?:[-_][a-z]{2,4})?)", key)
        code = match.group(1) if match else LANGUAGE_NAMES.get(key)
        if code and code != source_lang:
            found[column] = code
    return found


def audio_entry(path: Path, text: str, lang: str, extra: dict[str, Any], line: int,
                audio_dir: Path | None) -> Entry | Problem:
    """The entry for one utterance, its duration read from the file, or what is wrong with it.

    A file libsndfile cannot read (``.m4a``) but PyAV can is written as 16 kHz mono wav to
    ``audio_dir`` (NeMo's loaders use libsndfile); without ``audio_dir`` that is a problem."""
    name = str(path)
    text = " ".join(text.split())
    if not text:
        return Problem(line, name, "empty text", "empty text")
    if not path.is_file():
        return Problem(line, name, "audio file missing", "audio file missing")
    try:
        info = sf.info(name)
        return Entry(path.resolve(), round(info.frames / info.samplerate, 3), text, lang, extra)
    except (RuntimeError, sf.LibsndfileError):
        pass  # not a libsndfile format, or corrupt: PyAV tells which
    try:
        samples = _decode(path, name)
    except (ValueError, OSError) as exc:
        return Problem(line, name, f"unreadable audio ({exc})", "unreadable audio")
    if audio_dir is None:
        return Problem(line, name, "libsndfile cannot read it (training cannot either): pass "
                       "an audio folder to convert it to wav", "needs conversion")
    target = _write_wav(samples, audio_dir / f"{line:06d}-{_safe(path.stem)}.wav")
    return Entry(target, round(len(samples) / SAMPLE_RATE, 3), text, lang,
                 {**extra, "source_audio": name})


def check(entries: Sequence[Entry], problems: Sequence[Problem], *, min_duration: float = 0.1,
          max_duration: float = 30.0, rate_factor: float = 3.0) -> Prepared:
    """The usable entries and all problems: the builder's, :func:`validate`'s and the speaking
    rate outliers (kept, as warnings)."""
    kept, found = validate(entries, min_duration=min_duration, max_duration=max_duration)
    return kept, [*problems, *found, *rate_outliers(kept, factor=rate_factor)]


def report(kept: Sequence[Entry], problems: Sequence[Problem], examples: int = 3) -> str:
    """A readable summary: utterances and hours kept, problems grouped by kind with counts and
    the first ``examples`` of each."""
    hours = sum(entry.duration for entry in kept) / 3600
    lines = [f"kept {len(kept)} utterances, {hours:.2f} h ({hours * 60:.1f} min); "
             f"{len(problems)} problems"]
    groups: dict[str, list[Problem]] = {}
    for problem in problems:
        groups.setdefault(problem.kind or problem.reason, []).append(problem)
    for kind, group in sorted(groups.items(), key=lambda item: -len(item[1])):
        status = "kept, warning" if all(p.warning for p in group) else "dropped"
        lines.append(f"  {kind}: {len(group)} ({status})")
        lines += [f"    {p.audio or f'line {p.line}'}: {p.reason}" for p in group[:examples]]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.source == "check":
            entries, problems = read_manifest(args.manifest)
        else:
            audio_dir = args.audio_dir or args.output.parent / f"{args.output.stem}_audio"
            entries, problems = _build(args, audio_dir)
    except (PrepareError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    kept, problems = check(entries, problems, min_duration=args.min_duration,
                           max_duration=args.max_duration, rate_factor=args.rate_factor)
    print(report(kept, problems))
    if not kept:
        print("error: nothing usable remains", file=sys.stderr)
        return 1
    if args.output is not None:
        write_manifest(_relative(kept, args.output.parent), args.output)
        print(f"wrote {args.output}")
    return 0


def _build(args: argparse.Namespace, audio_dir: Path) -> Prepared:
    if args.source == "folder":
        return from_folder(args.folder, args.lang, audio_dir)
    if args.source == "common-voice":
        return from_common_voice(args.tsv, args.clips, args.lang, audio_dir)
    if args.source == "hf":
        return from_hf_dataset(args.dataset, args.split, args.config, audio_dir=audio_dir,
                               audio_column=args.audio_column, text_column=args.text_column,
                               lang=args.lang)
    translations = args.translations.split(",") if args.translations else None
    return from_multimed(args.root, args.lang, args.split, audio_dir=audio_dir,
                         translations=translations, config=args.config)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m recipes.prepare", description=__doc__
                                     .split("\n\n")[0])
    sub = parser.add_subparsers(dest="source", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--min-duration", type=float, default=0.1, help="seconds")
    common.add_argument("--max-duration", type=float, default=30.0, help="seconds")
    common.add_argument("--rate-factor", type=float, default=3.0,
                        help="flag characters/s beyond this factor of the language's median")
    source = argparse.ArgumentParser(add_help=False, parents=[common])
    source.add_argument("--output", type=Path, required=True, help="the manifest to write")
    source.add_argument("--lang", default="", help="ISO 639-1 code of the speech")
    source.add_argument("--audio-dir", type=Path,
                        help="where converted audio goes (default: OUTPUT_STEM_audio/ beside "
                             "the manifest)")
    folder = sub.add_parser("folder", parents=[source], help="audio + transcript files")
    folder.add_argument("folder", type=Path)
    voice = sub.add_parser("common-voice", parents=[source], help="a Common Voice TSV")
    voice.add_argument("tsv", type=Path)
    voice.add_argument("--clips", type=Path, help="default: clips/ beside the TSV")
    hub = sub.add_parser("hf", parents=[source], help="a Hugging Face dataset")
    hub.add_argument("dataset", help="hub name or a save_to_disk folder")
    hub.add_argument("--split", default="train")
    hub.add_argument("--config")
    hub.add_argument("--audio-column", default="audio")
    hub.add_argument("--text-column", help=f"default: the first of {', '.join(TEXT_COLUMNS)}")
    multimed = sub.add_parser("multimed", parents=[source], help="MultiMed / MultiMed-ST")
    multimed.add_argument("root", help="ROOT folder (ROOT/<lang>/<split>.jsonl) or hub name")
    multimed.add_argument("--split", default="train")
    multimed.add_argument("--config", help="hub config (default: the language's name)")
    multimed.add_argument("--translations", help="target languages to keep, e.g. en,de")
    checked = sub.add_parser("check", parents=[common], help="check an existing manifest")
    checked.add_argument("manifest", type=Path)
    checked.add_argument("--output", type=Path, help="write the usable entries here")
    return parser


def _collect(result: Entry | Problem, entries: list[Entry], problems: list[Problem]) -> None:
    if isinstance(result, Entry):
        entries.append(result)
    else:
        problems.append(result)


def _sidecar_text(audio: Path) -> str | None:
    for suffix in TRANSCRIPT_SUFFIXES:
        path = audio.with_suffix(suffix)
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return None


def _read_transcript_files(folder: Path
                           ) -> tuple[dict[str, tuple[str, Path, int]], list[Problem]]:
    """Text, file and line per stem in the folder's shared transcript files."""
    texts: dict[str, tuple[str, Path, int]] = {}
    problems = []
    for name in TRANSCRIPT_FILES:
        path = folder / name
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            stem, *rest = line.split(maxsplit=1)
            if stem in texts:
                problems.append(Problem(number, str(path), f"'{stem}' appears twice (the first "
                                        "line is used)", "duplicate transcript", warning=True))
                continue
            texts[stem] = (rest[0] if rest else "", path, number)
    return texts, problems


def _multimed_from_disk(folder: Path, lang: str, split: str, audio_dir: Path) -> Prepared:
    jsonl, tsv = folder / f"{split}.jsonl", folder / f"{split}.tsv"
    rows: list[tuple[int, dict[str, Any] | None]] = []
    if jsonl.is_file():
        for number, line in enumerate(jsonl.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except ValueError:
                    row = None
                rows.append((number, row if isinstance(row, dict) else None))
    elif tsv.is_file():
        with tsv.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            rows = [(reader.line_num, None if None in row or None in row.values() else row)
                    for row in reader]
    else:
        raise PrepareError(f"neither {jsonl} nor {tsv} exists")
    entries: list[Entry] = []
    problems: list[Problem] = []
    source = jsonl if jsonl.is_file() else tsv
    for number, row in rows:
        audio = row and (row.get("audio") or row.get("audio_filepath"))
        if row is None or not isinstance(audio, str):
            problems.append(Problem(number, "", f"{source}:{number}: not a row with 'audio' "
                                    "and 'text'", "malformed row"))
            continue
        translations = translation_columns_of(row, lang)
        extra = {k: v for k, v in row.items()
                 if k not in {"audio", *RESERVED_KEYS, *translation_columns_of(row)}}
        extra |= {f"translation_{code}": " ".join(str(row[column]).split())
                  for column, code in translations.items() if str(row[column] or "").strip()}
        path = Path(audio) if Path(audio).is_absolute() else folder / audio
        _collect(audio_entry(path, str(row.get("text") or ""), lang, extra, number, audio_dir),
                 entries, problems)
    return entries, problems


def _datasets() -> Any:
    try:
        import datasets  # type: ignore[import-untyped]
    except ImportError as exc:
        raise PrepareError("the Hugging Face `datasets` library is not installed: "
                           "pip install datasets (the nemo extra includes it)") from exc
    return datasets


def _load_hf(name_or_path: str, split: str, config: str | None) -> Any:
    datasets = _datasets()
    path = Path(name_or_path)
    try:
        if path.is_dir() and any((path / name).is_file() for name in (
                "dataset_info.json", "dataset_dict.json", "state.json")):
            loaded = datasets.load_from_disk(str(path))
            if isinstance(loaded, datasets.DatasetDict):
                if split not in loaded:
                    raise PrepareError(f"{path} has the splits {list(loaded)}, not {split!r}")
                loaded = loaded[split]
            return loaded
        return datasets.load_dataset(name_or_path, config, split=split)
    except PrepareError:
        raise
    except Exception as exc:  # datasets raises many kinds here; all mean "cannot load it"
        raise PrepareError(f"cannot load the dataset {name_or_path!r} (config {config}, split "
                           f"{split}): {exc}. Offline, only datasets already in the Hugging "
                           "Face cache or saved with save_to_disk can be loaded") from exc


def _audio_name(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("path") or "")
    return value if isinstance(value, str) else ""


def _decode(value: Any, name: str) -> np.ndarray:
    """16 kHz mono float32 samples from a path, or a datasets audio value: ``{"bytes",
    "path"}`` (undecoded) or ``{"array", "sampling_rate"}`` (decoded)."""
    from speech.audio import load_audio
    from speech.errors import AudioDecodeError

    try:
        if isinstance(value, str | Path):
            return load_audio(Path(value), name)
        if isinstance(value, dict) and value.get("bytes"):
            return load_audio(io.BytesIO(value["bytes"]), name)
        if isinstance(value, dict) and value.get("array") is not None:
            return _resample(np.asarray(value["array"], dtype=np.float32),
                             int(value["sampling_rate"]))
        if isinstance(value, dict) and value.get("path"):
            return load_audio(Path(value["path"]), name)
    except AudioDecodeError as exc:
        raise ValueError(exc.reason) from exc
    raise ValueError(f"no audio in {type(value).__name__} value")


def _resample(samples: np.ndarray, rate: int) -> np.ndarray:
    if samples.ndim == 2:  # datasets gives (channels, samples); soundfile (samples, channels)
        samples = samples.mean(axis=0 if samples.shape[0] < samples.shape[1] else 1)
    if samples.size == 0:
        raise ValueError("the audio array is empty")
    if rate != SAMPLE_RATE:
        import soxr

        samples = soxr.resample(samples, rate, SAMPLE_RATE)
    return np.ascontiguousarray(samples, dtype=np.float32)


def _write_wav(samples: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, SAMPLE_RATE, subtype="PCM_16")
    return path.resolve()


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("_") or "audio"


def _relative(entries: Iterable[Entry], folder: Path) -> list[Entry]:
    base = folder.resolve()
    return [Entry(e.audio_filepath.relative_to(base) if e.audio_filepath.is_relative_to(base)
                  else e.audio_filepath, e.duration, e.text, e.lang, e.extra) for e in entries]


if __name__ == "__main__":
    sys.exit(main())
