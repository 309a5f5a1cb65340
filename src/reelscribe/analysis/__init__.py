"""What a recording is about and whether it is safe to publish.

Light on purpose: only the result types are imported here, so the formats and the API
can describe an analysis without loading torch, sentence-transformers or onnxruntime.
The work lives in its own modules, each imported by the stage that needs it:

- :mod:`.sentences`  the transcript as timed sentences (the unit of every summary)
- :mod:`.embeddings` all-MiniLM-L6-v2, loaded once per process
- :mod:`.summary`    extractive summary: centrality + MMR
- :mod:`.keywords`   YAKE keyphrases re-ranked by embedding similarity
- :mod:`.chapters`   topic segments snapped to pauses and speaker changes
- :mod:`.llm`        an optional OpenAI-compatible backend (abstractive, checked)
- :mod:`.moderation` NudeNet on sampled frames
"""

from reelscribe.analysis.results import (
    Analysis,
    Chapter,
    Detection,
    Keyword,
    LlmNotes,
    ModerationFlag,
    ModerationReport,
    SummarySentence,
)

__all__ = [
    "Analysis",
    "Chapter",
    "Detection",
    "Keyword",
    "LlmNotes",
    "ModerationFlag",
    "ModerationReport",
    "SummarySentence",
]
