"""Edits of a done job's transcript: the stored JSON transcript is the source of truth,
so an edit reads it, changes the :class:`~reelscribe.models.Transcript` (an edit
function: rename speakers, correct text, ...) and writes every text output again from
it (no ASR, no diarization). Media outputs stay as they are."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from reelscribe.backends.storage import BlobStore
from reelscribe.formats import FORMATS, render
from reelscribe.formats.json_doc import parse
from reelscribe.hub.local import store_output
from reelscribe.models import Transcript
from reelscribe.options import JobOptions

Edit = Callable[[Transcript], Transcript]


async def read_blob(storage: BlobStore, key: str) -> bytes:
    data = bytearray()
    async with contextlib.aclosing(storage.get_stream(key)) as chunks:
        async for chunk in chunks:
            data += chunk
    return bytes(data)


async def rerender(
    storage: BlobStore,
    job_id: str,
    transcript_key: str,
    result: dict[str, Any],
    options: JobOptions,
    edit: Edit,
    *,
    default_label: Literal["bracket", "dash"],
) -> tuple[dict[str, Any], str]:
    """The job's outputs after ``edit`` (text outputs re-rendered and stored under new
    content-addressed keys, the old blobs deleted; media outputs unchanged) and the key
    of the edited JSON transcript. ``edit`` raises to refuse (nothing is stored then)."""
    transcript = edit(parse(await read_blob(storage, transcript_key)))
    size = (result.get("media") or {}).get("video_size")
    video_size = (int(size[0]), int(size[1])) if isinstance(size, list) and len(size) == 2 else None
    render_options = options.render_options(default_label, video_size)
    outputs: dict[str, Any] = dict(result.get("outputs") or {})
    stale: list[str] = []
    transcript_entry: dict[str, Any] | None = None
    # The JSON document is written even when it is not an output: it is the source of
    # truth for the next edit.
    wanted = [name for name in outputs if name in FORMATS]
    wanted += [] if "json" in wanted else ["json"]
    with tempfile.TemporaryDirectory(prefix="reelscribe-edit-") as tmp:
        for name in wanted:
            previous = outputs.get(name)
            filename = previous["filename"] if previous else "transcript.json"
            path = Path(tmp) / filename
            path.write_text(render(transcript, name, render_options), encoding="utf-8")
            entry = await store_output(storage, job_id, name, path)
            old_key = previous["key"] if previous else transcript_key
            if old_key != entry["key"]:
                stale.append(old_key)
            if previous is not None:
                outputs[name] = entry
            if name == "json":
                transcript_entry = entry
    assert transcript_entry is not None
    for key in stale:
        await storage.delete(key)
    return outputs, transcript_entry["key"]
