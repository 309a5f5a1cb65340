"""Speech recognition engines: where Whisper models come from (:mod:`.catalog`), the
engine seam (:mod:`.base`), and one module per engine: :mod:`.faster_whisper` (local,
models loaded once per process) and :mod:`.openai_compatible` (hosted). The transcribe
*stage* lives in :mod:`reelscribe.pipeline.transcribe`."""
