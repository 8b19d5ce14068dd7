"""TBX (TermBase eXchange, ISO 30042) glossaries: read both dialects, write TBX 2019.

**Reading.** :func:`read_tbx` accepts

* TBX 2019 (ISO 30042:2019): root ``<tbx type="TBX-Core|TBX-Basic|…" style="dca|dct">`` in
  the namespace ``urn:iso:std:iso:30042:ed-2``, ``<conceptEntry id>`` ⊃ ``<langSec xml:lang>``
  ⊃ ``<termSec>`` ⊃ ``<term>``. Data categories in either style: DCA
  (``<termNote type="partOfSpeech">``, ``<descrip type="definition">``, ``<admin
  type="source">``) or DCT (the module's element, e.g. ``<min:partOfSpeech>``,
  ``<basic:definition>``);
* TBX v2 / TBX-Basic 2008 (ISO 30042:2008): root ``<martif type="TBX">``, ``<termEntry id>`` ⊃
  ``<langSet xml:lang>`` ⊃ ``<tig>`` (or ``<ntig><termGrp>``) ⊃ ``<term>``, DCA only.

Of a ``descripGrp`` (``termNoteGrp``, ``adminGrp``) the grouped data category is read, not
the notes on it; other data categories are ignored. What a concept entry gives:

* one :class:`~translate.glossary.GlossaryEntry` per (source term, target term) of each ordered
  pair of its languages, or of the one direction asked for (``es`` matches ``es-419``,
  case-insensitively). The terms of a language are taken preferred first
  (``administrativeStatus``/``normativeAuthorization`` ``preferredTerm-admn-sts`` or
  ``standardizedTerm``), then unmarked/admitted ones, in file order. A deprecated term
  (``deprecatedTerm``/``supersededTerm``, ``-admn-sts`` or not; Weblate's ``forbidden`` and
  ``obsolete``) is never a target, but stays a source: a patient or doctor may say it;
* ``code``: the concept entry's ``id``; ``pos``: the source term's ``partOfSpeech`` (else the
  target's); ``description``: the ``definition`` of the source ``langSec``, else of the
  concept, else of the target ``langSec``; ``provider``: ``<admin type="source">`` of the
  target term, else of the source term, the target ``langSec`` or the concept.

**Do not translate.** TBX has no data category for it. The convention here is the
``transferComment`` data category, a term-level note "providing information on the degree of
equivalence, directionality or other special features affecting equivalence between a term in
one language and another term in a second language" (TBX-Default data categories of ISO
30042:2008, ``<termNote type="transferComment">``; in ISO 30042:2019 it belongs to the
TBX-Linguist module: ``<ling:transferComment>`` in DCT style). A term whose transferComment
says ``do not translate`` (also ``do-not-translate``, ``DNT``, ``untranslatable``) is kept
as it is, so a do-not-translate concept holds the same term in every language, each so
marked. Weblate's ``<termNote type="translationNote">no</termNote>`` (its untranslatable
glossary terms) is read as the same thing. The mark may also sit on a ``langSec`` or the
concept. A (source, target) pair of equal terms of which either is marked gives a
do-not-translate entry; so does a marked term of a concept of one language, for whatever
target language is asked for (a list of brand names need not repeat them per language).

**Writing.** :func:`write_tbx` writes TBX 2019 DCA, UTF-8 with an XML declaration: type
``TBX-Basic``, or ``TBX-Linguist`` (Basic plus the Linguist module) when a do-not-translate
term needs ``transferComment``. Entries sharing a ``code`` are one concept entry with that
``id``; an entry without a code gets its own, ``id`` ``c1``, ``c2``… (read back as its code).
Each term is written once per language with the entry's ``pos`` (``partOfSpeech``); the
``description`` is the ``definition`` of the source ``langSec``; the ``provider`` is an
``<admin type="source">`` of the target term. So :func:`read_tbx` of a written file gives the
entries back for each direction written, with one proviso that is the meaning of a concept in
TBX: all terms of a concept are synonyms, so entries sharing a code read back as every source
term paired with every target term of their languages (exact when a code has one term per
language), and also relate their target languages to one another (``en`` → ``de`` and ``en``
→ ``fr`` entries of one code give ``de`` → ``fr`` pairs too). A code is written as the ``id``
unchanged; the schemas want an XML name there (``xsd:ID``), so a purely numeric code (SNOMED
CT, RxNorm) makes a file that strict validators reject, as many tools' exports are.

**Safety.** Glossaries come from outside: the XML is parsed with expat, entity declarations
(the billion-laughs and external-entity attacks) are refused, and no DTD is ever loaded (a
plain ``<!DOCTYPE martif SYSTEM "TBXcoreStructV02.dtd">``, common in TBX v2 files, is fine).
Errors are :class:`~speech.errors.DataFileError` naming the file and, where one applies, the
line.
"""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.parsers import expat

