"""Cookies for the fetchers: a private temporary Netscape cookie file, and its jar.

Shared by the yt-dlp session (which reads the file itself) and plain HTTP fetching
(``pipeline/fetch.py``, which sends the jar's cookies), so a signed-in session works
for both.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from http.cookiejar import CookieJar
from pathlib import Path

from reelscribe.errors import InvalidInputError

COOKIES_HINT = (
    "supply cookies of a signed-in browser session: REELSCRIBE_YTDLP_COOKIES "
    "(the content of a Netscape cookie file) or --cookies FILE"
)


@contextlib.contextmanager
def cookie_file(path: Path | None, text: str | None) -> Iterator[Path | None]:
    """A private (0600) temporary Netscape cookie file, deleted afterwards.

    ``text`` (``REELSCRIBE_YTDLP_COOKIES``) wins over ``path``; a given file is copied
    too, because yt-dlp writes its cookie jar back to the file when it closes.
    """
    if text is None and path is None:
        yield None
        return
    if text is None:
        assert path is not None
        try:
            text = path.read_text()
        except OSError as exc:
            raise InvalidInputError(f"cannot read the cookie file {path}: {exc}") from exc
    fd, name = tempfile.mkstemp(prefix="reelscribe-cookies-", suffix=".txt")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text if text.endswith("\n") else text + "\n")
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def load_cookie_jar(path: Path) -> CookieJar:
    """The cookies of a Netscape cookie file, read as yt-dlp reads them."""
    # yt-dlp's jar reads the Netscape format as browsers export it (imported here: only a
    # fetch with cookies needs it, and API processes never load yt-dlp).
    from yt_dlp.cookies import YoutubeDLCookieJar

    jar = YoutubeDLCookieJar(str(path))
    try:
        jar.load()
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read the cookies: {exc}") from exc
    loaded: CookieJar = jar
    return loaded
