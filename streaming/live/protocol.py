"""The live websocket protocol, version 2: every message as a pydantic model.

The models are the single source of the protocol: the server validates client messages with
them, builds its events with them, and ``docs/protocol.md`` embeds their JSON schemas
(``python -m streaming.live.protocol`` prints them; a test keeps the document in step).

Client → server: one ``start`` (text), then binary audio frames, then ``stop`` (text).
Server → client: ``ready``, then ``partial`` / ``final`` / ``update`` / ``status`` / ``error``
events in audio order, then ``end`` before the server closes the socket.

Version 2 added who spoke: ``start.speakers``, ``ready.speakers``, ``final.speaker`` and
``final.role``, and the ``update`` event. A client that says ``version: 1`` gets version 1's
messages (:func:`encode` leaves the newer fields out, and its sessions have no speakers).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    TypeAdapter,
    field_validator,
    model_validator,
)

from ner.roles import Role

PROTOCOL_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)
"""Versions a client may ask for in ``start``; the server answers in the one asked for."""

ADDED_IN: dict[int, dict[str, frozenset[str]]] = {
    2: {"ready": frozenset({"speakers"}), "final": frozenset({"speaker", "role"})}}
"""Fields of server events that a version introduced, by event type: a client of an older
version never receives them."""

CLOSE_UNAUTHORIZED = 4401
"""No valid ``Authorization: Bearer`` header or ticket (or the token in the URL)."""
CLOSE_FORBIDDEN = 4403
"""The ``Origin`` or the ``Host`` is not allowed."""
CLOSE_START_TIMEOUT = 4408
"""No valid ``start`` within the server's start timeout."""
CLOSE_BUSY = 4429
"""No session slot: the server, or the client's address, has as many as allowed."""
REFUSAL_CODES = frozenset({CLOSE_UNAUTHORIZED, CLOSE_FORBIDDEN, CLOSE_BUSY})
"""Close codes of connections refused before any message."""

Encoding = Literal["pcm_s16le", "f32le"]
LanguageCode = Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$",
                                    examples=["en", "es", "de"])]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StreamSettings(Message):
    """Recognition settings a client may tune (all optional)."""

    beam_size: int = Field(5, ge=1, le=10, description=(
        "Beam width of final decodes (1: greedy, with Whisper's temperature fallback)."))
    partial_interval: float = Field(
        0.5, ge=0.2, le=5.0, description="Seconds of new audio between partial hypotheses.")
    min_silence_ms: int = Field(500, ge=200, le=3000,
                                description="Silence (ms) that ends an utterance.")
    vocabulary: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=200,
        description="Medical terms to bias recognition towards.")
    partials: bool = Field(True, description="Send partial hypotheses.")
    trailing_hold: float = Field(0.0, ge=0.0, le=3.0, description=(
        "Seconds of silence an utterance whose text so far trails off (no sentence "
        "punctuation at its end) waits for the speaker to go on before it is final: a "
        "hesitation then splits fewer sentences, and a sentence that does end there is final "
        "that much later. 0: off."))
    sentence_wait: float = Field(0.0, ge=0.0, le=1.0, description=(
        "Seconds of audio after a sentence's cut inside a turn that its final waits for, so "
        "that its decode hears how the speaker went on: more accurate finals on speech with "
        "clean sentence pauses, each up to that much later. 0: off."))


class Start(Message):
    """Opens a session. Audio frames may follow once ``ready`` has been received."""

    type: Literal["start"]
    version: int = Field(PROTOCOL_VERSION, description="Protocol version the client speaks "
                                                       f"(one of {list(SUPPORTED_VERSIONS)}).")
    sample_rate: int = Field(16000, ge=8000, le=48000)
    encoding: Encoding = "pcm_s16le"
    channels: Literal[1] = 1
    language: LanguageCode | None = Field(
        None, description="Language spoken; null identifies it for every utterance.")
    languages: list[LanguageCode] = Field(
        default_factory=list, max_length=2,
        description="Interpreter mode: the two parties' languages. Each final is identified "
                    "as one of them and translated into the other.")
    translate_to: LanguageCode | None = Field(
        None, description="Outside interpreter mode: translate every final into this language.")
    entities: bool = Field(True, description="Mark medical entities on finals.")
    glossary: str | None = Field(None, description="Id of a glossary the server was started "
                                                   "with; its terms are honoured in translations.")
    terms: Literal["hard", "soft", "none"] = "hard"
    settings: StreamSettings = Field(default_factory=lambda: StreamSettings())
    speakers: StrictBool | Annotated[StrictInt, Field(ge=1, le=10)] | None = Field(
        None, description="Who spoke each final (version 2): true tells speakers apart by "
                          "voice, N as well with at most N speakers, false not at all; null "
                          "(the default) is on when the server has a speaker model. In "
                          "interpreter mode the languages say who spoke (true or false only).")

    @field_validator("version")
    @classmethod
    def _version(cls, value: int) -> int:
        if value not in SUPPORTED_VERSIONS:
            raise ValueError(f"this server speaks protocol versions "
                             f"{', '.join(map(str, SUPPORTED_VERSIONS))}, not {value}")
        return value

    @model_validator(mode="after")
    def _modes(self) -> Start:
        if self.languages:
            if len(self.languages) != 2 or self.languages[0] == self.languages[1]:
                raise ValueError("interpreter mode needs two different languages")
            if self.language is not None or self.translate_to is not None:
                raise ValueError("give either languages (interpreter mode) or language/"
                                 "translate_to, not both")
            if not isinstance(self.speakers, bool | None):
                raise ValueError("in interpreter mode the languages tell the two parties "
                                 "apart: speakers is true or false, not a count")
        if self.version < 2 and self.speakers is not None:
            raise ValueError("speakers needs protocol version 2")
        return self