from speech.errors import DataFileError
from translate.types import GlossaryEntry

TBX_NAMESPACE = "urn:iso:std:iso:30042:ed-2"
"""The namespace of TBX 2019 (ISO 30042:2019) core elements."""
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_CONCEPTS = frozenset({"conceptEntry", "termEntry"})
_LANGUAGES = frozenset({"langSec", "langSet"})
_TERMS = frozenset({"termSec", "tig", "ntig"})
_GROUPS = frozenset({"descripGrp", "adminGrp", "termNoteGrp"})
"""Groups of one data category with notes about it (its source, a date …)."""
_CARRIERS = frozenset({"termNote", "descrip", "admin", "note"})
_STATUSES = ("administrativestatus", "normativeauthorization")
_PREFERRED = frozenset({"preferredterm", "standardizedterm", "preferred"})
_DEPRECATED = frozenset({"deprecatedterm", "supersededterm", "deprecated", "superseded",
                         "forbidden", "obsolete"})
_DNT_COMMENTS = frozenset({"do not translate", "dnt", "untranslatable", "not translatable",
                           "not to be translated"})
_DNT_COMMENT = "do not translate"
"""What :func:`write_tbx` puts in a do-not-translate term's ``transferComment``."""

_Fields = list[tuple[str, str]]
"""The data categories of an element: (category name, casefolded; text), in file order."""


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Term:
    text: str
    rank: int
    """0 preferred, 1 admitted or unmarked, 2 deprecated (never a target)."""
    pos: str | None
    provider: str | None
    dnt: bool


@dataclass
class _LangSection:
    lang: str
    definition: str | None
    provider: str | None
    dnt: bool
    terms: list[_Term] = field(default_factory=list)


@dataclass(frozen=True)
class _Concept:
    id: str | None
    definition: str | None
    provider: str | None
    dnt: bool
    languages: tuple[_LangSection, ...]


@dataclass(frozen=True)
class _Document:
    """A parsed file: its root, the line each element starts on, the core namespace."""

    file: Path
    root: ET.Element
    lines: dict[ET.Element, int]
    namespace: str

    def error(self, element: ET.Element | None, reason: str) -> DataFileError:
        line = self.lines.get(element) if element is not None else None
        return DataFileError(self.file, line, reason)


def read_tbx(path: str | Path, src_lang: str | None = None,
             tgt_lang: str | None = None) -> list[GlossaryEntry]:
    """The term pairs of a TBX 2019 or TBX v2 file (see the module docstring), of every
    ordered language pair or only ``src_lang`` → ``tgt_lang``.

    Raises :class:`~speech.errors.DataFileError` naming the file (and line) when it cannot be
    read, is not well-formed XML, declares entities, is not TBX, or has a term or language
    missing.
    """
    document = _parse(Path(path))
    return [entry for concept in _concepts(document)
            for entry in _concept_entries(concept, src_lang, tgt_lang)]


