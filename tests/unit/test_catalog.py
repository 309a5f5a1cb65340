"""Model name resolution and the packaged model's checksum."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reelscribe.asr.catalog import PACKAGED_MODELS, assemble, check_packaged, resolve
from reelscribe.errors import ModelUnavailableError


def test_packaged_base_resolves_and_verifies(models_dir: Path) -> None:
    resolved = resolve("base", models_dir)
    assert resolved.source == "packaged"
    directory = Path(resolved.path)
    assert {"model.bin", "config.json", "tokenizer.json", "vocabulary.json"} <= {
        p.name for p in directory.iterdir()
    }
    check_packaged(PACKAGED_MODELS["base"], directory)  # does not raise


def test_corrupted_model_is_refused(models_dir: Path, tmp_path: Path) -> None:
    good = assemble(PACKAGED_MODELS["base"], models_dir)
    bad = tmp_path / "copy"
    shutil.copytree(good, bad)
    with (bad / "model.bin").open("r+b") as fh:
        fh.seek(1000)
        fh.write(b"\x00\x01\x02\x03")
    with pytest.raises(ModelUnavailableError, match="checksum mismatch"):
        check_packaged(PACKAGED_MODELS["base"], bad)


def test_local_directory_wins(models_dir: Path) -> None:
    directory = assemble(PACKAGED_MODELS["base"], models_dir)
    resolved = resolve(str(directory), models_dir)
    assert resolved.source == "local"
    assert resolved.path == str(directory)


def test_hub_names_pass_through(tmp_path: Path) -> None:
    assert resolve("large-v3", tmp_path).source == "hub"
    assert resolve("Systran/faster-whisper-tiny", tmp_path).source == "hub"


def test_bad_names(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="unknown model"):
        resolve("gigantic-v9", tmp_path)
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        resolve("./no/such/dir", tmp_path)
    with pytest.raises(ModelUnavailableError, match=r"no model\.bin"):
        resolve(str(tmp_path), tmp_path)


def test_hub_model_offline_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import faster_whisper

    from reelscribe.asr.faster_whisper import EngineOptions, load_model

    calls: list[dict[str, object]] = []

    class UnreachableHub:  # what WhisperModel does offline, whether or not this host is
        def __init__(self, name: str, **kwargs: object) -> None:
            calls.append(kwargs)
            raise OSError(f"cannot reach the hub to download {name!r}")

    monkeypatch.setattr(faster_whisper, "WhisperModel", UnreachableHub)
    with pytest.raises(ModelUnavailableError) as info:
        load_model(EngineOptions(model="tiny", models_dir=tmp_path))
    message = str(info.value)
    assert [c.get("local_files_only") for c in calls] == [True, None]  # cache, then hub
    assert "offline-models" in message
    assert "REELSCRIBE_MODEL" in message
