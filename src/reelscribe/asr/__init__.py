"""Speech recognition: where Whisper models come from (:mod:`.catalog`) and how they
are loaded once per process (:mod:`.engine`). The transcribe *stage* lives in
:mod:`reelscribe.pipeline.transcribe`."""