class Stop(Message):
    """No more audio: the server finalises what it heard, sends ``end`` and closes."""

    type: Literal["stop"]


ClientMessage = Annotated[Start | Stop, Field(discriminator="type")]
CLIENT_MESSAGE: TypeAdapter[Start | Stop] = TypeAdapter(ClientMessage)


class WordOut(Message):
    start: float
    end: float
    text: str
    probability: float


class Ready(Message):
    type: Literal["ready"] = "ready"
    protocol: int = PROTOCOL_VERSION
    session: str
    sample_rate: int = Field(description="The sample rate the server expects (the start's).")
    asr: str = Field(description="The recogniser serving the session.")
    ner: str | None = Field(description="The entity recogniser, or null when disabled.")
    mt: str | None = Field(description="The translation model, or null when disabled.")
    languages: list[str]
    speakers: str | None = Field(
        None, description="How finals get their speaker and role: the speaker and role "
                          "models, `languages` in interpreter mode, or null when finals carry "
                          "none (version 2).")
    notes: list[str] = Field(default_factory=list,
                             description="What the session cannot do and why.")
    limits: dict[str, float]


class Partial(Message):
    """The current hypothesis of an open utterance; later partials and the final replace it."""

    type: Literal["partial"] = "partial"
    utterance: int
    start: float = Field(description="Seconds on the session's audio clock.")
    end: float
    text: str
    stable: str = Field(description="Prefix of text that later partials keep "
                                    "(LocalAgreement-2).")
    language: str
    audio_time: float = Field(description="Seconds of audio the server had received when it "
                                          "emitted this event.")


class Final(Message):
    """The settled text of an utterance, with its entities and translation."""

    type: Literal["final"] = "final"
    utterance: int
    segment: int = Field(description="Number of the final in the session (0, 1, …).")
    start: float
    end: float
    text: str
    language: str
    words: list[WordOut]
    entities: list[dict[str, Any]] | None = Field(
        description="As `medstream ner` writes them (character offsets into text); null "
                    "when entity recognition is off.")
    translation: dict[str, Any] | None = Field(
        description="Target language, text and the per-term report, as `medstream translate` "
                    "writes it; null when not translated. When the translation failed, `text` "
                    "is empty and `error` says why (the session goes on).")
    speaker: str | None = Field(
        None, description="Who said it: S1, S2, … in order of first appearance; null when "
                          "the session has no speakers or the final's audio is too short to "
                          "tell (version 2).")
    role: Role | None = Field(
        None, description="The speaker's role as the session so far suggests; null with no "
                          "speaker (version 2). A later `update` may correct it.")
    audio_time: float


class Update(Message):
    """A later decision about an earlier final (version 2): its speaker or role changed (a
    role is decided over everything its speaker has said so far), or its entities were marked
    by the dialogue (asked about by the clinician; negated by the patient's answer). The
    final's text, words, translation and entity offsets never change."""

    type: Literal["update"] = "update"
    segment: int = Field(description="The final's `segment`.")
    speaker: str | None
    role: Role | None
    entities: list[dict[str, Any]] | None = Field(
        None, description="The final's entities anew (same spans; `asked`, `negated` and "
                          "`negated_by` may differ), or null when they did not change.")
    audio_time: float


class Status(Message):
    """How far behind the server is; sent when the state changes, and every few seconds
    while lagging."""

    type: Literal["status"] = "status"
    state: Literal["ok", "lagging"]
    backlog: float = Field(description="Seconds of received audio not yet recognised.")
    audio_time: float


class Error(Message):
    type: Literal["error"] = "error"
    code: str = Field(description="Stable machine-readable code, e.g. bad_json, no_session.")
    message: str
    fatal: bool = Field(default=False,
                        description="True when the server closes the session after it.")


