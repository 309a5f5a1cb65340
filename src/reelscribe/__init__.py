"""reelscribe: fetch, clip, transcribe and subtitle media.

The pipeline stages live in :mod:`reelscribe.pipeline`, one module per stage in
processing order; :mod:`reelscribe.formats` turns a :class:`~reelscribe.models.Transcript`
into text; :mod:`reelscribe.cli` is a thin edge over :mod:`reelscribe.pipeline.runner`.
"""

__version__ = "0.1.0"
