"""TBX (ISO 30042) glossaries: both dialects read, TBX 2019 written, round trips, bad files."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from speech.errors import DataFileError
from tests.conftest import TICO_TERMS
from tests.datafile_errors import assert_refused
from translate.glossary import read_glossary
from translate.tbx import read_tbx, write_tbx
from translate.types import GlossaryEntry

# A TBX-Basic 2019 file in DCA style, after the examples of ISO 30042:2019 / tbxinfo.net.
TBX_2019_DCA = """\
<?xml version="1.0" encoding="UTF-8"?>
<tbx type="TBX-Basic" style="dca" xml:lang="en" xmlns="urn:iso:std:iso:30042:ed-2">
  <tbxHeader>
    <fileDesc>
      <titleStmt><title>Clinic termbase</title></titleStmt>
      <sourceDesc><p>Hand-written sample</p></sourceDesc>
    </fileDesc>
  </tbxHeader>
  <text>
    <body>
      <conceptEntry id="R50.9">
        <descrip type="subjectField">medicine</descrip>
        <descrip type="definition">Body temperature above the normal range.</descrip>
        <langSec xml:lang="en">
          <termSec>
            <term>fever</term>
            <termNote type="partOfSpeech">noun</termNote>
            <termNote type="administrativeStatus">preferredTerm-admn-sts</termNote>
          </termSec>
          <termSec>
            <term>pyrexia</term>
            <termNote type="partOfSpeech">noun</termNote>
            <termNote type="administrativeStatus">admittedTerm-admn-sts</termNote>
          </termSec>
        </langSec>
        <langSec xml:lang="de">
          <termSec>
            <term>Febris</term>
            <termNote type="administrativeStatus">deprecatedTerm-admn-sts</termNote>
          </termSec>
          <termSec>
            <term>Fieber</term>
            <termNote type="partOfSpeech">noun</termNote>
            <termNote type="administrativeStatus">preferredTerm-admn-sts</termNote>
            <admin type="source">Duden Medizin</admin>
          </termSec>
        </langSec>
        <langSec xml:lang="es-419">
          <descripGrp>
            <descrip type="definition">Temperatura corporal por encima de lo normal.</descrip>
            <admin type="source">OPS</admin>
          </descripGrp>
          <termSec>
            <term>fiebre</term>
          </termSec>
        </langSec>
      </conceptEntry>
      <conceptEntry id="augmentin">
        <langSec xml:lang="en">
          <termSec>
            <term>Augmentin</term>
            <termNote type="partOfSpeech">properNoun</termNote>
            <termNote type="transferComment">do not translate</termNote>
          </termSec>
        </langSec>
        <langSec xml:lang="de">
          <termSec>
            <term>Augmentin</term>
            <termNote type="transferComment">Do-Not-Translate</termNote>
          </termSec>
        </langSec>
      </conceptEntry>
    </body>
  </text>
</tbx>
"""

# The same kind of content in TBX-Basic 2019 DCT style (data categories as module elements).
TBX_2019_DCT = """\
<?xml version="1.0" encoding="UTF-8"?>
<tbx type="TBX-Basic" style="dct" xml:lang="en" xmlns="urn:iso:std:iso:30042:ed-2"
     xmlns:min="http://www.tbxinfo.net/ns/min" xmlns:basic="http://www.tbxinfo.net/ns/basic"
     xmlns:ling="http://www.tbxinfo.net/ns/linguist">
  <tbxHeader><fileDesc><sourceDesc><p>DCT sample</p></sourceDesc></fileDesc></tbxHeader>
  <text>
    <body>
      <conceptEntry id="J18.9">
        <basic:definition>Infection of the lung tissue.</basic:definition>
        <langSec xml:lang="en">
          <termSec>
            <term>pneumonia</term>
            <min:partOfSpeech>noun</min:partOfSpeech>
          </termSec>
        </langSec>
        <langSec xml:lang="fr">
          <termSec>
            <term>fluxion de poitrine</term>
            <min:administrativeStatus>supersededTerm-admn-sts</min:administrativeStatus>
          </termSec>
          <termSec>
            <term>pneumonie</term>
            <min:administrativeStatus>preferredTerm-admn-sts</min:administrativeStatus>
          </termSec>
        </langSec>
      </conceptEntry>
      <conceptEntry id="paxlovid">
        <langSec xml:lang="en">
          <termSec>
            <term>Paxlovid</term>
            <ling:transferComment>DNT</ling:transferComment>
          </termSec>
        </langSec>
      </conceptEntry>
    </body>
  </text>