class End(Message):
    type: Literal["end"] = "end"
    reason: Literal["stop", "session_limit", "error", "shutdown"]
    audio_seconds: float = Field(description="Audio received, all of it recognised.")
    finals: int


ServerEvent = Ready | Partial | Final | Update | Status | Error | End

ERROR_CODES = {
    "bad_json": "a text frame is not JSON, nests deeper than JSON parsing allows, or holds "
                "a number of more than 4,300 digits",
    "bad_message": "a JSON message is not a valid protocol message",
    "unknown_type": "a message type the protocol does not have",
    "no_session": "audio or stop before start",
    "already_started": "a second start in one session",
    "bad_audio": "a frame whose byte count is not a whole number of samples",
    "frame_too_large": "a binary frame over the size limit",
    "rate_limited": "more messages per second than allowed",
    "session_too_long": "the session reached its audio length limit",
    "backlog_full": "audio arrives faster than the server recognises it: the session's "
                    "waiting audio reached `limits.max_backlog_seconds`; the frame is dropped",
    "idle_timeout": "a started session sent no audio for `limits.idle_seconds`; it is "
                    "finalised and ended (fatal)",
    "unsupported": "a setting this server cannot honour (unknown glossary, language, model)",
    "internal": "the server failed; the session is closed",
}


def encode(message: Message, version: int = PROTOCOL_VERSION) -> str:
    """``message`` as JSON for a client of protocol ``version``: without the fields a later
    version added."""
    kind = getattr(message, "type", "")
    newer = set().union(*(fields.get(kind, frozenset()) for added, fields in ADDED_IN.items()
                          if added > version))
    return message.model_dump_json(exclude=newer or None)


def schemas() -> dict[str, Any]:
    """JSON schema of every message, by type."""
    models: list[type[Message]] = [Start, Stop, Ready, Partial, Final, Update, Status, Error,
                                   End]
    return {m.__name__.lower(): m.model_json_schema() for m in models}


