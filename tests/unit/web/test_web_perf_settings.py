"""Server tuning (issue 13, fast): settings bounds, the Jinja2 dict fast path, the thread limit."""

from __future__ import annotations

import anyio
import pytest
from jinja2 import Environment, StrictUndefined

from lutarterial.errors import InvalidInputError
from lutarterial.web.perf import DEFAULT_THREADS, PerfSettings, engine_kwargs, install_fast_getattr, \
    install_thread_limit


def test_defaults_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LUTARTERIAL_WEB_THREADS", "LUTARTERIAL_DB_POOL_SIZE", "LUTARTERIAL_WEB_DEV"):
        monkeypatch.delenv(name, raising=False)
    perf = PerfSettings.from_env()
    assert perf.threads == DEFAULT_THREADS and perf.pool_size == DEFAULT_THREADS + 4
    assert perf.template_reload is False
    assert engine_kwargs("sqlite:///x.db", perf)["pool_size"] >= perf.threads


@pytest.mark.parametrize("value, ok", [("-1", False), ("0", True), ("1", True), ("64", True), ("65", False),
                                       ("four", False)])
def test_thread_count_bounds_both_sides(monkeypatch: pytest.MonkeyPatch, value: str, ok: bool) -> None:
    monkeypatch.setenv("LUTARTERIAL_WEB_THREADS", value)
    monkeypatch.delenv("LUTARTERIAL_DB_POOL_SIZE", raising=False)
    if ok:
        perf = PerfSettings.from_env()
        assert perf.threads == int(value) and perf.pool_size == (int(value) + 4 if value != "0" else 2)
        assert perf.inline is (value == "0")
    else:
        with pytest.raises(InvalidInputError, match="LUTARTERIAL_WEB_THREADS"):
            PerfSettings.from_env()


def test_dev_mode_turns_template_reload_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUTARTERIAL_WEB_DEV", "1")
    assert PerfSettings.from_env().template_reload is True


def test_thread_limit_is_set_inside_the_loop() -> None:
    async def main() -> float:
        install_thread_limit(3)
        from anyio import to_thread

        return float(to_thread.current_default_thread_limiter().total_tokens)

    # in a thread of its own: another test in the same worker process may have left an event loop
    # marked as running in the main thread (anyio.run then refuses to start)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(anyio.run, main).result(timeout=30) == 3


def _thread_app(inline: bool) -> object:
    """A FastAPI app whose sync route and sync dependency report the thread they ran on."""
    import threading

    from fastapi import Depends, FastAPI

    from lutarterial.web.perf import InlineSyncMiddleware, install_inline_sync

    app = FastAPI()

    def dep() -> int:
        return threading.get_ident()

    @app.get("/where")
    def where(dep_thread: int = Depends(dep)) -> dict[str, int]:
        return {"route": threading.get_ident(), "dep": dep_thread}

    @app.get("/loop")
    async def loop() -> dict[str, int]:
        return {"loop": threading.get_ident()}

    if inline:
        assert install_inline_sync() is True
        app.add_middleware(InlineSyncMiddleware)
    return app


@pytest.mark.parametrize("inline", [True, False])
def test_inline_apps_run_sync_code_on_the_loop_thread_and_others_do_not(inline: bool) -> None:
    """LUTARTERIAL_WEB_THREADS=0: sync routes and dependencies on the event loop's thread; an app
    without it in the same process (the hook is process-wide) still uses worker threads."""
    from fastapi.testclient import TestClient

    inline_app, threaded_app = _thread_app(True), _thread_app(False)
    app = inline_app if inline else threaded_app
    with TestClient(app) as client:  # type: ignore[arg-type]
        loop_thread = client.get("/loop").json()["loop"]
        where = client.get("/where").json()
    assert (where["route"] == loop_thread) is inline
    assert (where["dep"] == loop_thread) is inline


class _Obj:
    name = "attr"

    def __getitem__(self, key: str) -> str:
        return "item"


@pytest.mark.parametrize("source, ctx", [
    ("{{ r.a }}|{{ r.missing is defined }}", {"r": {"a": 1}}),
    ("{{ r.items() | list }}", {"r": {"a": 1}}),           # a dict method still wins over a key
    ("{{ r.keys }}", {"r": {"keys": "k"}}),                  # ... even when a key has its name
    ("{{ r.name }}|{{ r.other }}", {"r": _Obj()}),          # non-dicts: Jinja2's own rule
    ("{{ r.x }}", {"r": type("D", (dict,), {"x": "attr"})(x="item")}),  # dict subclass: attribute first
])
def test_fast_getattr_gives_jinja2s_result(source: str, ctx: dict) -> None:
    plain = Environment(autoescape=True)
    fast = Environment(autoescape=True)
    install_fast_getattr(fast)
    assert fast.from_string(source).render(**ctx) == plain.from_string(source).render(**ctx)


def test_fast_getattr_missing_key_is_undefined_like_jinja2() -> None:
    env = Environment(undefined=StrictUndefined)
    install_fast_getattr(env)
    with pytest.raises(Exception, match="no attribute 'missing'"):
        env.from_string("{{ r.missing }}").render(r={"a": 1})
