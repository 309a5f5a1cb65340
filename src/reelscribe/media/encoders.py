"""Choosing an H.264 encoder: a hardware one when it really works, else libx264.

ffmpeg builds list ``h264_nvenc``/``h264_qsv``/``h264_vaapi`` whether or not the
machine has the hardware (the static imageio-ffmpeg build lists all three), so being
listed proves nothing: an encoder is used only when a tiny test encode succeeds. The
answer is cached per process because the probe costs a process start or two.

``ClipOptions.encoder`` or the ``h264_encoder`` setting (``REELSCRIBE_H264_ENCODER``,
handed over through :func:`reelscribe.media.ffmpeg.configure`) forces one by name; a
forced encoder that does not work is an error rather than a silent fallback, so a
misconfigured GPU host is noticed. The VAAPI device comes from the same place.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass, field
from functools import cache, lru_cache

from reelscribe.errors import InvalidInputError
from reelscribe.media.ffmpeg import ffmpeg_exe, tools

log = logging.getLogger(__name__)

SOFTWARE = "libx264"
#: Tried in this order by ``"auto"``.
HARDWARE = ("h264_nvenc", "h264_qsv", "h264_vaapi")
#: x264 preset names → NVENC's p1 (fastest) … p7 (best).
_NVENC_PRESETS = {
    "ultrafast": "p1", "superfast": "p1", "veryfast": "p2", "faster": "p3",
    "fast": "p4", "medium": "p5", "slow": "p6", "slower": "p7", "veryslow": "p7",
}  # fmt: skip
_QSV_PRESETS = frozenset({"veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"})


@dataclass(frozen=True, slots=True)
class H264Encoder:
    """How to drive one encoder: what goes before ``-i``, into ``-vf``, and after."""

    name: str
    #: The render device ``h264_vaapi`` opens (default: the configured one).
    vaapi_device: str = field(default_factory=lambda: tools().vaapi_device)

    @property
    def is_hardware(self) -> bool:
        return self.name != SOFTWARE

    def input_args(self) -> list[str]:
        if self.name == "h264_vaapi":
            return ["-vaapi_device", self.vaapi_device]
        return []

    def filters(self) -> list[str]:
        """Filters appended to the video chain: the upload/format each encoder needs."""
        if self.name == "h264_vaapi":
            return ["format=nv12", "hwupload"]
        if self.name == "h264_qsv":
            return ["format=nv12"]
        # 8-bit 4:2:0 is what every player decodes.
        return ["format=yuv420p"]

    def output_args(self, *, crf: int, preset: str) -> list[str]:
        """Quality-targeted (constant quality) settings, the nearest each encoder has to CRF."""
        if self.name == "h264_nvenc":
            nv_preset = _NVENC_PRESETS.get(preset, "p4")
            return ["-c:v", self.name, "-preset", nv_preset, "-rc", "vbr", "-cq", str(crf),
                    "-b:v", "0"]  # fmt: skip
        if self.name == "h264_qsv":
            qsv_preset = preset if preset in _QSV_PRESETS else "medium"
            return ["-c:v", self.name, "-preset", qsv_preset, "-global_quality", str(crf)]
        if self.name == "h264_vaapi":
            return ["-c:v", self.name, "-rc_mode", "CQP", "-qp", str(crf)]
        return ["-c:v", self.name, "-preset", preset, "-crf", str(crf)]


@lru_cache(maxsize=1)
def listed_encoders() -> frozenset[str]:
    """Names in ``ffmpeg -encoders`` (listed ≠ usable: see :func:`encoder_works`)."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-encoders"],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    names: set[str] = set()
    for line in proc.stdout.splitlines():
        parts = line.split()
        # Lines look like " V....D libx264   libx264 H.264 / AVC ..."; the legend
        # above them has "=" in its second column.
        if len(parts) >= 2 and len(parts[0]) == 6 and "=" not in parts[1]:
            names.add(parts[1])
    return frozenset(names)


@cache
def encoder_works(name: str) -> bool:
    """Whether a two-frame test encode with ``name`` succeeds on this machine."""
    if name not in listed_encoders():
        return False
    encoder = H264Encoder(name)
    argv = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
        *encoder.input_args(),
        "-f", "lavfi", "-i", "color=black:size=256x144:rate=25:duration=0.2",
        "-vf", ",".join(encoder.filters()), "-frames:v", "2",
        *encoder.output_args(crf=30, preset="veryfast"), "-f", "null", "-",
    ]  # fmt: skip
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    except subprocess.TimeoutExpired:
        log.info("H.264 encoder %s: test encode timed out", name)
        return False
    if proc.returncode != 0:
        log.debug("H.264 encoder %s unusable: %s", name, proc.stderr.strip()[-300:])
        return False
    return True


def forget_probes() -> None:
    """Drops the cached answers (another ffmpeg or device was configured)."""
    for probe in (listed_encoders, encoder_works):
        clear = getattr(probe, "cache_clear", None)  # a test may have replaced it
        if clear is not None:
            clear()


def select_h264_encoder(preference: str = "auto") -> H264Encoder:
    """The encoder to use: ``preference`` (or the configured ``h264_encoder``) when it
    is not ``"auto"``, else the first working hardware encoder, else libx264."""
    if preference == "auto":
        preference = tools().h264_encoder
    if preference == SOFTWARE:
        return H264Encoder(SOFTWARE)
    if preference != "auto":
        if preference not in (SOFTWARE, *HARDWARE):
            raise InvalidInputError(
                f"unknown H.264 encoder {preference!r}: use auto, {SOFTWARE}, {', '.join(HARDWARE)}"
            )
        if not encoder_works(preference):
            raise InvalidInputError(f"H.264 encoder {preference!r} does not work on this machine")
        return H264Encoder(preference)
    for name in HARDWARE:
        if encoder_works(name):
            log.info("using hardware H.264 encoder %s", name)
            return H264Encoder(name)
    return H264Encoder(SOFTWARE)
