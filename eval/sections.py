"""Build one report section per stage from data and system output: asr, mt, ner, terms, latency.

Each builder takes what the readers return plus the system's output, runs the metrics that
apply, and records what could not run (and why) instead of leaving a silent gap.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from eval.asr_entities import BagOfEntitiesF1, ProjectedEntityF1, TaggedText
from eval.comet import Comet
from eval.entities import MATCH_MODES, EntityF1
from eval.latency import LAAL, FinalLag, FirstPartialLatency, UtteranceTimeline
from eval.metric import MetricUnavailableError
from eval.normalize import CHARACTER_LANGUAGES
from eval.readers import ParallelSegment, TermSegment
from eval.report import Section
from eval.terms import TermRecall, TermSuccess, dictionary
from eval.translation import TRANSLATION_METRICS, TranslationMetric, compare_systems
from eval.wer import ErrorRate, Unit
from ner.conll import TaggedSentence
from ner.iob import Span


def asr_section(ids: Sequence[str], languages: Sequence[str], references: Sequence[str],
                hypotheses: Sequence[str],
                terms: Mapping[str, Sequence[str]] | None = None,
                corpora: Sequence[str] | None = None) -> Section:
    """WER (CER for unspaced scripts) and MER per language, with medical-term recall.

    ``terms`` maps a language to the glossary terms whose recall is measured. With
    ``corpora`` (the corpus of each utterance), a language spread over several corpora also
    gets one WER/CER row per corpus (subset ``language · corpus``).
    """
    section = Section("asr", "Speech recognition")
    by_language: dict[str, list[int]] = defaultdict(list)
    for index, language in enumerate(languages):
        by_language[language].append(index)
    for language, indices in sorted(by_language.items()):
        refs = [references[i] for i in indices]
        hyps = [hypotheses[i] for i in indices]
        units: tuple[Unit, ...] = (("cer",) if language in CHARACTER_LANGUAGES
                                   else ("wer", "mer"))
        for unit in units:
            try:
                section.add(language, ErrorRate(language, unit).corpus_score(hyps, refs))
            except ValueError as error:
                section.skipped[f"{unit.upper()} [{language}]"] = str(error)
        by_corpus: dict[str, list[int]] = defaultdict(list)
        for i in indices:
            by_corpus[corpora[i] if corpora else ""].append(i)
        if len(by_corpus) > 1:
            for corpus, members in sorted(by_corpus.items()):
                section.add(f"{language} · {corpus}", ErrorRate(language, units[0]).corpus_score(
                    [hypotheses[i] for i in members], [references[i] for i in members]))
        glossary = (terms or {}).get(language)
        if glossary:
            try:
                section.add(language, TermRecall(glossary, language).corpus_score(hyps, refs))
            except ValueError as error:
                section.skipped[f"term-recall [{language}]"] = str(error)
        metric = ErrorRate(language)
        for i, rate in zip(indices, metric.sentence_scores(hyps, refs), strict=True):
            section.items.append({"id": ids[i], "lang": language,
                                  "corpus": corpora[i] if corpora else None, "unit": metric.name,
                                  "error_rate": rate, "reference": references[i],
                                  "hypothesis": hypotheses[i]})
    if len(by_language) > 1:
        section.notes.append("Scores are per language: WER and CER are not pooled across "
                             "languages, since their normalisers and units differ.")
    return section


def mt_section(segments: Sequence[ParallelSegment], hypotheses: Sequence[str],
               baseline: Sequence[str] | None = None, comet_model: str | None = None,
               n_bootstrap: int = 1000) -> Section:
    """BLEU, chrF, chrF++, TER with bootstrap intervals, COMET if available, paired test."""
    if len(segments) != len(hypotheses):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(segments)} segments")
    directions = sorted({(s.src_lang, s.tgt_lang) for s in segments})
    if len(directions) != 1:
        raise ValueError(f"one translation direction per report, not {directions}")
    source, target = directions[0]
    section = Section("mt", f"Translation {source}→{target}")
    references = [s.ref for s in segments]
    for name in TRANSLATION_METRICS:
        metric = TranslationMetric(name, target, n_bootstrap)
        section.add("system", metric.corpus_score(hypotheses, references))
        if baseline is not None:
            section.add("baseline", metric.corpus_score(baseline, references))
    try:
        comet = Comet(comet_model) if comet_model else Comet()
        section.add("system", comet.corpus_score(hypotheses, [(s.src, s.ref) for s in segments]))
    except MetricUnavailableError as error:
        section.skipped["COMET"] = str(error)
    if baseline is not None:
        for comparison in compare_systems(baseline, hypotheses, references, target):
            verdict = "significant" if comparison.significant else "not significant"
            section.notes.append(
                f"{comparison.metric}: system {comparison.system:.2f} vs baseline "
                f"{comparison.baseline:.2f}, paired bootstrap p = {comparison.p_value:.4f} "
                f"({verdict} at 0.05)")
    chrf = TranslationMetric("chrf", target, 1).sentence_scores(hypotheses, references)
    section.items = [{"id": s.id, "chrF": score, "source": s.src, "reference": s.ref,
                      "hypothesis": h} for s, h, score in zip(segments, hypotheses, chrf,
                                                              strict=True)]
    return section


def conll_spans(name: str, gold: Sequence[TaggedSentence], predicted: Sequence[TaggedSentence]
                ) -> tuple[list[Sequence[Span]], list[Sequence[Span]]]:
    """The (gold, predicted) spans of corpus ``name`` read from two CoNLL files, after checking
    that they hold the same sentences with the same tokens (``ValueError`` names the first
    that differs)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{name}: {len(gold)} gold sentences but {len(predicted)} predicted")
    for number, (g, p) in enumerate(zip(gold, predicted, strict=True), 1):
        if g.tokens != p.tokens:
            raise ValueError(f"{name}: sentence {number} has different tokens in the gold "
                             "and predicted files")
    return [g.spans for g in gold], [p.spans for p in predicted]


