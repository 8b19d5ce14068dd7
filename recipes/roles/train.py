"""Train medstream's speaker-role classifier (clinician / patient / other), then report on it.

Usage (from the repository root; see recipes/roles/README.md):

    .venv/bin/python recipes/roles/train.py --config recipes/roles/conf/full.yaml \\
        --output runs/roles
    cp runs/roles/model.json ner/models/roles-en/   # then pin its sha256 in ner/roles.py

Steps: 1. read the train splits of the dialogue corpora and hold out a seeded share of their
dialogues for tuning; 2. choose the n-gram vocabulary on the rest (document frequency); 3. for
each regularisation strength C, fit a multinomial logistic regression on the turns (as written
and in spoken style, :func:`ner.role_features.spoken_style`) and keep the C of least log-loss
on the tuning turns; 4. on the tuning dialogues choose the speaker settings (temperature: least
log-loss of the main pair's joint assignment; min_words: most extra speakers right); 5. refit
on all train dialogues with the chosen C and write ``model.json``; 6. score the valid splits
(held-out dialogues) per corpus and the OSCE interviews, as written and in spoken style, into
``report.json`` and ``report.md``.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from ner.role_features import FEATURES_VERSION, known, spoken_style, turn_features
from ner.roles import FORMAT, MODEL_FILE, ROLES, RoleClassifier, RoleSettings
from recipes.config import repo_path
from recipes.config import start as start_recipe
from recipes.roles.data import Dialogue, load_dialogues, read_osce
from recipes.roles.evaluate import (
    RoleScores,
    by_sentence,
    first_turns,
    score,
    with_fragments,
)
from recipes.roles.report import write_reports

logger = logging.getLogger("recipes.roles.train")


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a run (the YAML keys); recorded in ``report.json``."""

    data_root: str = "../shared/data/dialogue"
    corpora: tuple[str, ...] = ("mts_dialog", "aci_bench")
    osce_dir: str | None = "../shared/data/speech/fareez_osce_en/transcripts"
    """Folder of role-labelled interview transcripts (``D:``/``P:``) scored at the end."""
    train_dialogues: int | None = None
    """Per corpus, a seeded sample of this many train dialogues (None: all)."""
    eval_dialogues: int | None = None
    """Per corpus, the first this many valid dialogues (None: all)."""
    tune_fraction: float = 0.15
    """Share of the train dialogues held out to choose C and the speaker settings."""
    max_features: int = 12000
    """n-grams kept, by document frequency over the train turns."""
    min_df: int = 3
    spoken_copies: bool = True
    """Also train on each turn in spoken style (lower case, no punctuation)."""
    c_values: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
    temperatures: tuple[float, ...] = (0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0)
    min_words_values: tuple[int, ...] = (0, 5, 10, 20, 40)
    other_margins: tuple[float | None, ...] = (None, -0.5, -1.0, -1.5, -2.0)
    prefix_turns: tuple[int, ...] = (2, 4, 8, 16)
    """The temperature is fitted on the tuning dialogues and on their first this many turns,
    so that confidences hold for conversations as short as a live session's start."""
    max_iter: int = 2000
    seed: int = 13
    digits: int = 5
    """Significant digits of the exported weights."""


Example = tuple[dict[str, float], int]


def main(argv: Sequence[str] | None = None) -> int:
    config, output = start_recipe(argv, TrainConfig, __doc__)
    root = repo_path(config.data_root)
    # 1. data
    train, valid = _load(root, config)
    rng = random.Random(config.seed)
    shuffled = rng.sample(train, len(train))
    cut = round(len(shuffled) * config.tune_fraction)
    tune, fit = shuffled[:cut], shuffled[cut:]
    logger.info("train dialogues: %d to fit, %d to tune; valid: %d", len(fit), len(tune),
                len(valid))
    # 2.-3. vocabulary and C
    fit_examples = _examples(fit, config.spoken_copies)
    tune_examples = _examples(tune, spoken=True)
    vocabulary = choose_vocabulary(fit_examples, config.max_features, config.min_df)
    chosen_c, c_losses, tuned = _choose_c(config, vocabulary, fit_examples, tune_examples)
    # 4. speaker settings
    settings, settings_log = choose_settings(config, tuned, tune)
    # 5. final model
    all_examples = _examples(train, config.spoken_copies)
    vocabulary = choose_vocabulary(all_examples, config.max_features, config.min_df)
    model = fit_model(vocabulary, all_examples, chosen_c, settings, config)
    model["training"] = {"train_dialogues": len(train), "turns": len(all_examples),
                         "C": chosen_c, "corpora": list(config.corpora)}
    path = output / MODEL_FILE
    path.write_text(json.dumps(model, separators=(",", ":")) + "\n", encoding="utf-8")
    classifier = RoleClassifier.from_file(path)
    logger.info("wrote %s (%d features, %.0f kB)", path, len(vocabulary),
                path.stat().st_size / 1000)
    # 6. report
    results = evaluate(classifier, valid, config)
    report = {"config": asdict(config), "C": chosen_c, "c_log_loss": c_losses,
              "settings": asdict(settings), "settings_search": settings_log,
              "results": results}
    write_reports(output, report)
    return 0


