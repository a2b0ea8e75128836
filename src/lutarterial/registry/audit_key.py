"""The audit key and the data directory that holds it, outside the database (issue 9).

The audit chain is keyed (HMAC-SHA256): someone who can edit the database but does not hold
the key cannot recompute the hashes after rewriting a row. The key is

1. ``$LUTARTERIAL_AUDIT_KEY`` (at least 32 characters; used as UTF-8 bytes), else
2. the file ``audit_key`` in the data directory, created with mode 0600 (64 random hex
   characters) the first time an audit row is written.

The data directory is ``$LUTARTERIAL_DATA_DIR``, else the SQLite file's directory, else ``./data``
(the web server's rule). It also holds the append-only checkpoint files
(:mod:`lutarterial.registry.audit_proof`). Keep a copy of the key with the backups but not on the
database server: whoever holds both the database and the key can rewrite history undetected.
"""

from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path

from lutarterial.errors import InvalidInputError

__all__ = ["data_dir_for_url", "audit_key", "KEY_ENV", "KEY_FILE"]

KEY_ENV = "LUTARTERIAL_AUDIT_KEY"
KEY_FILE = "audit_key"
_MIN_LEN = 32
_lock = threading.Lock()
_cache: dict[str, bytes] = {}


def data_dir_for_url(url: str) -> Path:
    """``$LUTARTERIAL_DATA_DIR``, else the SQLite file's directory, else ``./data``."""
    env = os.environ.get("LUTARTERIAL_DATA_DIR")
    if env:
        return Path(env)
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - any unparsable URL: the default folder
        return Path("data")
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:" \
            and not parsed.database.startswith("file:"):
        return Path(parsed.database).expanduser().resolve().parent
    return Path("data")


def audit_key(url: str, *, create: bool = True) -> bytes | None:
    """The audit key for the database at ``url`` (see the module docstring); ``None`` when there
    is none and ``create`` is false."""
    env = os.environ.get(KEY_ENV)
    if env:
        if len(env) < _MIN_LEN:
            raise InvalidInputError(f"${KEY_ENV} must have at least {_MIN_LEN} characters")
        return env.encode("utf-8")
    path = data_dir_for_url(url) / KEY_FILE
    cached = _cache.get(str(path))
    if cached is not None:
        return cached
    with _lock:
        if path.exists():
            key = path.read_text(encoding="utf-8").strip().encode("utf-8")
            if len(key) < _MIN_LEN:
                raise InvalidInputError(f"the audit key file {path} is too short (at least {_MIN_LEN} characters)")
        elif not create:
            return None
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            text = secrets.token_hex(32)
            # written to a private temporary file, then linked into place: the key file appears
            # whole or not at all, so another process never reads it half-written
            tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
            try:
                os.link(tmp, path)
                key = text.encode("utf-8")
            except FileExistsError:  # another process (a server worker) created it meanwhile: use theirs
                key = path.read_text(encoding="utf-8").strip().encode("utf-8")  # no re-entry of _lock
                if len(key) < _MIN_LEN:
                    raise InvalidInputError(f"the audit key file {path} is too short "
                                            f"(at least {_MIN_LEN} characters)") from None
            finally:
                tmp.unlink(missing_ok=True)
        _cache[str(path)] = key
        return key
