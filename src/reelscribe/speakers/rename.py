"""Renaming speakers after a job has run: every text output is written again from the
stored JSON transcript (see :mod:`reelscribe.service.rerender`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from reelscribe.backends.storage import BlobStore
from reelscribe.errors import InvalidInputError
from reelscribe.models import Transcript
from reelscribe.options import JobOptions
from reelscribe.service.rerender import Edit, rerender


def with_names(names: dict[str, str]) -> Edit:
    """The edit that gives these speaker ids new display names (unknown ids refused)."""

    def edit(transcript: Transcript) -> Transcript:
        unknown = sorted(set(names) - set(transcript.speakers))
        if unknown:
            known = ", ".join(transcript.speakers) or "none"
            raise InvalidInputError(
                f"unknown speaker {unknown[0]!r}: this job's speakers are {known}"
            )
        return replace(transcript, speaker_names=transcript.speaker_names | names)

    return edit


async def rerender_with_names(
    storage: BlobStore,
    job_id: str,
    transcript_key: str,
    result: dict[str, Any],
    options: JobOptions,
    names: dict[str, str],
    *,
    default_label: Literal["bracket", "dash"],
) -> tuple[dict[str, Any], str]:
    """The job's outputs after renaming, and the key of the renamed JSON transcript."""
    return await rerender(
        storage, job_id, transcript_key, result, options, with_names(names),
        default_label=default_label,
    )  # fmt: skip
