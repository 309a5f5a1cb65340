"""Speaker diarization: who spoke when, and which words each speaker said.

* :mod:`.base`: the contract (``DiarizeOptions``, ``Diarization``, ``load_diarizer``);
* :mod:`.local`: the offline backend, built from :mod:`.segmentation`,
  :mod:`.embedding`, :mod:`.clustering` and :mod:`.reconstruct`, with the weights
  found by :mod:`.weights`;
* :mod:`.pyannote`: pyannote.audio's pipeline, for users with a Hugging Face token;
* :mod:`.assign`: speakers onto a transcript's words and segments.

Only the contract is imported here; torch loads when a backend does.
"""

from reelscribe.speakers.assign import assign_speakers
from reelscribe.speakers.base import (
    Diarization,
    DiarizeOptions,
    Diarizer,
    SpeakerTurn,
    load_diarizer,
)

__all__ = [
    "Diarization",
    "DiarizeOptions",
    "Diarizer",
    "SpeakerTurn",
    "assign_speakers",
    "load_diarizer",
]
