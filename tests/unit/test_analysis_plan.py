"""The analysis stages in the job plan: registered once, planned when asked for (by an
option or by an output), in order; the moderation policy is the stricter of the
server's and the job's; the LLM endpoint comes from the settings only."""

from __future__ import annotations

import pytest

from reelscribe.config import Settings
from reelscribe.errors import InvalidInputError
from reelscribe.options import JobOptions
from reelscribe.pipeline.plan import build_plan, moderation_policy


def _stages(options: JobOptions, outputs: list[str], **settings: object) -> list[str]:
    plan = build_plan("talk.mp4", options, Settings(**settings), outputs=outputs)  # type: ignore[arg-type]
    return [s.name for s in plan.stages]


def test_stages_are_planned_when_asked_for_and_in_order() -> None:
    assert _stages(JobOptions(summary=True, keywords=True, chapters=True),
                   ["json", "clip"]) == [
        "fetch", "probe", "clip", "audio", "transcribe", "summarize", "chapters", "render",
        "mark_chapters",
    ]  # fmt: skip
    # An output implies its stage; keywords alone plan the summarize stage.
    assert "chapters" in _stages(JobOptions(), ["chapters"])
    assert "moderate" in _stages(JobOptions(), ["moderation"])
    assert _stages(JobOptions(keywords=True), ["md"]).count("summarize") == 1
    plan = build_plan("a.mp4", JobOptions(keywords=True), Settings(), outputs=["md"])
    assert plan.request.summary is not None
    assert plan.request.summary.summary is False
    assert plan.request.summary.keywords == 10
    ratio = build_plan("a.mp4", JobOptions(summary_ratio=0.25), Settings(), outputs=["md"])
    assert ratio.request.summary is not None
    assert ratio.request.summary.count(40) == 10
    # Moderation runs before anything is transcribed, on the clip when there is one.
    names = _stages(JobOptions(moderate="block"), ["srt", "clip"])
    assert names.index("clip") < names.index("moderate") < names.index("transcribe")
    assert _stages(JobOptions(), ["srt"]) == ["fetch", "probe", "audio", "transcribe", "render"]


def test_a_job_may_be_stricter_than_the_server_never_laxer() -> None:
    assert moderation_policy(None, "flag") == "flag"
    assert moderation_policy("block", "flag") == "block"
    assert moderation_policy("off", "block") == "block"
    assert moderation_policy("flag", "off") == "flag"
    assert "moderate" in _stages(JobOptions(moderate="off"), ["srt"], moderation_policy="flag")
    plan = build_plan("a.mp4", JobOptions(), Settings(moderation_policy="block",
                      moderation_unsafe_labels="FACE_FEMALE, face_male"), outputs=["srt"])  # type: ignore[arg-type]  # fmt: skip
    assert plan.request.moderate is not None
    assert plan.request.moderate.policy == "block"
    assert plan.request.moderate.unsafe_labels == ("FACE_FEMALE", "FACE_MALE")


def test_unknown_moderation_labels_are_refused() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="unknown moderation label 'NUDITY'"):
        Settings(moderation_unsafe_labels="FACE_MALE,nudity")  # type: ignore[arg-type]


def test_the_llm_needs_a_configured_endpoint() -> None:
    with pytest.raises(InvalidInputError, match="REELSCRIBE_LLM_URL"):
        build_plan("a.mp4", JobOptions(llm=True), Settings(), outputs=["md"])
    settings = Settings(
        llm_url="http://127.0.0.1:11434/v1", llm_model="qwen", llm_api_key="sk-secret"
    )  # type: ignore[arg-type]
    plan = build_plan("a.mp4", JobOptions(action_items=True), settings, outputs=["md"])
    assert plan.request.llm is not None
    assert plan.request.llm.action_items
    assert plan.request.llm.api_key == "sk-secret"
    assert "sk-secret" not in repr(plan.request.llm)  # the key stays out of logs
    assert "llm" in [s.name for s in plan.stages]


def test_bad_analysis_options_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="not both"):
        JobOptions.build(summary_sentences=3, summary_ratio=0.2)
    with pytest.raises(InvalidInputError, match="summary_ratio"):
        JobOptions.build(summary_ratio=0)
    with pytest.raises(InvalidInputError, match="moderate"):
        JobOptions.build(moderate="maybe")
    with pytest.raises(InvalidInputError, match="unknown output 'summary'"):
        build_plan("a.mp4", JobOptions(), Settings(), outputs=["summary"])
