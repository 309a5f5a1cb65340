"""A transcript in the response formats of OpenAI's audio API.

``json`` (``{"text"}``), ``text``, ``srt``, ``vtt`` and ``verbose_json`` (language,
duration, segments and/or words as ``timestamp_granularities`` ask), plus the
server-sent events of a streamed transcription (``transcript.text.delta`` per segment,
then ``transcript.text.done``). SRT and WebVTT come from the same cue builder as the
job outputs, so the subtitles are the ones ``/api/jobs`` writes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any

from reelscribe.formats import render
from reelscribe.models import Transcript

#: Whisper's language names by code (OpenAI's verbose_json names the language).
LANGUAGES = {
    "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian",
    "ko": "korean", "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish",
    "pl": "polish", "ca": "catalan", "nl": "dutch", "ar": "arabic", "sv": "swedish",
    "it": "italian", "id": "indonesian", "hi": "hindi", "fi": "finnish", "vi": "vietnamese",
    "he": "hebrew", "uk": "ukrainian", "el": "greek", "ms": "malay", "cs": "czech",
    "ro": "romanian", "da": "danish", "hu": "hungarian", "ta": "tamil", "no": "norwegian",
    "th": "thai", "ur": "urdu", "hr": "croatian", "bg": "bulgarian", "lt": "lithuanian",
    "la": "latin", "mi": "maori", "ml": "malayalam", "cy": "welsh", "sk": "slovak",
    "te": "telugu", "fa": "persian", "lv": "latvian", "bn": "bengali", "sr": "serbian",
    "az": "azerbaijani", "sl": "slovenian", "kn": "kannada", "et": "estonian",
    "mk": "macedonian", "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian",
    "ne": "nepali", "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian",
    "sw": "swahili", "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala",
    "km": "khmer", "sn": "shona", "yo": "yoruba", "so": "somali", "af": "afrikaans",
    "oc": "occitan", "ka": "georgian", "be": "belarusian", "tg": "tajik", "sd": "sindhi",
    "gu": "gujarati", "am": "amharic", "yi": "yiddish", "lo": "lao", "uz": "uzbek",
    "fo": "faroese", "ht": "haitian creole", "ps": "pashto", "tk": "turkmen", "nn": "nynorsk",
    "mt": "maltese", "sa": "sanskrit", "lb": "luxembourgish", "my": "myanmar", "bo": "tibetan",
    "tl": "tagalog", "mg": "malagasy", "as": "assamese", "tt": "tatar", "haw": "hawaiian",
    "ln": "lingala", "ha": "hausa", "ba": "bashkir", "jw": "javanese", "su": "sundanese",
    "yue": "cantonese",
}  # fmt: skip

#: Media types of the plain-text formats, as OpenAI serves them.
MEDIA_TYPES = {
    "text": "text/plain; charset=utf-8",
    "srt": "text/plain; charset=utf-8",
    "vtt": "text/plain; charset=utf-8",
}


def language_name(transcript: Transcript) -> str:
    # A translation's text is English whatever was spoken (as OpenAI reports it).
    if transcript.task == "translate":
        return "english"
    return LANGUAGES.get(transcript.language, transcript.language)


def _usage(transcript: Transcript) -> dict[str, Any]:
    return {"type": "duration", "seconds": round(transcript.duration, 3)}


def as_json(transcript: Transcript) -> dict[str, Any]:
    return {"text": transcript.text, "usage": _usage(transcript)}


def as_verbose_json(transcript: Transcript, granularities: Collection[str] = ()) -> dict[str, Any]:
    """OpenAI's ``verbose_json``: segments unless only words were asked for, words when
    asked for. Translations carry no words (OpenAI's have none either)."""
    body: dict[str, Any] = {
        "task": transcript.task,
        "language": language_name(transcript),
        "duration": round(transcript.duration, 3),
        "text": transcript.text,
    }
    if "segment" in granularities or not granularities:
        body["segments"] = [
            {
                "id": segment.id,
                "seek": 0,
                "start": round(segment.start, 3),
                "end": round(segment.end, 3),
                "text": segment.text,
                # Token ids are not kept in the transcript (nobody but OpenAI's schema
                # asks for them); the list is required there, so it is empty.
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": segment.avg_logprob or 0.0,
                "compression_ratio": segment.compression_ratio or 0.0,
                "no_speech_prob": segment.no_speech_prob or 0.0,
            }
            for segment in transcript.segments
        ]
    if "word" in granularities and transcript.task == "transcribe":
        body["words"] = [
            {"word": word.text.strip(), "start": round(word.start, 3), "end": round(word.end, 3)}
            for word in transcript.words
        ]
    body["usage"] = _usage(transcript)
    return body


def as_text(transcript: Transcript, response_format: str) -> str:
    """``text``, ``srt`` or ``vtt``."""
    if response_format == "text":
        return transcript.text + "\n"
    return render(transcript, response_format)


def stream_events(transcript: Transcript) -> Iterator[dict[str, Any]]:
    """The events of a streamed transcription: one delta per segment, then the whole."""
    first = True
    for segment in transcript.segments:
        text = segment.text.strip()
        if not text:
            continue
        yield {"type": "transcript.text.delta", "delta": text if first else " " + text}
        first = False
    yield {"type": "transcript.text.done", "text": transcript.text}
