"""The Demucs backend: for machines that can fetch its weights (or hold them in
REELSCRIBE_DEMUCS_REPO). Where they cannot be had, the real separation test reports
itself skipped with the reason; the error a job would get is checked either way."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from reelscribe.errors import ExtraNotInstalledError, ModelUnavailableError
from reelscribe.media.ffmpeg import ffmpeg_exe
from reelscribe.models import TimeRange
from reelscribe.pipeline.separate import separate
from reelscribe.separation.base import SeparateOptions
from reelscribe.separation.demucs import DemucsSeparator

SR = 44_100


def _repo() -> Path | None:
    value = os.environ.get("REELSCRIBE_DEMUCS_REPO")
    return Path(value) if value else None


def test_without_the_extra_the_error_says_how_to_install(tmp_path: Path) -> None:
    if importlib.util.find_spec("demucs") is not None:
        pytest.skip("demucs is installed here")
    with pytest.raises(ExtraNotInstalledError, match=r"reelscribe\[demucs\]"):
        DemucsSeparator().separate(tmp_path / "mix.f32", tmp_path / "vocals.f32")


@pytest.mark.slow
@pytest.mark.media
@pytest.mark.timeout(1200)
def test_demucs_separates_speech_from_a_tone(shared_media: Path, tmp_path: Path) -> None:
    if importlib.util.find_spec("demucs") is None:
        pytest.skip("demucs is not installed (pip install 'reelscribe[demucs]')")
    separator = DemucsSeparator(repo=_repo())
    try:
        separator.load()  # loading is what may be impossible here
    except ModelUnavailableError as exc:
        pytest.skip(f"the demucs weights cannot be fetched here: {exc}")
    mix = tmp_path / "mix.wav"
    # JFK over a loud 220 Hz sawtooth: demucs must keep the voice and drop the tone.
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-i", str(shared_media / "jfk.flac"),
                    "-f", "lavfi", "-i", "aevalsrc=0.3*(2*mod(220*t\\,1)-1):s=44100:d=11",
                    "-filter_complex", "[0:a][1:a]amix=inputs=2:normalize=0", "-ac", "2",
                    str(mix)], check=True)  # fmt: skip
    options = SeparateOptions(backend="demucs", demucs_repo=_repo())
    result = separate(mix, TimeRange(), tmp_path / "work", options)
    speech = np.frombuffer(
        subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-i", str(shared_media / "jfk.flac"),
                        "-ac", "1", "-ar", "16000", "-f", "f32le", "pipe:1"],
                       capture_output=True, check=True).stdout, "<f4")  # fmt: skip
    n = min(len(speech), len(result.samples))
    # The stem follows the speech far better than the mix does.
    corr = np.corrcoef(speech[:n], result.samples[:n])[0, 1]
    assert corr > 0.8


def test_demucs_reads_a_local_repo_and_keeps_the_timeline(tmp_path: Path) -> None:
    """REELSCRIBE_DEMUCS_REPO's loading path and the chunking, with an untrained tiny
    HTDemucs saved the way demucs saves its models (the real weights need the internet)."""
    if importlib.util.find_spec("demucs") is None:
        pytest.skip("demucs is not installed (pip install 'reelscribe[demucs]')")
    import torch
    from demucs.htdemucs import HTDemucs
    from demucs.states import serialize_model
    from omegaconf import OmegaConf

    torch.manual_seed(0)
    model = HTDemucs(sources=["drums", "bass", "other", "vocals"], channels=8, t_layers=1)
    repo = tmp_path / "repo"
    repo.mkdir()
    # A single model, named by its signature (a bag's .yaml would trip filterwarnings:
    # demucs 4.0.1 leaves that file open).
    torch.save(serialize_model(model, OmegaConf.create({}), half=False), repo / "0a1b2c3d.th")
    mix = tmp_path / "mix.f32"
    samples = np.random.default_rng(0).normal(scale=0.1, size=(int(SR * 2.5), 2))
    samples.astype("<f4").tofile(mix)
    seen: list[float] = []
    separator = DemucsSeparator("0a1b2c3d", repo, "cpu")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("reelscribe.separation.demucs.CHUNK_SECONDS", 1.0)  # three chunks
        separator.separate(mix, tmp_path / "vocals.f32", seen.append)
    vocals = np.fromfile(tmp_path / "vocals.f32", "<f4").reshape(-1, 2)
    assert vocals.shape == samples.shape
    assert np.isfinite(vocals).all()
    assert seen == sorted(seen)
    assert seen[-1] == 1.0
    assert len(seen) == 4  # the start, then one per chunk