def _parse(file: Path) -> _Document:
    """Parse with expat into an ElementTree, refusing entity declarations."""
    try:
        data = file.read_bytes()
    except OSError as error:
        raise DataFileError(file, None, f"cannot read the glossary ({error.strerror})") from error
    builder = ET.TreeBuilder()
    lines: dict[ET.Element, int] = {}
    parser = expat.ParserCreate(namespace_separator="}")

    def start(name: str, attributes: dict[str, str]) -> None:
        element = builder.start(_clark(name), {_clark(k): v for k, v in attributes.items()})
        lines[element] = parser.CurrentLineNumber

    def refuse_entity(name: str, *_: object) -> None:
        raise DataFileError(file, parser.CurrentLineNumber,
                            f"declares the entity {name!r}; entity declarations are refused "
                            "(they can expand without bound or read other files)")

    parser.buffer_text = True
    parser.StartElementHandler = start
    parser.EndElementHandler = lambda name: builder.end(_clark(name))
    parser.CharacterDataHandler = builder.data
    parser.EntityDeclHandler = refuse_entity
    try:
        parser.Parse(data, True)
    except expat.ExpatError as error:
        raise DataFileError(file, error.lineno, f"not well-formed XML ("
                                                f"{expat.ErrorString(error.code)}, column "
                                                f"{error.offset + 1})") from error
    root = builder.close()
    namespace, name = _split(root.tag)
    if name not in ("tbx", "martif"):
        where = f" in the namespace {namespace!r}" if namespace else ""
        raise DataFileError(file, lines.get(root), f"not a TBX file: the root element is "
                                                   f"<{name}>{where}, expected <tbx> (TBX "
                                                   "2019) or <martif> (TBX v2)")
    return _Document(file, root, lines, namespace)


def _clark(name: str) -> str:
    """expat's ``uri}local`` as ElementTree's ``{uri}local``."""
    return "{" + name if "}" in name else name


def _split(tag: str) -> tuple[str, str]:
    """(namespace, local name) of an ElementTree tag."""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def _children(element: ET.Element, document: _Document, names: frozenset[str]) -> \
        Iterator[ET.Element]:
    """The core-namespace children of ``element`` with one of these local names."""
    for child in element:
        namespace, local = _split(child.tag)
        if namespace == document.namespace and local in names:
            yield child


def _text(element: ET.Element) -> str:
    """The element's text, inline markup included, whitespace collapsed."""
    return " ".join("".join(element.itertext()).split())


def _fields(element: ET.Element, document: _Document) -> _Fields:
    """The data categories directly on ``element``: DCA carriers by their ``type`` (``<note>``
    as ``note``), DCT module elements by name. Of a ``descripGrp`` (``termNoteGrp``,
    ``adminGrp``) only its first, the one the others are about; a TBX v2 ``termGrp`` is part of
    its ``ntig``."""
    found: _Fields = []
    for child in element:
        namespace, local = _split(child.tag)
        if namespace == document.namespace:
            if local in _GROUPS:
                found += _fields(child, document)[:1]
            elif local == "termGrp":
                found += _fields(child, document)
            elif local in _CARRIERS:
                found.append(((child.get("type") or local).casefold(), _text(child)))
        elif namespace:
            found.append((local.casefold(), _text(child)))
    return found


def _first(fields: _Fields, name: str) -> str | None:
    return next((value for key, value in fields if key == name and value), None)


def _is_dnt(fields: _Fields) -> bool:
    """A ``transferComment`` saying not to translate, or Weblate's ``translationNote`` no."""
    for name, value in fields:
        words = " ".join(value.casefold().replace("-", " ").replace("_", " ").split())
        if name == "transfercomment" and words.rstrip(".!") in _DNT_COMMENTS:
            return True
        if name == "translationnote" and words == "no":
            return True
    return False


def _rank(fields: _Fields) -> int:
    statuses = {value.casefold().removesuffix("-admn-sts") for name, value in fields
                if name in _STATUSES}
    if statuses & _DEPRECATED:
        return 2
    return 0 if statuses & _PREFERRED else 1


def _concepts(document: _Document) -> Iterator[_Concept]:
    root_lang = document.root.get(_XML_LANG)
    for element in document.root.iter():
        namespace, local = _split(element.tag)
        if namespace == document.namespace and local in _CONCEPTS:
            yield _read_concept(element, document, element.get(_XML_LANG) or root_lang)