PROSE = """# The live protocol (version {version})

`medstream serve` speaks this protocol on the websocket `/v1/stream`. This file is generated
from `streaming/live/protocol.py`
(`python -m streaming.live.protocol --markdown > docs/protocol.md`); a test fails when the two
disagree.

## Session

1. The client connects. When the server has a token (`--token` or `$MEDSTREAM_TOKEN`), the
   client authenticates in one of two ways, and never with the token in the URL (URLs end up
   in logs; `?token=` is refused):
   * a program sends the header `Authorization: Bearer TOKEN` with the websocket handshake;
   * a browser, which cannot set headers on a websocket, first calls `POST /v1/ticket` with
     that header and gets `{{"ticket": "…", "expires_in": 30}}`, then connects to
     `/v1/stream?ticket=TICKET`. A ticket opens one websocket, within `expires_in` seconds
     (`--ticket-seconds`); it is spent on first use, even by a refused connection.

   The server checks, in this order, and refuses a connection by accepting it and closing it
   at once with a close code: **4403** the `Host` header is not one of the server's names (an
   IP address, `localhost`, or `--allow-host`: a page on a name re-pointed at the server, DNS
   rebinding, is refused with or without a token) or the `Origin` is not allowed (it must
   equal, in scheme, host and port, the server's own origin or one given with
   `--allow-origin`; clients that send no `Origin` are not browsers and pass), **4401**
   missing or wrong token or ticket, **4429** no session slot: the server holds
   `--max-sessions` connections, or the client's address `--max-connections-per-client`
   (try another replica, or later). A slot is taken when the connection is accepted, not at
   `start`, and given back when it closes, whatever the reason.
2. The client sends one `start` text message. The server answers `ready` (or an `error`, after
   which the client may send a corrected `start`). A connection without a valid `start`
   within `--start-timeout` seconds (default 10) is closed with code **4408**.
3. The client sends audio as binary frames: raw `pcm_s16le` or `f32le`, mono, at the
   `sample_rate` it declared (the server resamples to 16 kHz). Any frame size up to
   `limits.max_frame_bytes` works; 100 ms frames give the lowest latency.
4. The server sends `partial` events while an utterance is spoken (the whole current
   hypothesis; `stable` is the prefix it will keep), a `final` (with words, entities and
   translation) for each utterance when the speaker stops, and within a long turn for each
   sentence at the pause after it, and `status` when it falls behind (`lagging`,
   with the backlog in seconds) or catches up (`ok`). Audio is never dropped: a lagging session
   catches up, and every second it sent ends up in a final.
5. The client sends `stop`. The server finalises the last utterance, sends `end` with the
   seconds of audio it received, and closes the socket with code 1000.

Every event carries `audio_time`, the seconds of audio the server had received when it emitted
the event: a client that streams in real time measures latency on the audio clock with it.

In interpreter mode (`languages: [a, b]`), each turn's language is identified as `a` or `b`
(once, on its first 3 s; a shorter turn by each of its finals) and each final's translation
targets the other one. The server translates English <-> Portuguese with its packaged model
unless `--mt-model` names another; a server without an MT model (the packaged one not
installed) says so in `ready.notes`, and its finals carry `translation: null`.

## Speakers and roles (version 2)

Each final carries `speaker` (`S1`, `S2`, … in order of first appearance) and `role`
(`clinician`, `patient` or `other`), decided as the session goes:

* In a single-language session, the server embeds each final's audio with its speaker model
  and compares it with the session's speakers so far (their running mean embeddings): the
  closest one says it, unless none is close enough, and then a new speaker appears
  (`start.speakers: N` allows at most N). The speaker of a final is never changed afterwards.
  Each speaker's role is decided over everything said in the session so far (with two main
  speakers, one clinician and one patient), so it can change as the conversation goes on.
* In interpreter mode the languages say who spoke: `languages[0]` is the clinician's,
  `languages[1]` the patient's, and each final's speaker is the party whose language it is in.
  No speaker model is needed and roles never change.

`start.speakers` turns this on (`true`, or a number of speakers) or off (`false`); by default
it is on whenever the server has a speaker model (`medstream serve --speakers`, off unless
given: the embedding costs about 0.2-0.3 s of one core per final) or the session is in
interpreter mode. `ready.speakers` names what decides it (null: off); asked for
on a server without a speaker model, `ready.notes` says so and finals carry `speaker: null`.
A final under a second ("No.", "Okay.") is too short to recognise a voice in: it goes to the
other party of the last exchange (the speaker before the previous final's).

When a later final changes what the client was told about an earlier one, the server sends an
`update` for the earlier final, after the final that caused it: a new `role` (every final of
that speaker gets one), or new `entities` marks from the dialogue (an entity the clinician
asked about is `asked: true`; the patient's "No" right after negates it, with
`negated_by` the answer's `segment`). An update never changes text the client already has:
the text, words, translation and entity spans of a final are final. A client applies an
update by replacing the final's speaker, role and (when not null) entities.

## Versions

The client says in `start.version` which version it speaks (default: the newest); the server
answers in that version, and `ready.protocol` confirms it. Version 1 clients get no `speaker`,
`role` or `ready.speakers` fields and no `update` events.

## Errors

An `error` event never carries a stack trace. Bad input never closes the connection unless
the event says `fatal: true`:

{errors}

## Limits

`ready.limits` gives this server's frame size limit, message rate (text and binary frames per
second, bursts of two seconds allowed), longest session (seconds of audio) and idle time
(`idle_seconds`). Over the rate, messages are refused with `rate_limited`; past the session
length, the session is finalised (`session_too_long`, fatal) and ends with `end`. A started
session that sends no audio frame for `idle_seconds` (`--idle-timeout`, default 30) is
finalised the same way (`idle_timeout`, fatal, then `end`).

A frame over `max_frame_bytes` gets `frame_too_large` and the session goes on, up to twice
that size: a message over twice `max_frame_bytes` (text or binary) is refused by the
websocket layer while it is read, and the connection closes with code 1009. Values of the
client's that an error message quotes are cut to a few dozen characters.

### Audio faster than real time

A session's audio waits for the shared recogniser; what waits is its backlog (`status`
events report it). A client may send faster than real time (a recording, a reconnecting
client catching up), but the backlog is capped: a frame that would take it over
`limits.max_backlog_seconds` (`--max-session-backlog`, default 60 s) is dropped, and the
client gets a `backlog_full` error (not fatal) and a `status` with the backlog. The session
goes on: frames are taken again as soon as recognition catches up, and dropped audio is
not counted in the session's clock (later times shift by it). So a server never holds more
than `--max-sessions` times the cap of received audio (64 kB per session-second), and a
session's memory is returned to the operating system when it ends.

## Message schemas (JSON Schema)

{schemas}
"""


def markdown() -> str:
    errors = "\n".join(f"| `{code}` | {meaning} |" for code, meaning in ERROR_CODES.items())
    blocks = "\n\n".join(
        f"### `{name}`\n\n```json\n{json.dumps(schema, indent=2, sort_keys=True)}\n```"
        for name, schema in schemas().items())
    return PROSE.format(version=PROTOCOL_VERSION, schemas=blocks,
                        errors="| code | when |\n|---|---|\n" + errors)


def main() -> None:
    import sys

    if "--markdown" in sys.argv[1:]:
        print(markdown(), end="")
    else:
        print(json.dumps(schemas(), indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
