"""Wrappers around external media tools (ffmpeg, yt-dlp): argv built in one place,
failures translated into :mod:`reelscribe.errors`."""
