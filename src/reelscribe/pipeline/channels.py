"""Per-channel transcription: each audio channel transcribed on its own, as one speaker.

Phone calls, two-microphone interviews and many podcasts put each speaker on a channel
of their own. Mixing them to mono loses whoever is quieter when both talk at once;
transcribing every channel separately and merging by time keeps both, and the speaker
of every word is known without diarization.

There is no ``auto`` mode: telling a one-speaker-per-channel recording from an ordinary
stereo one (music, room microphones with bleed, panned voices) would need a guess that
fails silently in both directions, and a wrong guess duplicates or drops speech.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from reelscribe.asr.routing import Engines
from reelscribe.models import Segment, SpeakerTurn, Transcript
from reelscribe.pipeline.transcribe import TranscribeOptions, transcribe
from reelscribe.progress import Progress, ProgressCallback

#: Channels transcribed at most (a 5.1 film has its dialogue on the centre channel;
#: splitting it makes six transcripts of mostly silence).
MAX_CHANNELS = 8


def channel_speaker(index: int) -> str:
    return f"SPEAKER_{index:02d}"


def channel_names(count: int) -> dict[str, str]:
    return {channel_speaker(i): f"Channel {i + 1}" for i in range(count)}


def transcribe_channels(
    channels: Sequence[npt.NDArray[np.float32]],
    options: TranscribeOptions,
    progress: ProgressCallback | None = None,
    *,
    source_offset: float = 0.0,
    engines: Engines | None = None,
) -> Transcript:
    """One transcript with every channel's segments, in time order; each channel is one
    speaker (``SPEAKER_00`` for the first), named "Channel N" until renamed."""
    parts = []
    for index, samples in enumerate(channels):
        parts.append(
            transcribe(
                samples,
                options,
                _scaled(progress, index, len(channels)),
                source_offset=source_offset,
                engines=engines,
            )
        )
    return merge_channels(parts)


def merge_channels(parts: Sequence[Transcript]) -> Transcript:
    labelled: list[Segment] = []
    turns: list[SpeakerTurn] = []
    spoken: Counter[str] = Counter()
    for index, part in enumerate(parts):
        speaker = channel_speaker(index)
        for seg in part.segments:
            words = tuple(replace(w, speaker=speaker) for w in seg.words)
            labelled.append(replace(seg, speaker=speaker, words=words))
            turns.append(SpeakerTurn(seg.start, seg.end, speaker))
            spoken[part.language] += round((seg.end - seg.start) * 1000)
    labelled.sort(key=lambda s: (s.start, s.end, s.speaker or ""))
    first = parts[0]
    # The language most of the speech is in (a channel that is silent detects nothing).
    language = spoken.most_common(1)[0][0] if spoken else first.language
    return replace(
        first,
        segments=tuple(replace(s, id=i) for i, s in enumerate(labelled)),
        language=language,
        language_probability=max(
            (p.language_probability for p in parts if p.language == language), default=0.0
        ),
        duration=max(p.duration for p in parts),
        dropped_segments=sum(p.dropped_segments for p in parts),
        warnings=tuple(sorted((w for p in parts for w in p.warnings), key=lambda w: w.start)),
        turns=tuple(sorted(turns, key=lambda t: (t.start, t.speaker))),
        speaker_names=channel_names(len(parts)),
        extra=first.extra | {"channels": str(len(parts))},
    )


def _scaled(progress: ProgressCallback | None, index: int, count: int) -> ProgressCallback | None:
    """Reports channel ``index``'s progress as its share of the whole stage."""
    if progress is None:
        return None

    def report(event: Progress) -> None:
        fraction = None if event.fraction is None else (index + event.fraction) / count
        message = f"channel {index + 1}/{count}: {event.message}".rstrip(": ")
        eta = None if event.eta is None else event.eta * (count - index)
        progress(replace(event, fraction=fraction, message=message, eta=eta))

    return report