</tbx>
"""

# A TBX-Basic 2008 (TBX v2) file, after the TBX-Basic specification's sample: tig and ntig,
# normativeAuthorization, a definition in a descripGrp, Weblate's untranslatable mark.
TBX_V2 = """\
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE martif SYSTEM "TBXBasiccoreStructV02.dtd">
<martif type="TBX-Basic" xml:lang="en-US">
  <martifHeader>
    <fileDesc><sourceDesc><p>Exported from a termbase</p></sourceDesc></fileDesc>
    <encodingDesc><p type="XCSURI">TBXBasicXCSV02.xcs</p></encodingDesc>
  </martifHeader>
  <text>
    <body>
      <termEntry id="eid-chills">
        <langSet xml:lang="en-US">
          <descripGrp>
            <descrip type="definition">A feeling of cold with shivering.</descrip>
          </descripGrp>
          <tig>
            <term>chills</term>
            <termNote type="partOfSpeech">noun</termNote>
          </tig>
        </langSet>
        <langSet xml:lang="de-DE">
          <ntig>
            <termGrp>
              <term>Frösteln</term>
              <termNote type="normativeAuthorization">deprecatedTerm</termNote>
            </termGrp>
          </ntig>
          <ntig>
            <termGrp>
              <term>Schüttelfrost</term>
              <termNote type="partOfSpeech">noun</termNote>
            </termGrp>
            <admin type="source">TICO-19</admin>
          </ntig>
        </langSet>
        <langSet xml:lang="fr-FR">
          <tig><term>frissons</term></tig>
        </langSet>
      </termEntry>
      <termEntry id="eid-covax">
        <langSet xml:lang="en-US">
          <tig>
            <term>COVAX</term>
            <termNote type="translationNote">no</termNote>
          </tig>
        </langSet>
        <langSet xml:lang="de-DE">
          <tig><term>COVAX</term></tig>
        </langSet>
      </termEntry>
    </body>
  </text>