def _read_concept(element: ET.Element, document: _Document,
                  default_lang: str | None) -> _Concept:
    fields = _fields(element, document)
    sections: dict[str, _LangSection] = {}
    for child in _children(element, document, _LANGUAGES):
        section = _read_language(child, document, default_lang)
        known = sections.setdefault(section.lang.casefold(), section)
        if known is not section:
            known.terms += [t for t in section.terms if t.text not in _texts(known)]
    return _Concept(element.get("id") or None, _first(fields, "definition"),
                    _first(fields, "source"), _is_dnt(fields), tuple(sections.values()))


def _texts(section: _LangSection) -> set[str]:
    return {term.text for term in section.terms}


def _read_language(element: ET.Element, document: _Document,
                   default_lang: str | None) -> _LangSection:
    lang = element.get(_XML_LANG) or element.get("lang") or default_lang
    if not lang:
        raise document.error(element, f"<{_split(element.tag)[1]}> without xml:lang")
    fields = _fields(element, document)
    section = _LangSection(lang, _first(fields, "definition"), _first(fields, "source"),
                           _is_dnt(fields))
    for child in _children(element, document, _TERMS):
        term = _read_term(child, document)
        if term.text not in _texts(section):
            section.terms.append(term)
    return section


def _read_term(element: ET.Element, document: _Document) -> _Term:
    term = next((e for e in element.iter() if e is not element
                 and _split(e.tag) == (document.namespace, "term")), None)
    text = _text(term) if term is not None else ""
    if not text:
        raise document.error(term if term is not None else element,
                             f"<{_split(element.tag)[1]}> without a term")
    fields = _fields(element, document)
    return _Term(text, _rank(fields), _first(fields, "partofspeech"), _first(fields, "source"),
                 _is_dnt(fields))


def _matches(lang: str, wanted: str | None) -> bool:
    """``wanted`` is None, ``lang`` or its primary subtag (``es`` for ``es-419``)."""
    if wanted is None:
        return True
    lang, wanted = lang.casefold(), wanted.casefold()
    return lang == wanted or lang.startswith(wanted + "-")


def _by_rank(terms: Iterable[_Term]) -> list[_Term]:
    return sorted(terms, key=lambda term: term.rank)


def _concept_entries(concept: _Concept, src_lang: str | None,
                     tgt_lang: str | None) -> Iterator[GlossaryEntry]:
    """The concept's (source, target) term pairs for the languages asked for."""
    for source in concept.languages:
        if not _matches(source.lang, src_lang):
            continue
        targets = [t for t in concept.languages if t is not source and _matches(t.lang, tgt_lang)]
        for term in _by_rank(source.terms):
            for target in targets:
                for equivalent in _by_rank(t for t in target.terms if t.rank < 2):
                    yield _entry(concept, source, term, target, equivalent)
            dnt = term.dnt or source.dnt or concept.dnt
            if dnt and len(concept.languages) == 1 and tgt_lang and \
                    not _matches(source.lang, tgt_lang):
                missing = _LangSection(tgt_lang, None, None, True)
                yield _entry(concept, source, term, missing, term)


def _entry(concept: _Concept, source: _LangSection, term: _Term, target: _LangSection,
           equivalent: _Term) -> GlossaryEntry:
    marked = term.dnt or equivalent.dnt or source.dnt or target.dnt or concept.dnt
    return GlossaryEntry(
        source=term.text, target=equivalent.text, src_lang=source.lang, tgt_lang=target.lang,
        provider=(equivalent.provider or term.provider or target.provider
                  or concept.provider),
        pos=term.pos or equivalent.pos,
        description=source.definition or concept.definition or target.definition,
        code=concept.id, do_not_translate=marked and term.text == equivalent.text)


# --------------------------------------------------------------------------- writing


@dataclass
class _TermOut:
    pos: str | None = None
    dnt: bool = False
    provider: str | None = None


