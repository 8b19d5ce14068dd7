"""Shared fixtures and the two test tiers. Tests never touch the network: the hub is switched
off before any import.

Tiers: ``pytest`` runs the fast tier; ``pytest --tier full`` the full tier (every test that
loads a real model, trains one, starts a server, Ray, HAProxy or a browser, or takes more than
about 5 s on its own); ``pytest --tier all`` both. A full-tier test carries the ``slow`` marker:
set in its module, or here by :func:`pytest_collection_modifyitems` from
:data:`FULL_TIER_FIXTURES` and :data:`FULL_TIER_TESTS`. Tests outside the chosen tier are
deselected, not skipped. A fast-tier test that loads a real model (a packaged, shipped, cached
or downloaded CTranslate2 model; tiny random ones built in ``tmp_path`` and the Silero VAD that
faster-whisper bundles do not count), starts a server or Ray, or spawns a server, HAProxy, a
browser or a training run fails, saying so (:func:`pytest_runtest_setup`). Models stay loaded
for the session (``speech.loader``), so it sees the first load: run a suspect test alone.

Models that tests train are cached between runs in ``$MEDSTREAM_TEST_CACHE`` (default
``.cache/test-models`` in the checkout), keyed by what decides them: see :func:`cached_model`.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Generator, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from speech import synthetic

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["MEDSTREAM_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
SPEECH = SHARED_DATA / "speech"
WMT23 = SHARED_DATA / "mt" / "wmt23_terminology" / "wmt23_terminology.de-en.jsonl"
TICO_TERMS = SHARED_DATA / "terms" / "tico19_terms.en-de_fr_es_vi_zh.tsv"
TEST_DATA = Path(__file__).resolve().parent / "data"


_SCRATCH = pytest.StashKey[Path]()
"""The session's base temporary folder (models built in it are not real models)."""


@pytest.fixture(autouse=True, scope="session")
def _private_cache(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    request.config.stash[_SCRATCH] = tmp_path_factory.getbasetemp().resolve()
    os.environ["MEDSTREAM_CACHE"] = str(tmp_path_factory.mktemp("medstream-cache"))
    yield


def read_manifest(folder: str) -> list[dict[str, Any]]:
    """Rows of ``../shared/data/speech/<folder>/manifest.jsonl``; skips the test when absent."""
    path = SPEECH / folder / "manifest.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} is absent: the shared speech data is not on this machine")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    for row in rows:
        row["path"] = path.parent / row["audio_filepath"]
    return rows


@pytest.fixture(scope="session")
def tiny_en() -> Any:
    """The packaged English-only Whisper tiny.en, loaded once for the whole session."""
    from speech import load_asr

    return load_asr("tiny.en")


@pytest.fixture(scope="session")
def base_model() -> Any:
    """The packaged multilingual Whisper base, loaded once for the whole session."""
    from speech import load_asr

    return load_asr("base")


