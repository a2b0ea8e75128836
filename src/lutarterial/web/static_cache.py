"""Package files (CSS, JS, the offline Swagger UI / ReDoc assets) answered from memory (issue 13, fast).

Starlette's ``StaticFiles`` and ``FileResponse`` stat and read the file in anyio's worker threads on
every request. With sync code run on the event loop's thread (``LUTARTERIAL_WEB_THREADS=0``, the
default of each process of a multi-worker ``serve``) that thread waits for the GIL behind a busy
loop: static files became the slowest requests under load (p95 256-570 ms against 60-90 ms for
pages; found by review). These files ship with the package and do not change while the server
runs, so each is read once and answered on the loop with the same headers ``FileResponse`` gives
(content type, length, ``ETag``, ``Last-Modified``) and the same ``304 Not Modified`` rule. With
``LUTARTERIAL_WEB_DEV=1`` nothing is cached (a file edited during development shows at once).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import FileResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles

__all__ = ["CachedStaticFiles", "cached_file_response", "MAX_CACHED_BYTES"]

#: A file larger than this is streamed by Starlette as before (the largest asset, Swagger UI's
#: bundle, is about 1.5 MB).
MAX_CACHED_BYTES = 8 * 1024 * 1024

_Cached = tuple[bytes, list[tuple[bytes, bytes]]]
#: ``cached_file_response``'s files by (path, headers): looked up before any stat or read.
_FILES: dict[tuple[str, tuple[tuple[str, str], ...]], _Cached] = {}
_RULES = StaticFiles(check_dir=False)  # Starlette's 304 rule (``is_not_modified``), no directory


def _read(full_path: str, stat_result: os.stat_result, headers: dict[str, str] | None) -> _Cached:
    """The file's bytes and the headers ``FileResponse`` sends for it (built, not sent)."""
    ref = FileResponse(full_path, stat_result=stat_result, headers=headers)
    return Path(full_path).read_bytes(), ref.raw_headers


def _answer(hit: _Cached, scope: Any) -> Response:
    body, raw_headers = hit
    headers = Headers(raw=raw_headers)
    if _RULES.is_not_modified(headers, Headers(scope=scope)):
        return NotModifiedResponse(headers)
    response = Response(b"" if scope.get("method") == "HEAD" else body)
    response.raw_headers = list(raw_headers)  # content-length of the file, as FileResponse sends for HEAD too
    return response


def cached_file_response(full_path: str | os.PathLike[str], scope: Any, *, media_type: str | None = None,
                         headers: dict[str, str] | None = None, cache: bool = True) -> Response:
    """What ``FileResponse(full_path, media_type=..., headers=...)`` answers (or 304 for a matching
    ``If-None-Match`` / ``If-Modified-Since``), from memory after the first request."""
    path = os.fspath(full_path)
    hdrs = dict(headers or {})
    if media_type:
        hdrs["content-type"] = media_type
    key = (path, tuple(sorted(hdrs.items())))
    hit = _FILES.get(key) if cache else None
    if hit is None:
        st = os.stat(path)
        if not cache or st.st_size > MAX_CACHED_BYTES:
            return FileResponse(path, media_type=media_type, headers=headers, stat_result=st)
        hit = _FILES[key] = _read(path, st, hdrs)
    return _answer(hit, scope)


class CachedStaticFiles(StaticFiles):
    """``StaticFiles`` whose regular files are read once and answered from memory on the event loop.
    Anything else (a missing file, a directory, a method other than GET/HEAD, a huge file) goes
    through Starlette's own handling, so errors and status codes are unchanged."""

    def __init__(self, *args: Any, cache: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cache = cache
        self._hits: dict[str, _Cached] = {}

    async def get_response(self, path: str, scope: Any) -> Response:
        if not self._cache or scope["method"] not in ("GET", "HEAD"):
            return await super().get_response(path, scope)
        hit = self._hits.get(path)
        if hit is None:
            try:
                full_path, st = self.lookup_path(path)  # a stat of a package file, on the loop: microseconds
            except (OSError, ValueError):
                return await super().get_response(path, scope)
            if st is None or not stat.S_ISREG(st.st_mode) or st.st_size > MAX_CACHED_BYTES:
                return await super().get_response(path, scope)
            hit = self._hits[path] = _read(full_path, st, None)
        return _answer(hit, scope)
