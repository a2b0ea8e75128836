"""Issue 13 (fast): package files answered from memory on the event loop give Starlette's answers
(status, body, headers, 304, HEAD, errors), without a worker thread once read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.staticfiles import StaticFiles

from lutarterial.web.static_cache import CachedStaticFiles, cached_file_response

@pytest.fixture
def pair(tmp_path: Path) -> Any:
    (tmp_path / "a.css").write_text("body { color: red }\n", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.js").write_bytes(b"console.log(1)\n")
    cached, plain = FastAPI(), FastAPI()
    cached.mount("/s", CachedStaticFiles(directory=str(tmp_path)))
    plain.mount("/s", StaticFiles(directory=str(tmp_path)))
    with TestClient(cached) as c, TestClient(plain) as p:
        yield c, p, tmp_path


@pytest.mark.parametrize("path", ["/s/a.css", "/s/sub/b.js", "/s/missing.css", "/s/../secret", "/s/sub", "/s/",
                                  "/s/" + "x" * 5000, "/s/a.css%00"])
def test_same_answer_as_starlette(pair: Any, path: str) -> None:
    cached, plain, _ = pair
    for _ in range(2):  # first read, then from memory
        a, b = cached.get(path), plain.get(path)
        assert (a.status_code, a.content, dict(a.headers)) == (b.status_code, b.content, dict(b.headers))


def test_conditional_head_and_methods(pair: Any) -> None:
    cached, plain, _ = pair
    etag = cached.get("/s/a.css").headers["etag"]
    for client in (cached, plain):
        assert client.get("/s/a.css", headers={"if-none-match": etag}).status_code == 304
        assert client.get("/s/a.css", headers={"if-none-match": '"other"'}).status_code == 200
        head = client.head("/s/a.css")
        assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == "20"
        assert client.post("/s/a.css").status_code == 405


def test_read_once_then_no_worker_thread(pair: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    cached, _, root = pair
    assert cached.get("/s/a.css").text == "body { color: red }\n"
    import anyio.to_thread

    def no_thread(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a worker thread was used")

    monkeypatch.setattr(anyio.to_thread, "run_sync", no_thread)
    (root / "a.css").write_text("changed\n", encoding="utf-8")  # package files do not change while serving
    assert cached.get("/s/a.css").text == "body { color: red }\n"


def test_no_cache_in_dev_mode(tmp_path: Path) -> None:
    (tmp_path / "a.css").write_text("one\n", encoding="utf-8")
    app = FastAPI()
    app.mount("/s", CachedStaticFiles(directory=str(tmp_path), cache=False))
    with TestClient(app) as c:
        assert c.get("/s/a.css").text == "one\n"
        (tmp_path / "a.css").write_text("two\n", encoding="utf-8")
        assert c.get("/s/a.css").text == "two\n"


def test_cached_file_response_equals_file_response(tmp_path: Path) -> None:
    target = tmp_path / "x.js"
    target.write_bytes(b"x" * 1000)
    app = FastAPI()

    @app.get("/c")
    def c(request: Request) -> Any:
        return cached_file_response(target, request.scope, media_type="application/javascript",
                                    headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/f")
    def f() -> Any:
        return FileResponse(target, media_type="application/javascript",
                            headers={"Cache-Control": "private, max-age=3600"})

    with TestClient(app) as client:
        a, b = client.get("/c"), client.get("/f")
        assert (a.status_code, a.content, dict(a.headers)) == (b.status_code, b.content, dict(b.headers))
        assert client.get("/c", headers={"if-none-match": a.headers["etag"]}).status_code == 304
