"""Two processes creating the audit key at once (server workers): the loser uses the winner's key,
without deadlocking (it re-entered a non-reentrant lock before) and never reads a half-written file."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from lutarterial.registry import audit_key as ak


def test_losing_the_creation_race_uses_the_existing_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ak.KEY_ENV, raising=False)
    monkeypatch.setenv("LUTARTERIAL_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(ak, "_cache", {})
    theirs = "f" * 64
    (tmp_path / ak.KEY_FILE).write_text(theirs + "\n", encoding="utf-8")
    real_exists = Path.exists
    calls = {"n": 0}

    def exists_once_false(self: Path) -> bool:  # the other process creates it just after our check
        if self.name == ak.KEY_FILE and calls["n"] == 0:
            calls["n"] += 1
            return False
        return real_exists(self)

    monkeypatch.setattr(Path, "exists", exists_once_false)
    out: list[bytes | None] = []
    t = threading.Thread(target=lambda: out.append(ak.audit_key("postgresql+psycopg://x@h/db")), daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "audit_key deadlocked"
    assert out == [theirs.encode()]
    assert sorted(p.name for p in tmp_path.iterdir()) == [ak.KEY_FILE]  # the temporary file is gone


def test_creates_the_key_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ak.KEY_ENV, raising=False)
    monkeypatch.setenv("LUTARTERIAL_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(ak, "_cache", {})
    key = ak.audit_key("postgresql+psycopg://x@h/db")
    assert key is not None and len(key) == 64
    assert (tmp_path / ak.KEY_FILE).read_text(encoding="utf-8").strip().encode() == key
    assert sorted(p.name for p in tmp_path.iterdir()) == [ak.KEY_FILE]