@dataclass
class _LangOut:
    definition: str | None = None
    terms: dict[str, _TermOut] = field(default_factory=dict)

    def add(self, text: str, pos: str | None, dnt: bool, provider: str | None) -> None:
        term = self.terms.setdefault(text, _TermOut())
        term.pos = term.pos or pos
        term.dnt = term.dnt or dnt
        term.provider = term.provider or provider


def write_tbx(entries: Iterable[GlossaryEntry], path: str | Path,
              source_language: str | None = None) -> None:
    """Write the entries as a TBX 2019 DCA file (see the module docstring).

    ``source_language`` stands in for entries without a ``src_lang`` and is the document's
    ``xml:lang``. Raises :class:`ValueError` for an entry without a target language, or
    without a source language when ``source_language`` is not given.
    """
    concepts = _group(entries, source_language)
    dnt = any(t.dnt for langs in concepts.values() for s in langs.values()
              for t in s.terms.values())
    first_lang = next((lang for langs in concepts.values() for lang in langs), None)
    root = ET.Element("tbx", {"xmlns": TBX_NAMESPACE,
                              "type": "TBX-Linguist" if dnt else "TBX-Basic", "style": "dca",
                              _XML_LANG: source_language or first_lang or "und"})
    header = ET.SubElement(ET.SubElement(root, "tbxHeader"), "fileDesc")
    ET.SubElement(ET.SubElement(header, "sourceDesc"), "p").text = "medstream glossary"
    body = ET.SubElement(ET.SubElement(root, "text"), "body")
    for concept_id, langs in concepts.items():
        body.append(_concept_element(concept_id, langs))
    ET.indent(root)
    text = ET.tostring(root, encoding="unicode")
    Path(path).write_bytes(b'<?xml version="1.0" encoding="UTF-8"?>\n'
                           + text.encode("utf-8") + b"\n")


def _group(entries: Iterable[GlossaryEntry],
           source_language: str | None) -> dict[str, dict[str, _LangOut]]:
    """Concept id → language → its definition and terms, in the entries' order."""
    entries = list(entries)
    codes = {entry.code for entry in entries if entry.code}
    fresh = (f"c{n}" for n in itertools.count(1) if f"c{n}" not in codes)
    concepts: dict[str, dict[str, _LangOut]] = {}
    for entry in entries:
        src_lang = entry.src_lang or source_language
        if not src_lang or not entry.tgt_lang:
            side = "target" if src_lang else "source"
            raise ValueError(f"glossary entry {entry.source!r} → {entry.target!r} has no "
                             f"{side} language" + ("" if src_lang else
                                                   " (and no source_language was given)"))
        langs = concepts.setdefault(entry.code or next(fresh), {})
        source = langs.setdefault(src_lang, _LangOut())
        source.definition = source.definition or entry.description
        source.add(entry.source, entry.pos, entry.do_not_translate, None)
        langs.setdefault(entry.tgt_lang, _LangOut()).add(
            entry.target, entry.pos, entry.do_not_translate, entry.provider)
    return concepts


def _concept_element(concept_id: str, langs: dict[str, _LangOut]) -> ET.Element:
    concept = ET.Element("conceptEntry", {"id": concept_id})
    for lang, section in langs.items():
        lang_sec = ET.SubElement(concept, "langSec", {_XML_LANG: lang})
        if section.definition:
            _sub(lang_sec, "descrip", "definition", section.definition)
        for text, term in section.terms.items():
            term_sec = ET.SubElement(lang_sec, "termSec")
            ET.SubElement(term_sec, "term").text = text
            if term.pos:
                _sub(term_sec, "termNote", "partOfSpeech", term.pos)
            if term.dnt:
                _sub(term_sec, "termNote", "transferComment", _DNT_COMMENT)
            if term.provider:
                _sub(term_sec, "admin", "source", term.provider)
    return concept


def _sub(parent: ET.Element, tag: str, category: str, text: str) -> None:
    ET.SubElement(parent, tag, {"type": category}).text = text
