"""One options object: the CLI's flags and the API's JobOptions offer the same options,
and the plan built from them is the one both paths run."""

from __future__ import annotations

import pytest
import typer

from reelscribe.cli import app
from reelscribe.config import Settings
from reelscribe.errors import InvalidInputError
from reelscribe.options import JobOptions, parse_speaker_names
from reelscribe.pipeline.plan import build_plan
from reelscribe.service.spec import JobSpec

#: JobOptions fields whose flag has another name (the CLI's names are older).
RENAMED = {"words_in_markdown": "words_in_md", "max_chars_per_line": "max_line_chars"}
#: Nested option groups, flattened into plain flags on the command line.
GROUPS = ("subtitle_style", "cue_limits")
#: Flags of `transcribe` that are not job options: where, what to write, how to print.
NOT_OPTIONS = {"source", "start", "end", "format", "out", "burn_in", "clip_out", "cookies",
               "as_json", "quiet",
               # The LLM endpoint is the operator's setting, never a job's (see plan.py).
               "llm_url", "llm_model", "llm_key"}  # fmt: skip


def _option_names() -> set[str]:
    names = set()
    for name, field in JobOptions.model_fields.items():
        if name in GROUPS:
            assert field.annotation is not None
            names |= set(field.annotation.model_fields)  # type: ignore[union-attr]
        else:
            names.add(name)
    return {RENAMED.get(n, n) for n in names}


def _flags(command: str) -> set[str]:
    group = typer.main.get_command(app)
    params = group.commands[command].params  # type: ignore[attr-defined]
    return {p.name for p in params if p.name is not None}


def test_transcribe_flags_and_job_options_match() -> None:
    flags = _flags("transcribe")
    options = _option_names()
    assert options - flags == set(), "job options without a CLI flag"
    assert flags - NOT_OPTIONS - options == set(), "flags the API lacks"


#: Flags of `submit` that are not part of the job: where to send it, what to do after.
SUBMIT_CLIENT = {"wait", "out", "server", "api_key", "as_json", "quiet"}


def test_submit_flags_and_the_job_api_match() -> None:
    flags = _flags("submit")
    # The job spec's own fields ("source" is the argument; "options" are flattened).
    spec_fields = set(JobSpec.model_fields) - {"options"}
    assert spec_fields - flags == set(), "job spec fields without a submit flag"
    assert _option_names() - flags == set(), "job options without a submit flag"
    assert flags - SUBMIT_CLIENT - spec_fields - _option_names() == set(), "flags the API lacks"


def test_plan_lists_the_stages_in_order_with_weights(tmp_path: object) -> None:
    settings = Settings()
    plain = build_plan("talk.mp4", JobOptions(), settings, outputs=["srt"])
    assert [s.name for s in plain.stages] == ["fetch", "probe", "audio", "transcribe", "render"]
    assert all(s.weight > 0 for s in plain.stages)
    speakers = build_plan("talk.mp4", JobOptions(speakers=True), settings,
                          outputs=["rttm", "burned_clip", "clip"])  # fmt: skip
    assert [s.name for s in speakers.stages] == [
        "fetch", "probe", "clip", "audio", "transcribe", "diarize", "render", "burn"
    ]  # fmt: skip
    assert speakers.outputs == ("rttm", "clip", "burned_clip")
    split = build_plan("call.wav", JobOptions(channels="split", speakers=True), settings,
                       outputs=["txt"])  # fmt: skip
    assert "diarize" not in [s.name for s in split.stages]  # channels already are speakers
    assert split.request.channels == "split"
    counted = build_plan("a.wav", JobOptions(num_speakers=3), settings, outputs=["txt"])
    assert counted.request.diarize is not None
    assert counted.request.diarize.num_speakers == 3
    clip_only = build_plan("a.mp4", JobOptions(), settings, outputs=["clip"])
    assert [s.name for s in clip_only.stages] == ["fetch", "probe", "clip"]


def test_unknown_outputs_and_bad_counts_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="unknown output 'pdf'"):
        build_plan("a.mp4", JobOptions(), Settings(), outputs=["srt", "pdf"])
    with pytest.raises(InvalidInputError, match="min_speakers must be <= max_speakers"):
        JobOptions.build(min_speakers=3, max_speakers=2)
    with pytest.raises(InvalidInputError, match="num_speakers"):
        JobOptions.build(num_speakers=5, max_speakers=2)


def test_speaker_names_parse() -> None:
    assert parse_speaker_names("SPEAKER_00=Diane, SPEAKER_01 = Sheila  Smith") == {
        "SPEAKER_00": "Diane", "SPEAKER_01": "Sheila Smith"
    }  # fmt: skip
    for bad in ("SPEAKER_00", "=Diane", "bad id=x"):
        with pytest.raises(InvalidInputError):
            parse_speaker_names(bad)