def _load(root: Path, config: TrainConfig) -> tuple[list[Dialogue], list[Dialogue]]:
    train, valid = [], []
    for corpus in config.corpora:
        dialogues = load_dialogues(root, corpus, "train")
        if config.train_dialogues is not None:
            dialogues = random.Random(config.seed).sample(
                dialogues, min(config.train_dialogues, len(dialogues)))
        train.extend(dialogues)
        valid.extend(load_dialogues(root, corpus, "valid")[:config.eval_dialogues])
    return train, valid


def _examples(dialogues: Sequence[Dialogue], spoken: bool) -> list[Example]:
    """(features, role index) of every turn, and of its spoken-style copy when asked."""
    examples = []
    for dialogue in dialogues:
        for turn in dialogue.turns:
            label = ROLES.index(turn.role)
            examples.append((turn_features(turn.text), label))
            if spoken:
                examples.append((turn_features(spoken_style(turn.text)), label))
    return examples


def choose_vocabulary(examples: Sequence[Example], max_features: int, min_df: int
                      ) -> list[str]:
    """Every cue, and the n-grams in at least ``min_df`` turns, most frequent first (at most
    ``max_features``; ties in name order)."""
    frequency: Counter[str] = Counter()
    cues: set[str] = set()
    for features, _ in examples:
        for name in features:
            if name.startswith("cue:"):
                cues.add(name)
            else:
                frequency[name] += 1
    grams = sorted((name for name, count in frequency.items() if count >= min_df),
                   key=lambda name: (-frequency[name], name))[:max_features]
    return sorted(cues) + grams


def _matrix(examples: Sequence[Example], vocabulary: Sequence[str]
            ) -> tuple[csr_matrix, np.ndarray]:
    index = {name: column for column, name in enumerate(vocabulary)}
    rows, columns, values = [], [], []
    for row, (features, _) in enumerate(examples):
        for column, value in known(features, index).items():
            rows.append(row)
            columns.append(column)
            values.append(value)
    matrix = csr_matrix((values, (rows, columns)), shape=(len(examples), len(vocabulary)))
    return matrix, np.array([label for _, label in examples])


def _fit(vocabulary: Sequence[str], examples: Sequence[Example], c: float, max_iter: int
         ) -> LogisticRegression:
    matrix, labels = _matrix(examples, vocabulary)
    model = LogisticRegression(C=c, max_iter=max_iter)
    model.fit(matrix, labels)
    if list(model.classes_) != list(range(len(ROLES))):
        raise SystemExit(f"the training turns lack a role: classes {model.classes_}")
    return model


def fit_model(vocabulary: Sequence[str], examples: Sequence[Example], c: float,
              settings: RoleSettings, config: TrainConfig) -> dict[str, Any]:
    """The JSON form of a model fitted on ``examples`` (what ``ner.roles`` loads)."""
    return _exported(_fit(vocabulary, examples, c, config.max_iter), vocabulary, settings,
                     config.digits)


def _exported(model: LogisticRegression, vocabulary: Sequence[str], settings: RoleSettings,
              digits: int) -> dict[str, Any]:
    weights = [[_round(w, digits) for w in row] for row in model.coef_.T.tolist()]
    return {"format": FORMAT, "features": FEATURES_VERSION, "classes": list(ROLES),
            "temperature": settings.temperature, "min_words": settings.min_words,
            "other_margin": settings.other_margin,
            "bias": [_round(b, digits) for b in model.intercept_.tolist()],
            "vocabulary": list(vocabulary), "weights": weights}


def _choose_c(config: TrainConfig, vocabulary: Sequence[str], fit: Sequence[Example],
              tune: Sequence[Example]) -> tuple[float, dict[str, float], RoleClassifier]:
    """The C of least tuning turn log-loss, the losses, and the model fitted with it."""
    matrix, labels = _matrix(tune, vocabulary)
    losses: dict[str, float] = {}
    best: tuple[float, LogisticRegression] | None = None
    for c in config.c_values:
        model = _fit(vocabulary, fit, c, config.max_iter)
        probs = model.predict_proba(matrix)[np.arange(len(labels)), labels]
        losses[str(c)] = float(-np.mean(np.log(np.clip(probs, 1e-9, 1.0))))
        logger.info("C=%g: tuning turn log-loss %.4f", c, losses[str(c)])
        if best is None or losses[str(c)] < losses[str(best[0])]:
            best = (c, model)
    if best is None:
        raise SystemExit("c_values is empty")
    exported = _exported(best[1], vocabulary, RoleSettings(1.0, 0), config.digits)
    return best[0], losses, RoleClassifier.from_dict(exported, f"tuning model (C={best[0]})")


