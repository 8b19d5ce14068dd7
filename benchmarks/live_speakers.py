"""The cost per final of telling live speakers and roles, and how right they are online.

Each reference turn of the timed synthetic dialogues (``speech/synth_dialogue_en``: two
espeak-ng voices, exact turn times) stands for one live final: its audio goes through a
session's :class:`streaming.live.speakers.LiveSpeakers` as the engine's enrichment thread
would send it (speaker embedding and assignment against the session's speakers so far, then
the roles over the conversation so far). Printed per recording and overall: milliseconds per
final for the embedding + assignment and for the roles (mean, p95), the speakers found, the
share of finals whose speaker is the reference one (speakers mapped to the reference by
majority), the share whose role was right when the final was sent and once every update was
applied, and the updates sent. Then the role cost after N finals of one long session (the
roles are decided over the whole session, so it grows with it).

``--data`` takes another folder of the same layout (``audio/``, ``turns/``), e.g. the dialogues
spoken by two voices that differ (``benchmarks/diarization_quality.py --revoiced`` writes them
to ``.cache/synth_dialogue_voices``).

    python benchmarks/live_speakers.py [--json OUT] [--long 200,1000] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from speech.audio import SAMPLE_RATE, load_audio
from streaming.live.speakers import LiveSpeakers, SpeakerAssigner, load_speaker_models

REPO = Path(__file__).resolve().parents[1]
DIALOGUES = REPO.parent / "shared" / "data" / "speech" / "synth_dialogue_en"
ROLES = {"doctor": "clinician", "patient": "patient"}


class Timed:
    """An assigner that records how long each call took."""

    def __init__(self, inner: SpeakerAssigner) -> None:
        self.inner = inner
        self.seconds: list[float] = []

    def assign(self, audio: np.ndarray) -> tuple[str, float]:
        began = time.perf_counter()
        try:
            return self.inner.assign(audio)
        finally:
            self.seconds.append(time.perf_counter() - began)


def run(name: str, models: Any, folder: Path = DIALOGUES) -> dict[str, Any]:
    """One recording, turn by turn, as one live session."""
    audio = load_audio(folder / "audio" / f"{name}.wav")
    turns = [json.loads(line) for line in
             (folder / "turns" / f"{name}.jsonl").read_text().splitlines()]
    assigner = Timed(models.session(None))
    speakers = LiveSpeakers(assigner, models.roles)
    total: list[float] = []
    embedding: list[float] = []
    sent_roles, updates = [], 0
    for index, turn in enumerate(turns):
        piece = audio[round(turn["start"] * SAMPLE_RATE):round(turn["end"] * SAMPLE_RATE)]
        timed = len(assigner.seconds)
        began = time.perf_counter()
        attribution, changed = speakers.add(index, turn["text"], "en", piece)
        total.append(time.perf_counter() - began)
        embedding.append(sum(assigner.seconds[timed:]))  # 0 for a short final: not embedded
        sent_roles.append(attribution.role)
        updates += len(changed)
    said = [speakers.told(i) for i in range(len(turns))]
    truth = [turn["role"] for turn in turns]
    mapping = {s: Counter(t for a, t in zip(said, truth, strict=True) if a.speaker == s
                          ).most_common(1)[0][0] for s in {a.speaker for a in said}}
    embed = np.array(embedding) * 1000
    roles = np.array(total) * 1000 - embed
    return {
        "recording": name, "finals": len(turns),
        "speakers": len({a.speaker for a in said if a.speaker is not None}),
        "speaker_accuracy": _share([mapping[a.speaker] == t for a, t in zip(said, truth,
                                                                          strict=True)]),
        "role_accuracy_when_sent": _share([r == ROLES[t] for r, t in zip(sent_roles, truth,
                                                                         strict=True)]),
        "role_accuracy_final": _share([a.role == ROLES[t] for a, t in zip(said, truth,
                                                                         strict=True)]),
        "updates": updates,
        "embed_ms": embed.tolist(), "roles_ms": roles.tolist()}


def long_session(models: Any, finals: int) -> float:
    """Milliseconds the roles take for the last final of a session of ``finals`` finals
    (texts of the dialogues, two speakers taking turns)."""
    texts = [json.loads(line)["text"] for path in sorted((DIALOGUES / "turns").glob("*.jsonl"))
             for line in path.read_text().splitlines()]
    turns = [(f"S{1 + i % 2}", texts[i % len(texts)]) for i in range(finals)]
    began = time.perf_counter()
    for _ in range(5):
        models.roles.speakers(turns)
    return (time.perf_counter() - began) / 5 * 1000


def _share(flags: list[bool]) -> float:
    return round(sum(flags) / len(flags), 4) if flags else 0.0


def _stats(values: list[float]) -> str:
    return f"mean {np.mean(values):6.1f}  p95 {np.percentile(values, 95):6.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="Write the results here.")
    parser.add_argument("--long", default="200,1000",
                        help="Session lengths (finals) to time the roles at.")
    parser.add_argument("--data", type=Path, default=DIALOGUES,
                        help="Folder of dialogues (audio/*.wav, turns/*.jsonl).")
    args = parser.parse_args()
    models = load_speaker_models()
    import torch

    torch.set_num_threads(1)  # as on the engine's enrichment thread (engine._one_core)
    print(f"models: {models.identifier}")
    names = sorted(p.stem for p in (args.data / "audio").glob("*.wav"))
    models.session(None).assign(load_audio(args.data / "audio" / f"{names[0]}.wav")[:32000])
    results = [run(name, models, args.data) for name in names]
    for r in results:
        print(f"{r['recording']:14} finals {r['finals']:3}  speakers {r['speakers']}  "
              f"speaker acc {r['speaker_accuracy']:.2f}  role acc sent "
              f"{r['role_accuracy_when_sent']:.2f} / settled {r['role_accuracy_final']:.2f}  "
              f"updates {r['updates']:3}  embed ms {_stats(r['embed_ms'])}  roles ms "
              f"{_stats(r['roles_ms'])}")
    embed = [x for r in results for x in r["embed_ms"]]
    roles = [x for r in results for x in r["roles_ms"]]
    print(f"all {len(embed)} finals: embedding + assignment ms {_stats(embed)}; "
          f"roles ms {_stats(roles)}")
    lengths = [int(x) for x in args.long.split(",") if x.strip()]
    long = {n: round(long_session(models, n), 2) for n in lengths}
    for n, ms in long.items():
        print(f"roles of a session of {n} finals: {ms:.1f} ms per final")
    if args.json is not None:
        args.json.write_text(json.dumps({"results": results, "long_session_roles_ms": long},
                                        indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
