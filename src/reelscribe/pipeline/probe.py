"""The probe stage: what a media file holds, read with PyAV (there is no ffprobe).

Times are seconds on the *source timeline*: measured from the container's start
time, which is also what ffmpeg's ``-ss`` and :class:`~reelscribe.models.TimeRange`
count from (an MPEG-TS file whose first timestamp is 1.4 s still starts at 0 here).

Keyframes and packet timings come from demuxing only (no decoding), so they are
cheap even for long files. Rotation is the clockwise angle a player turns the
picture to show it upright (the convention of the legacy ``rotate`` tag: a portrait
phone video is 90).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.container
import av.stream

from reelscribe.errors import MediaError, SourceNotFoundError
from reelscribe.models import MediaInfo, StreamInfo

_H264_IDR = 5
#: Packets decoded at most to find a first frame (and its rotation).
_ROTATION_PACKETS = 32
#: Bare elementary streams: no container, no index, no reliable timestamps.
_RAW_FORMATS = frozenset({"h264", "hevc", "mpegvideo", "m4v", "vvc", "obu"})


@dataclass(frozen=True, slots=True)
class PacketTiming:
    """One video packet in decode order (source timeline seconds)."""

    pts: float
    dts: float
    keyframe: bool
    #: An H.264 IDR picture: nothing after it references anything before it.
    idr: bool = False


def probe(path: Path | str, *, keyframes: bool = False) -> MediaInfo:
    """Reads the container and stream facts of ``path``.

    ``keyframes=True`` also demuxes the first video stream to list its keyframe times.
    Raises SourceNotFoundError for a missing file and MediaError for anything that is
    not readable media.
    """
    path = Path(path)
    if not path.is_file():
        raise SourceNotFoundError(f"media file not found: {path}")
    with _open(path) as container:
        start_time = (container.start_time or 0) / 1e6
        streams = container.streams
        video = next((s for s in streams.video if not _is_cover_art(s)), None)
        rotation, keyframe_times = _scan_first_video(container, video, start_time, keyframes)
        infos = tuple(_stream_info(s, rotation if s is video else 0) for s in streams)
        if not any(s.kind in ("video", "audio") for s in infos):
            raise MediaError(f"{path.name}: no audio or video stream")
        duration = _duration(path, container, start_time)
        return MediaInfo(
            path=path,
            format_name=container.format.name,
            duration=duration,
            start_time=start_time,
            bit_rate=container.bit_rate or None,
            size=path.stat().st_size,
            streams=infos,
            keyframes=keyframe_times,
        )


@dataclass(frozen=True, slots=True)
class VideoScan:
    """What the clip stage needs to know about a stretch of the first video stream."""

    #: Decode order, from a keyframe at or before the stretch's start to the first
    #: packet decoded after its end (so callers see what follows).
    packets: tuple[PacketTiming, ...]
    #: The codec level (H.264 ``level_idc``, e.g. 31 for 3.1), when known.
    level: int | None


def scan_video(path: Path, start: float, end: float) -> VideoScan:
    """Timings of the first video stream's packets that cover [start, end].

    The clip stage uses these to count frames and to see where GOPs begin and end.
    Demux only: a minute of 30 fps video is ~1,800 packets.
    """
    # A seek lands on a keyframe by *decode* time (with B-frames its display time can
    # be after ``start``) or, in MPEG-TS, on any packet: back off further until a
    # keyframe shown at or before ``start`` comes first, and finally read from the
    # beginning without seeking.
    for margin in (1.0, 10.0, None):
        if margin is not None and start - margin <= 0:
            continue
        with _open(path) as container:
            stream = next((s for s in container.streams.video if not _is_cover_art(s)), None)
            if stream is None or stream.time_base is None:
                return VideoScan((), None)
            start_time = (container.start_time or 0) / 1e6
            if margin is not None:
                offset = int((start - margin + start_time) / stream.time_base)
                container.seek(offset, stream=stream, backward=True)
            packets = _read_packets(container, stream, start_time, end)
            level = stream.codec_context.level
        if margin is None or (packets and packets[0].pts <= start + 1e-6):
            return VideoScan(tuple(packets), level if level > 0 else None)
    raise AssertionError("unreachable: the last attempt always returns")


# --- internals --------------------------------------------------------------------


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), mode="r")
    except av.FFmpegError as exc:
        raise MediaError(f"{path.name} is not readable media: {exc.strerror or exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise MediaError(f"{path.name} cannot be read: {exc}") from exc


def _is_cover_art(stream: av.stream.Stream) -> bool:
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _seconds(ticks: int | None, time_base: Fraction | None) -> float | None:
    if ticks is None or time_base is None:
        return None
    return float(ticks * time_base)


def _stream_info(stream: av.stream.Stream, rotation: int) -> StreamInfo:
    ctx = stream.codec_context
    kind = "attachment" if _is_cover_art(stream) else stream.type
    language = stream.language or stream.metadata.get("language")
    common = {
        "index": stream.index,
        "kind": kind,
        "codec": ctx.name if ctx is not None else "unknown",
        "duration": _seconds(stream.duration, stream.time_base),
        "start_time": _seconds(stream.start_time, stream.time_base),
        "bit_rate": (getattr(ctx, "bit_rate", None) or None) if ctx is not None else None,
        "language": None if language in (None, "", "und") else language,
        "profile": stream.profile,
    }
    if isinstance(stream, av.VideoStream) and kind == "video":
        rate = stream.average_rate or stream.guessed_rate
        return StreamInfo(
            **common,  # type: ignore[arg-type]
            width=stream.codec_context.width or None,
            height=stream.codec_context.height or None,
            fps=float(rate) if rate else None,
            rotation=rotation,
            pix_fmt=stream.codec_context.pix_fmt,
        )
    if isinstance(stream, av.AudioStream):
        return StreamInfo(
            **common,  # type: ignore[arg-type]
            sample_rate=stream.codec_context.sample_rate or None,
            channels=stream.codec_context.layout.nb_channels or None,
        )
    return StreamInfo(**common)  # type: ignore[arg-type]


def _scan_first_video(
    container: av.container.InputContainer,
    stream: av.VideoStream | None,
    start_time: float,
    keyframes: bool,
) -> tuple[int, tuple[float, ...]]:
    """Rotation of the first video stream and, if asked, its keyframe times.

    Since FFmpeg 6.1 the display matrix is stream side data that PyAV does not expose;
    the decoder copies it onto frames, so one frame is decoded to read it. The legacy
    ``rotate`` tag wins when present.
    """
    if stream is None:
        return 0, ()
    rotation: int | None = None
    tag = stream.metadata.get("rotate")
    if tag is not None:
        try:
            rotation = int(float(tag)) % 360
        except ValueError:
            rotation = None
    times: list[float] = []
    decoded = 0
    try:
        for packet in container.demux(stream):
            if rotation is None:
                rotation = _frame_rotation(packet)
                decoded += 1
                if decoded >= _ROTATION_PACKETS:
                    rotation = 0  # nothing decodable up front: assume upright
            if keyframes and packet.is_keyframe and packet.pts is not None:
                times.append(float(packet.pts * packet.time_base) - start_time)
            elif rotation is not None and not keyframes:
                break
    except av.FFmpegError as exc:
        if keyframes:
            raise MediaError(f"cannot read video packets: {exc.strerror or exc}") from exc
    return rotation or 0, tuple(sorted(set(times)))


def _frame_rotation(packet: av.Packet[av.VideoStream]) -> int | None:
    """Clockwise rotation from the first frame this packet yields; None if none yet."""
    try:
        frames = packet.decode()
    except av.FFmpegError:
        return None
    if not frames:
        return None
    frame = frames[0]
    if not isinstance(frame, av.VideoFrame):
        return 0
    # frame.rotation is counter-clockwise; players turn clockwise.
    return (-round(frame.rotation)) % 360


def _duration(path: Path, container: av.container.InputContainer, start_time: float) -> float:
    if container.duration is not None and container.duration > 0:
        return container.duration / 1e6
    # Some files (browser MediaRecorder WebM, Matroska written to a pipe, raw streams)
    # carry no duration: read the last timestamps instead, from a fresh open because
    # such files cannot always seek back.
    end = 0.0
    with _open(path) as fresh:
        try:
            for packet in fresh.demux():
                if packet.pts is None or packet.time_base is None:
                    continue
                length = float((packet.duration or 0) * packet.time_base)
                end = max(end, float(packet.pts * packet.time_base) + length)
        except av.FFmpegError as exc:
            raise MediaError(f"{path.name}: cannot read media: {exc.strerror or exc}") from exc
    duration = end - start_time
    if duration <= 0:
        raise MediaError(f"{path.name}: media has no measurable duration")
    return duration


def can_seek(path: Path) -> bool:
    """Whether ffmpeg's ``-ss`` can jump into this file.

    It needs an index or at least a known duration: a Matroska file written to a pipe
    has neither, and ffmpeg then silently reads it from the start, which a stream
    copy would turn into a clip of the wrong section.
    """
    with _open(path) as container:
        return container.duration is not None and container.format.name not in _RAW_FORMATS


def _read_packets(
    container: av.container.InputContainer,
    stream: av.VideoStream,
    start_time: float,
    end: float,
) -> list[PacketTiming]:
    """Packets from the first keyframe on (decode order) until just past ``end``."""
    h264 = stream.codec_context.name == "h264"
    nal_size = _nal_length_size(stream)
    out: list[PacketTiming] = []
    try:
        for packet in container.demux(stream):
            if packet.pts is None or packet.size == 0 or (not out and not packet.is_keyframe):
                continue
            tb = packet.time_base
            pts = float(packet.pts * tb) - start_time
            dts = float(packet.dts * tb) - start_time if packet.dts is not None else pts
            key = packet.is_keyframe
            out.append(
                PacketTiming(pts, dts, key, key and h264 and _is_idr(bytes(packet), nal_size))
            )
            # Every later packet has pts >= dts > end: nothing more inside the range
            # (this last one is kept so callers see what follows the range).
            if dts > end + 1e-6:
                break
    except av.FFmpegError as exc:
        raise MediaError(f"cannot read video packets: {exc.strerror or exc}") from exc
    return out


def _nal_length_size(stream: av.VideoStream) -> int | None:
    """Length-prefix size of H.264 NAL units in MP4/MKV (from avcC); None = Annex B."""
    extradata = stream.codec_context.extradata
    if stream.codec_context.name != "h264" or not extradata or extradata[0] != 1:
        return None
    return (extradata[4] & 0x03) + 1


def _is_idr(data: bytes, nal_size: int | None) -> bool:
    """Whether an H.264 access unit holds an IDR slice (False for other codecs' bytes)."""
    if nal_size is not None:
        pos = 0
        while pos + nal_size < len(data):
            length = int.from_bytes(data[pos : pos + nal_size], "big")
            if data[pos + nal_size] & 0x1F == _H264_IDR:
                return True
            pos += nal_size + length
        return False
    pos = data.find(b"\x00\x00\x01")
    while pos != -1 and pos + 3 < len(data):
        if data[pos + 3] & 0x1F == _H264_IDR:
            return True
        pos = data.find(b"\x00\x00\x01", pos + 3)
    return False