def ner_span_section(corpora: Mapping[str, tuple[Sequence[Sequence[Span]],
                                                 Sequence[Sequence[Span]]]]) -> Section:
    """Entity F1 in the four matching modes, per corpus, from (gold, predicted) span lists of
    each text: character spans of raw text, as ``medstream eval ner`` scores it."""
    section = Section("ner", "Entity recognition")
    for name, (gold, predicted) in corpora.items():
        if len(gold) != len(predicted):
            raise ValueError(f"{name}: {len(gold)} gold texts but {len(predicted)} predicted")
        add_entity_scores(section, name, gold, predicted)
    return section


def add_entity_scores(section: Section, name: str, gold: Sequence[Sequence[Span]],
                      predicted: Sequence[Sequence[Span]]) -> None:
    """One row per matching mode for corpus ``name``."""
    for mode in MATCH_MODES:
        section.add(name, EntityF1(mode).corpus_score(predicted, gold))


def terms_section(segments: Sequence[TermSegment], hypotheses: Sequence[str], mode: str,
                  source_check: bool = False) -> Section:
    """WMT23 term success of ``hypotheses`` in ``mode`` (none, proper, random)."""
    if len(segments) != len(hypotheses):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(segments)} segments")
    targets = sorted({s.tgt_lang for s in segments})
    if len(targets) != 1:
        raise ValueError(f"one target language per report, not {targets}")
    section = Section("terms", f"Terminology ({mode} mode)")
    dictionaries = [dictionary(s, mode) for s in segments]
    clean = [i for i, s in enumerate(segments) if not s.digits_mismatch]
    for lenient in (False, True):
        metric = TermSuccess(mode, targets[0], lenient=lenient,
                             source_language=segments[0].src_lang if source_check else None)
        suffix = " (lenient)" if lenient else ""
        sources = [s.src for s in segments] if source_check else None
        section.add("all" + suffix, metric.corpus_score(hypotheses, dictionaries,
                                                        sources=sources))
        if 0 < len(clean) < len(segments):
            subset_sources = [segments[i].src for i in clean] if source_check else None
            section.add("digits-consistent" + suffix, metric.corpus_score(
                [hypotheses[i] for i in clean], [dictionaries[i] for i in clean],
                sources=subset_sources))
    if 0 < len(clean) < len(segments):
        section.notes.append("`digits-consistent` leaves out segments flagged "
                             "`digits_mismatch` (likely misaligned).")
    section.notes.append("`lenient` rows also count a term found inflected or with other "
                         "accents (case- and lemma-insensitive success).")
    return section


def asr_entity_section(ids: Sequence[str], references: Sequence[TaggedText],
                       hypotheses: Sequence[TaggedText], silver: bool, language: str = "en",
                       tagger: str = "") -> Section:
    """Entity F1 on ASR output: SLUE bag of entities (with phrases, and types only) and strict
    F1 after projection through the alignment. ``silver``: the reference entities are the
    tagger's own on the reference text, so the figures measure what ASR errors cost the tagger,
    not the tagger's accuracy."""
    section = Section("asr-entities", "Entities on ASR output")
    for metric in (BagOfEntitiesF1(language), BagOfEntitiesF1(language, label_only=True),
                   ProjectedEntityF1()):
        section.add(language, metric.corpus_score(hypotheses, references))
    if silver:
        section.notes.append(f"Silver reference: the entities {tagger} finds in the reference "
                             "transcript (the manifests carry no gold entities). The scores "
                             "say how much of what the tagger finds on correct text survives "
                             "recognition errors.")
    for identifier, reference, hypothesis in zip(ids, references, hypotheses, strict=True):
        section.items.append({
            "id": identifier,
            "reference_entities": [[s.type, reference.phrase(s)] for s in reference.spans],
            "hypothesis_entities": [[s.type, hypothesis.phrase(s)] for s in hypothesis.spans]})
    return section


def latency_section(ids: Sequence[str], timelines: Sequence[UtteranceTimeline],
                    language: str = "en") -> Section:
    """First-partial latency, final lag and LAAL on the audio clock."""
    section = Section("latency", "Streaming latency")
    metrics = (FirstPartialLatency(language), FinalLag(), LAAL(language))
    per_item: list[list[float | None]] = []
    for metric in metrics:
        section.add("all", metric.corpus_score(timelines, ()))
        per_item.append(metric.sentence_scores(timelines, ()))
    for index, identifier in enumerate(ids):
        section.items.append({"id": identifier, **{
            f"latency:{metric.name}": values[index]
            for metric, values in zip(metrics, per_item, strict=True)
            if values[index] is not None}})
    return section