</martif>
"""


def _write(tmp_path: Path, text: str, name: str = "terms.tbx") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _pairs(entries: list[GlossaryEntry]) -> list[tuple[str, str]]:
    return [(e.source, e.target) for e in entries]


ROUND_TRIP = [
    GlossaryEntry("fever", "Fieber", "en", "de", pos="noun", code="R50.9",
                  description="Body temperature above the normal range."),
    GlossaryEntry("fever", "fièvre", "en", "fr", pos="noun", code="R50.9",
                  description="Body temperature above the normal range."),
    GlossaryEntry("pneumonia", "Lungenentzündung", "en", "de", provider="facebook"),
    GlossaryEntry("œdème pulmonaire", "Lungenödem", "fr", "de", pos="noun"),
    GlossaryEntry("chills", "frissons", "en", "fr", provider="google", pos="noun",
                  description="Shivering & feeling cold <with> \"fever\"."),
    GlossaryEntry("Augmentin", "Augmentin", "en", "de", pos="properNoun", do_not_translate=True),
    GlossaryEntry("Augmentin", "Augmentin", "en", "fr", do_not_translate=True),
    GlossaryEntry("AIDS", "AIDS", "en", "de"),
]


def test_round_trip_keeps_every_field_per_direction(tmp_path: Path) -> None:
    path = tmp_path / "out.tbx"
    write_tbx(ROUND_TRIP, path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<tbx ')
    assert 'xmlns="urn:iso:std:iso:30042:ed-2"' in text and 'style="dca"' in text
    assert 'type="TBX-Linguist"' in text  # transferComment is a Linguist data category
    assert text.count('<conceptEntry id="R50.9">') == 1  # a shared code is one concept
    assert "Lungenentzündung" in text  # UTF-8, not character references
    for src, tgt in (("en", "de"), ("en", "fr"), ("fr", "de")):
        expected = [e for e in ROUND_TRIP if (e.src_lang, e.tgt_lang) == (src, tgt)]
        # R50.9 has a French and a German term: a concept also relates its target languages
        got = [e for e in read_tbx(path, src, tgt) if (src, e.code) != ("fr", "R50.9")]
        # an entry without a code reads back with its concept entry's generated id as code
        assert len(got) == len(expected) and all(g.code for g in got)
        assert [e if e.code else replace(g, code=None)
                for e, g in zip(expected, got, strict=True)] == expected
    # "AIDS" → "AIDS" was not marked do-not-translate and stays unmarked
    assert not next(e for e in read_tbx(path, "en", "de") if e.source == "AIDS").do_not_translate


def test_round_trip_other_directions_and_codes(tmp_path: Path) -> None:
    path = tmp_path / "out.tbx"
    write_tbx(ROUND_TRIP, path)
    # the concept gives every ordered pair of its languages
    # (the definition was the English section's: neither language here has one)
    assert GlossaryEntry("Fieber", "fièvre", "de", "fr", pos="noun", code="R50.9") in read_tbx(
        path, "de", "fr")
    assert read_tbx(path, "de", "en")[0].description == "Body temperature above the normal range."
    augmentin = [e for e in read_tbx(path, "de", "en") if e.source == "Augmentin"]
    assert augmentin == [GlossaryEntry("Augmentin", "Augmentin", "de", "en", pos="properNoun",
                                       code=augmentin[0].code, do_not_translate=True)]
    everything = read_tbx(path)
    assert {(e.src_lang, e.tgt_lang) for e in everything} >= {("en", "de"), ("de", "en"),
                                                              ("fr", "de"), ("de", "fr")}
    codes = [e.code for e in everything]
    assert None not in codes and len(set(codes) - {"R50.9"}) == len(ROUND_TRIP) - 2


def test_entries_sharing_a_code_are_synonyms(tmp_path: Path) -> None:
    path = tmp_path / "out.tbx"
    write_tbx([GlossaryEntry("fever", "Fieber", "en", "de", code="C0015967"),
               GlossaryEntry("pyrexia", "Pyrexie", "en", "de", code="C0015967")], path)
    assert _pairs(read_tbx(path, "en", "de")) == [
        ("fever", "Fieber"), ("fever", "Pyrexie"), ("pyrexia", "Fieber"), ("pyrexia", "Pyrexie")]


def test_write_needs_languages(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no target language"):
        write_tbx([GlossaryEntry("fever", "Fieber", "en")], tmp_path / "a.tbx")
    with pytest.raises(ValueError, match="no source language"):
        write_tbx([GlossaryEntry("fever", "Fieber", tgt_lang="de")], tmp_path / "a.tbx")
    write_tbx([GlossaryEntry("fever", "Fieber", tgt_lang="de")], tmp_path / "a.tbx",
              source_language="en")
    assert read_tbx(tmp_path / "a.tbx", "en", "de")[0].src_lang == "en"
    assert 'type="TBX-Basic"' in (tmp_path / "a.tbx").read_text(encoding="utf-8")


def test_tbx_2019_dca_statuses_and_do_not_translate(tmp_path: Path) -> None:
    path = _write(tmp_path, TBX_2019_DCA)
    definition = "Body temperature above the normal range."
    assert read_tbx(path, "en", "de") == [
        GlossaryEntry("fever", "Fieber", "en", "de", "Duden Medizin", "noun", definition,
                      "R50.9"),
        GlossaryEntry("pyrexia", "Fieber", "en", "de", "Duden Medizin", "noun", definition,
                      "R50.9"),
        GlossaryEntry("Augmentin", "Augmentin", "en", "de", pos="properNoun", code="augmentin",
                      do_not_translate=True)]
    # the deprecated "Febris" is never a target, but is still recognised as a source
    assert "Febris" not in [e.target for e in read_tbx(path)]
    assert _pairs(read_tbx(path, "de", "en")) == [
        ("Fieber", "fever"), ("Fieber", "pyrexia"), ("Febris", "fever"), ("Febris", "pyrexia"),
        ("Augmentin", "Augmentin")]
    # "es" matches "es-419"; the language section's definition wins over the concept's
    spanish = read_tbx(path, "en", "es")
    assert _pairs(spanish) == [("fever", "fiebre"), ("pyrexia", "fiebre")]
    assert spanish[0].tgt_lang == "es-419" and spanish[0].provider is None
    assert read_tbx(path, "ES", "en")[0].description.startswith("Temperatura")  # type: ignore[union-attr]


def test_tbx_2019_dct(tmp_path: Path) -> None:
    path = _write(tmp_path, TBX_2019_DCT)
    assert read_tbx(path, "en", "fr") == [
        GlossaryEntry("pneumonia", "pneumonie", "en", "fr", pos="noun", code="J18.9",
                      description="Infection of the lung tissue."),
        GlossaryEntry("Paxlovid", "Paxlovid", "en", "fr", code="paxlovid", do_not_translate=True)]
    assert _pairs(read_tbx(path, "fr", "en")) == [("pneumonie", "pneumonia"),
                                                  ("fluxion de poitrine", "pneumonia")]
    # a do-not-translate concept of one language applies to any target language asked for
    assert read_tbx(path, "en", "de") == [GlossaryEntry("Paxlovid", "Paxlovid", "en", "de",
                                                        code="paxlovid", do_not_translate=True)]
    assert _pairs(read_tbx(path)) == [("pneumonia", "pneumonie"), ("pneumonie", "pneumonia"),
                                      ("fluxion de poitrine", "pneumonia")]


def test_tbx_v2_martif(tmp_path: Path) -> None:
    path = _write(tmp_path, TBX_V2)
    assert read_tbx(path, "en", "de") == [
        GlossaryEntry("chills", "Schüttelfrost", "en-US", "de-DE", "TICO-19", "noun",
                      "A feeling of cold with shivering.", "eid-chills"),
        GlossaryEntry("COVAX", "COVAX", "en-US", "de-DE", code="eid-covax",
                      do_not_translate=True)]
    assert "Frösteln" not in [e.target for e in read_tbx(path)]
    assert ("Frösteln", "chills") in _pairs(read_tbx(path, "de", "en"))
    assert _pairs(read_tbx(path, "de", "fr")) == [("Schüttelfrost", "frissons"),
                                                  ("Frösteln", "frissons")]


def test_read_glossary_dispatches_tbx(tmp_path: Path) -> None:
    path = _write(tmp_path, TBX_2019_DCA, "clinic.TBX")
    assert _pairs(read_glossary(path, "en", "de")) == [
        ("fever", "Fieber"), ("pyrexia", "Fieber"), ("Augmentin", "Augmentin")]
    assert _pairs(read_glossary(path, "en", "fr")) == []


def test_tico_terms_round_trip(tmp_path: Path) -> None:
    if not TICO_TERMS.is_file():
        pytest.skip(f"{TICO_TERMS} is absent: the shared term data is not on this machine")
    entries = read_glossary(TICO_TERMS, "en", "de")
    path = tmp_path / "tico.tbx"
    write_tbx(entries, path)
    back = read_tbx(path, "en", "de")
    assert len(entries) > 100
    assert _pairs(back) == _pairs(entries)
    assert [(e.provider, e.pos, e.description) for e in back] == [
        (e.provider, e.pos, e.description) for e in entries]


@pytest.mark.parametrize(("text", "line", "message"), [
    ('<?xml version="1.0"?>\n<tbx xmlns="urn:iso:std:iso:30042:ed-2">\n<text>\n</tbx>\n', 4,
     "not well-formed XML (mismatched tag"),
    ("", 1, "not well-formed XML (no element found"),
    ('<?xml version="1.0"?>\n<html><body/></html>\n', 2,
     "not a TBX file: the root element is <html>"),
    ('<?xml version="1.0"?>\n<!DOCTYPE tbx [\n  <!ENTITY lol "lol">\n'
     '  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n]>\n'
     '<tbx xmlns="urn:iso:std:iso:30042:ed-2"><text><body/></text></tbx>\n', 3,
     "declares the entity 'lol'"),
    ('<?xml version="1.0"?>\n<!DOCTYPE martif [\n  <!ENTITY ext SYSTEM "file:///etc/passwd">\n'
     ']>\n<martif><text><body><termEntry><langSet xml:lang="en"><tig><term>&ext;</term></tig>'
     '</langSet></termEntry></body></text></martif>\n', 3, "entity declarations are refused"),
    ('<tbx xmlns="urn:iso:std:iso:30042:ed-2"><text><body>\n<conceptEntry id="a">\n'
     '<langSec><termSec><term>x</term></termSec></langSec>\n</conceptEntry></body></text></tbx>',
     3, "<langSec> without xml:lang"),
    ('<martif xml:lang="en"><text><body><termEntry>\n<langSet>\n<tig>\n<term> </term>\n'
     '</tig></langSet></termEntry></body></text></martif>', 4, "<tig> without a term"),
])
def test_bad_files_name_file_and_line(tmp_path: Path, text: str, line: int,
                                      message: str) -> None:
    path = tmp_path / "bad.tbx"
    error = assert_refused(read_tbx, path, text, line, re.escape(message))
    assert error.path == str(path)
    assert error.line == line
    assert message in error.reason


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="cannot read the glossary") as caught:
        read_tbx(tmp_path / "absent.tbx")
    assert caught.value.line is None