def choose_settings(config: TrainConfig, classifier: RoleClassifier, tune: Sequence[Dialogue]
                    ) -> tuple[RoleSettings, dict[str, Any]]:
    """On the tuning dialogues as written: the temperature of least main-pair log-loss (over
    the whole dialogues and their prefixes), then the ``other_margin`` and the ``min_words``
    that get the most speakers right (ties: the first listed, then the smallest)."""
    prefixes = [*tune, *(d for n in config.prefix_turns for d in first_turns(tune, n))]
    losses: dict[str, float] = {}
    for temperature in config.temperatures:
        scores = score(classifier.with_settings(RoleSettings(temperature, 0)), prefixes)
        losses[str(temperature)] = scores.pair_log_loss
    temperature = min(config.temperatures, key=lambda t: _finite(losses[str(t)]))
    right: dict[str, float] = {}
    for margin in config.other_margins:
        scores = score(classifier.with_settings(RoleSettings(temperature, 0, margin)), tune)
        right[str(margin)] = scores.speaker_accuracy
    other_margin = max(config.other_margins, key=lambda m: right[str(m)])
    extra: dict[str, int] = {}
    for min_words in config.min_words_values:
        settings = RoleSettings(temperature, min_words, other_margin)
        extra[str(min_words)] = score(classifier.with_settings(settings), tune).extra_correct
    min_words = max(config.min_words_values, key=lambda m: (extra[str(m)], -m))
    logger.info("temperature %g (pair log-loss %s), other_margin %s (speakers right %s), "
                "min_words %d (extra right %s)", temperature, losses, other_margin, right,
                min_words, extra)
    return RoleSettings(temperature, min_words, other_margin), {
        "pair_log_loss": losses, "speaker_accuracy_by_other_margin": right,
        "extra_correct": extra}


def evaluate(classifier: RoleClassifier, valid: Sequence[Dialogue], config: TrainConfig
             ) -> dict[str, dict[str, Any]]:
    """Scores per corpus (ACI-Bench also per subset) and on the OSCE interviews, as written
    and in spoken style, with whole turns and with each sentence a turn; per corpus also on
    the first turns of each dialogue, and with one short turn split off as a speaker of its
    own (:func:`with_fragments`), as written."""
    sets: dict[str, list[Dialogue]] = {}
    for dialogue in valid:
        sets.setdefault(dialogue.corpus, []).append(dialogue)
        if dialogue.subset != dialogue.corpus:
            sets.setdefault(f"{dialogue.corpus}/{dialogue.subset}", []).append(dialogue)
    if config.osce_dir:
        folder = repo_path(config.osce_dir)
        sets["osce"] = [read_osce(path) for path in sorted(folder.glob("*.txt"))]
    results: dict[str, dict[str, Any]] = {}
    for name, dialogues in sets.items():
        sentences = by_sentence(dialogues)
        forms: dict[str, RoleScores] = {
            "written": score(classifier, dialogues),
            "spoken": score(classifier, dialogues, spoken_style),
            "sentences": score(classifier, sentences),
            "sentences, spoken": score(classifier, sentences, spoken_style)}
        results[name] = {form: scores.to_dict() for form, scores in forms.items()}
        if name == "osce":
            results[name]["interviews"] = _interviews(classifier, dialogues)
        if "/" not in name:
            results[name]["first_turns"] = {
                str(n): score(classifier, first_turns(dialogues, n)).to_dict()
                for n in config.prefix_turns}
            results[name]["fragment"] = score(classifier, with_fragments(dialogues)).to_dict()
        logger.info("%s: %s", name, {form: round(s.speaker_accuracy, 4)
                                     for form, s in forms.items()})
    return results


def _interviews(classifier: RoleClassifier, dialogues: Sequence[Dialogue]
                ) -> dict[str, dict[str, Any]]:
    """Each interview's roles (as written and spoken style) and whether all are right."""
    found: dict[str, dict[str, Any]] = {}
    for dialogue in dialogues:
        truth = dialogue.speaker_roles()
        for form, text in (("written", str), ("spoken", spoken_style)):
            guesses = classifier.speakers([(t.speaker, text(t.text)) for t in dialogue.turns])
            found.setdefault(dialogue.id, {})[form] = {
                speaker: {"role": guess.role, "confidence": round(guess.confidence, 4),
                          "right": guess.role == truth[speaker]}
                for speaker, guess in guesses.items()}
    return found


def _round(value: float, digits: int) -> float:
    return float(f"{value:.{digits}g}")


def _finite(value: float) -> float:
    return value if math.isfinite(value) else math.inf


if __name__ == "__main__":
    raise SystemExit(main())