def speak(text: str, path: Path, voice: str = "en-us", words_per_minute: int = 150) -> Path:
    """Synthesise ``text`` to a WAV file with espeak-ng (skips the test if it is missing)."""
    try:
        return synthetic.speak(text, path, voice, words_per_minute)
    except synthetic.EspeakMissingError:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng; .ci/run does)")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 1-layer BERT tagger with the packaged encoder's tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

    from ner.encoder import resolve_encoder
    from ner.schema import EntityType, iob2_labels

    labels = iob2_labels([EntityType.MEDICATION, EntityType.MEDICAL_CONDITION,
                          EntityType.ANATOMY])

    folder = tmp_path_factory.mktemp("tiny-tagger")
    config = BertConfig(vocab_size=30522, hidden_size=8, num_hidden_layers=1,
                        num_attention_heads=1, intermediate_size=16,
                        id2label=dict(enumerate(labels)),
                        label2id={label: i for i, label in enumerate(labels)})
    BertForTokenClassification(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(resolve_encoder().path).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_marian() -> Any:
    """A small de→en Marian model trained here (2–3 minutes on 2 CPU cores) from the shared
    medical parallel text, converted to CTranslate2: a ``TinyMarianResult`` whose ``ct2_dir``
    loads like any OPUS-MT conversion. Trained once and kept in the test-model cache
    (:func:`cached_model`); skips without the shared data. Tests only read its folders."""
    from dataclasses import asdict

    from recipes.mt import tiny_marian as recipe

    config = recipe.TinyMarianConfig()
    needed = [recipe.DATA_DIR / recipe.WMT23_FILE,
              *(recipe.DATA_DIR / name for name in recipe.MEDLINE_FILES)]
    missing = [str(path) for path in needed if not path.is_file()]
    if missing:
        pytest.skip(f"{', '.join(missing)} absent: the shared MT data is not on this machine")

    def build(folder: Path) -> None:
        result = recipe.build_tiny_marian(folder, config)
        summary = {name: value for name, value in asdict(result).items()
                   if name not in ("ct2_dir", "hf_dir", "config")}
        (folder / "result.json").write_text(json.dumps(summary, indent=1) + "\n",
                                            encoding="utf-8")

    folder = cached_model("tiny-marian", build, config=asdict(config),
                          sources=source_files(recipe.__name__), data=needed,
                          packages=("torch", "transformers", "ctranslate2", "sentencepiece"))
    summary = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    summary["losses"] = tuple(summary["losses"])
    return recipe.TinyMarianResult(ct2_dir=folder / "ct2", hf_dir=folder / "hf", config=config,
                                   **summary)


# ----------------------------------------------------------------------------- test-model cache

FIRST_PARTY = ("speech", "translate", "ner", "streaming", "eval", "recipes")
"""The project's packages (whose modules count as training code in a cache key)."""

COMPLETE = "COMPLETE"
"""Written last into a cache entry: an entry without it is never used."""


def model_cache_dir() -> Path:
    """Where trained test models are kept between runs: ``$MEDSTREAM_TEST_CACHE``, by default
    ``.cache/test-models`` in the checkout (git ignores it; delete it to retrain everything)."""
    return Path(os.environ.get("MEDSTREAM_TEST_CACHE") or REPO / ".cache" / "test-models")


def _module_file(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"no module named {name!r}")
    return Path(spec.origin)


def source_files(module: str) -> list[Path]:
    """``module``'s file and the files of the project modules it imports (one level): the code
    that trains a model, for its cache key."""
    path = _module_file(module)
    packages = "|".join(FIRST_PARTY)
    imported = re.findall(rf"^\s*(?:from|import)\s+((?:{packages})(?:\.\w+)*)",
                          path.read_text(encoding="utf-8"), re.MULTILINE)
    return sorted({path, *(_module_file(name) for name in imported)})


def _shown(path: Path) -> str:
    """``path`` as a key names it: from the checkout or its ``../shared/data``, so that the key
    does not depend on where the checkout is."""
    for root, shown in ((REPO, ""), (SHARED_DATA, "../shared/data/")):
        if path.is_relative_to(root):
            return shown + path.relative_to(root).as_posix()
    return str(path)


def cached_model(name: str, build: Callable[[Path], None], *, config: Mapping[str, Any],
                 sources: list[Path], data: list[Path], packages: tuple[str, ...]) -> Path:
    """The folder of a trained test model, built by ``build(folder)`` only when the cache does
    not hold it yet.

    The entry is ``<cache>/<name>-<key>``, where ``key`` is the sha256 (first 16 hex digits) of
    the build ``config``, the sha256 of each training source file, the size and sha256 of each
    ``data`` file and the installed versions of ``packages``; ``key.json`` in the entry spells
    them out. A build goes into a temporary folder beside the entry, which gets the
    :data:`COMPLETE` marker last and is then renamed into place: an interrupted build never
    leaves an entry that looks usable. A lock per entry makes a concurrent session wait for
    the build instead of repeating it.
    """
    from speech.checksums import file_sha256  # after the hub is switched off (above)

    parts = {
        "name": name,
        "config": dict(config),
        "sources": {_shown(path): file_sha256(path) for path in sources},
        "data": {_shown(path): {"size": path.stat().st_size, "sha256": file_sha256(path)}
                 for path in data},
        "packages": {package: importlib.metadata.version(package) for package in packages},
    }
    text = json.dumps(parts, indent=1, sort_keys=True, default=str)
    key = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    root = model_cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    entry = root / f"{name}-{key}"
    if (entry / COMPLETE).is_file():
        return entry
    with (root / f".{entry.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (entry / COMPLETE).is_file():  # built by another session while this one waited
            return entry
        for leftover in [entry, *root.glob(f".{entry.name}.*.tmp")]:
            shutil.rmtree(leftover, ignore_errors=True)  # an interrupted build's remains
        folder = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", suffix=".tmp", dir=root))
        try:
            build(folder)
            (folder / "key.json").write_text(text + "\n", encoding="utf-8")
            (folder / COMPLETE).write_text("", encoding="utf-8")
            folder.chmod(0o755)  # mkdtemp made it private
            folder.rename(entry)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    return entry


# ----------------------------------------------------------------------------- test tiers

TIERS = ("fast", "full", "all")
FULL_TIER_MARKER = "slow"
"""The marker of a full-tier test (``-m slow`` and ``-m "not slow"`` select by it too)."""

FULL_TIER_FIXTURES: dict[str, str] = {
    # Fixture name (defined here), or MODULE::FIXTURE for one defined in that test module: a
    # test that uses it, directly or through another fixture, is in the full tier.
    "tiny_en": "loads the packaged Whisper tiny.en",
    "base_model": "loads the packaged Whisper base",
    "tiny_marian": "trains a Marian model (2.5 min; cached between runs)",
    "tests/test_ray_batch.py::local_ray": "starts Ray",
    "tests/test_replicas.py::cluster": "starts two medstream servers and HAProxy",
}
"""Fixtures that put the tests using them in the full tier, with the reason."""

FULL_TIER_TESTS: dict[str, str] = {
    # Test module, or MODULE::TEST (all its parametrisations) → reason. Times: call alone, on
    # the 2-core machine.
    "tests/test_nemo_streaming.py": "runs NeMo (importing it alone takes 10-15 s)",
    "tests/test_recipe_asr_nemo.py": "runs NeMo; trains the NeMo recipe",
    "tests/test_web_page.py": "starts Chromium",
    "tests/test_gpu.py": "loads Whisper base (on CUDA and on the CPU)",
    "tests/test_batch.py::test_cli_exit_code_summary_and_print": "loads tiny.en",
    "tests/test_batch.py::test_cli_refuses_bad_options_before_any_work":
        "loads tiny.en to check options against it",
    "tests/test_batch.py::test_cli_records_every_setting_in_the_json": "loads tiny.en",
    "tests/test_catalog.py::test_transformers_whisper_directory_is_converted_once_and_runs":
        "slow: 12 s (a random Whisper decodes to its length limit)",
    "tests/test_eval_cli.py::test_asr_report_from_batch_transcripts_and_a_missing_one":
        "loads tiny.en (11-17 s)",
    "tests/test_eval_cli.py::test_pipeline_scores_asr_then_entities_on_its_output":
        "loads tiny.en (27-32 s)",
    "tests/test_live_server.py::"
    "test_the_vad_runs_off_the_event_loop_and_outside_the_scheduler_lock": "starts a server",
    "tests/test_ner_tagger.py::test_the_shipped_model_is_pinned_and_finds_medical_entities":
        "loads the shipped NER model",
    "tests/test_transcribe_entities.py::test_transcribe_entities_on_a_recorded_consultation":
        "loads Whisper base and the shipped NER model",
    "tests/test_transcribe_translation.py::"
    "test_speech_translation_to_english_with_glossary_report": "loads Whisper base (19 s)",
    "tests/test_transcribe_translation.py::test_translation_options_are_checked_before_any_work":
        "loads Whisper base and tiny.en to check options against them",
}
"""Tests in the full tier whatever fixtures they use, with the reason."""

_DESELECTED = pytest.StashKey[int]()

_SPAWNS_FULL_TIER = re.compile(r"(^|/)(haproxy|chromium|chromium-browser|medstream)$|"
                               r"(^|/)train\.py$|^run-driver$")
"""Programs a fast-tier test may not start (servers, HAProxy, browsers, training runs)."""


_WATCH = pytest.StashKey[tuple[pytest.MonkeyPatch, list[str]]]()


def _watch(config: pytest.Config) -> tuple[pytest.MonkeyPatch, list[str]]:
    """Patches that record, without changing what happens, a CTranslate2 model loaded from
    outside the session's temporary folder (a packaged, shipped, cached or downloaded model;
    tiny ones built in ``tmp_path`` are fine), a uvicorn server or Ray started, and a server,
    HAProxy, a browser or a training run spawned."""
    import subprocess as spawning
    import sys

    import ctranslate2
    import uvicorn

    patch, seen = pytest.MonkeyPatch(), []

    def loader(factory: Any) -> Any:
        def load(model_path: Any, *args: Any, **kwargs: Any) -> Any:
            scratch = config.stash.get(_SCRATCH, None)
            if scratch is None or not Path(str(model_path)).resolve().is_relative_to(scratch):
                seen.append(f"loads the model {model_path}")
            return factory(model_path, *args, **kwargs)
        return load

    def watch(original: Any, what: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            seen.append(what)
            return original(*args, **kwargs)
        return call

    popen = spawning.Popen.__init__

    def spawn(self: Any, args: Any, *rest: Any, **kwargs: Any) -> None:
        argv = [args] if isinstance(args, (str, bytes, os.PathLike)) else list(args)
        if any(_SPAWNS_FULL_TIER.search(str(arg)) for arg in argv):
            seen.append(f"starts {' '.join(map(str, argv))}")
        popen(self, args, *rest, **kwargs)

    for owner, name in ((ctranslate2, "Encoder"), (ctranslate2, "Translator"),
                        (ctranslate2, "Generator"), (ctranslate2.models, "Whisper")):
        patch.setattr(owner, name, loader(getattr(owner, name)))
    patch.setattr(uvicorn.Server, "__init__", watch(uvicorn.Server.__init__, "starts a server"))
    patch.setattr(spawning.Popen, "__init__", spawn)
    if "ray" in sys.modules:
        patch.setattr(sys.modules["ray"], "init", watch(sys.modules["ray"].init, "starts Ray"))
    return patch, seen


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    """Watches a fast-tier test from the setup of its fixtures (of any scope) to their
    teardown: if it does what only the full tier may (:func:`_watch`), it fails, saying what."""
    if item.get_closest_marker(FULL_TIER_MARKER) is None:
        item.stash[_WATCH] = _watch(item.config)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    watched = item.stash.get(_WATCH, None)
    try:
        result = yield
    finally:
        if watched is not None:
            watched[0].undo()
            del item.stash[_WATCH]
    if watched is not None and watched[1]:
        pytest.fail(f"{item.nodeid} is in the fast tier but {'; '.join(watched[1])}: list it in "
                    "FULL_TIER_TESTS in tests/conftest.py", pytrace=False)
    return result


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--tier", choices=TIERS, default="fast",
        help="which tests to run: 'fast' (the default: no real model, training, server, Ray, "
             "HAProxy or browser; a few minutes), 'full' (only the tests marked "
             f"'{FULL_TIER_MARKER}': the rest), or 'all'. Tests outside the tier are "
             "deselected. See tests/conftest.py.")


def pytest_report_header(config: pytest.Config) -> str:
    tier = config.getoption("--tier")
    if tier == "all":
        return "tier: all (fast and full)"
    other = "full" if tier == "fast" else "fast"
    return f"tier: {tier} (--tier {other} or --tier all for the rest)"


def _split(key: str) -> tuple[str, str | None]:
    module, _, name = key.partition("::")
    return module, name or None


def _full_tier_reason(item: pytest.Item) -> str | None:
    module = item.nodeid.split("::", 1)[0]
    if item.get_closest_marker(FULL_TIER_MARKER) is not None:
        return f"marked {FULL_TIER_MARKER} in its test file"
    fixtures = set(getattr(item, "fixturenames", ()))
    for key, reason in FULL_TIER_FIXTURES.items():
        where, name = _split(key)
        if (name is None and key in fixtures) or (where == module and name in fixtures):
            return reason
    name = item.nodeid.split("::", 1)[1].split("[", 1)[0] if "::" in item.nodeid else None
    return FULL_TIER_TESTS.get(module) or FULL_TIER_TESTS.get(f"{module}::{name}")


def _stale_entries(items: list[pytest.Item]) -> list[str]:
    """Entries of the tables that name a module, test or fixture that no longer exists."""
    modules = {item.nodeid.split("::", 1)[0]: item.module for item in items
               if isinstance(item, pytest.Function)}
    stale = []
    for key in [*FULL_TIER_FIXTURES, *FULL_TIER_TESTS]:
        where, name = _split(key)
        if key in FULL_TIER_FIXTURES and name is None:
            exists = key in globals()
        else:
            exists = (REPO / where).is_file() and (
                name is None or where not in modules or hasattr(modules[where], name))
        if not exists:
            stale.append(key)
    return stale


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks the full-tier tests and deselects the tests outside ``--tier``."""
    stale = _stale_entries(items)
    if stale:
        raise pytest.UsageError("tests/conftest.py names tests or fixtures that do not exist "
                                f"(moved or renamed?): {', '.join(stale)}")
    tier = config.getoption("--tier")
    selected, deselected = [], []
    for item in items:
        reason = _full_tier_reason(item)
        if reason is not None:
            item.add_marker(FULL_TIER_MARKER)
            item.user_properties.append(("tier", f"full: {reason}"))
        if tier == "all" or (tier == "full") == (reason is not None):
            selected.append(item)
        else:
            deselected.append(item)
    config.stash[_DESELECTED] = len(deselected)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    tier = config.getoption("--tier")
    deselected = config.stash.get(_DESELECTED, 0)
    if tier != "all" and deselected:
        other = "full" if tier == "fast" else "fast"
        terminalreporter.write_line(
            f"tier {tier}: {deselected} tests of the {other} tier deselected "
            f"(pytest --tier {other} runs them, --tier all runs everything)")
