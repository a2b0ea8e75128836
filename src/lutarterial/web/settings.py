"""Settings of the web application, read once at start-up.

The embedded default needs nothing configured: the database is SQLite in ``./data`` and the
secret key that signs session cookies is generated on first start and stored next to the
database (mode 0600), so sessions survive a restart. In production set
``LUTARTERIAL_SECRET_KEY`` (at least 32 characters) and ``LUTARTERIAL_DB_URL``.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from lutarterial.errors import InvalidInputError

__all__ = ["WebSettings", "DEFAULT_DATA_DIR", "default_db_url", "load_or_create_secret", "data_dir_for"]

DEFAULT_DATA_DIR = Path("data")
_SECRET_FILE = "web_secret_key"
_MIN_SECRET_LEN = 32


def default_db_url() -> str:
    """The registry's default: ``$LUTARTERIAL_DB`` or SQLite ``./data/lutarterial.db``."""
    from lutarterial.registry.db import default_db_url as registry_default

    return registry_default()


def data_dir_for(db_url: str) -> Path:
    """Directory that holds the server's local files (the secret key) for ``db_url``.

    For a SQLite file it is the file's directory; otherwise ``$LUTARTERIAL_DATA_DIR`` or ``./data``.
    """
    env = os.environ.get("LUTARTERIAL_DATA_DIR")
    if env:
        return Path(env)
    if db_url.startswith("sqlite:///") and ":memory:" not in db_url:
        return Path(db_url[len("sqlite:///"):]).parent
    return DEFAULT_DATA_DIR


def load_or_create_secret(data_dir: Path) -> str:
    """Return the stored session secret, creating a random one (0600) if there is none."""
    path = data_dir / _SECRET_FILE
    if path.exists():
        secret = path.read_text(encoding="utf-8").strip()
        if len(secret) >= _MIN_SECRET_LEN:
            return secret
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secret + "\n")
    return secret


@dataclass(frozen=True)
class WebSettings:
    """Everything the app factory needs besides the database URL.

    ``session_max_age_s`` is the absolute lifetime of a login; ``idle_timeout_s`` logs a user out
    after that long without a request (21 CFR 11.300-style session control). ``secure_cookies``
    adds the ``Secure`` flag (set it behind HTTPS).
    """

    secret_key: str
    session_max_age_s: int = 8 * 3600
    idle_timeout_s: int = 30 * 60
    secure_cookies: bool = False
    cookie_name: str = "lutarterial_session"

    def __post_init__(self) -> None:
        if len(self.secret_key) < _MIN_SECRET_LEN:
            raise InvalidInputError(
                f"the session secret key must have at least {_MIN_SECRET_LEN} characters; "
                "set LUTARTERIAL_SECRET_KEY to a long random string"
            )
        if self.session_max_age_s <= 0 or self.idle_timeout_s <= 0:
            raise InvalidInputError("session lifetimes must be positive numbers of seconds")

    @classmethod
    def from_env(cls, db_url: str, secret_key: str | None = None) -> "WebSettings":
        """Settings from the environment, falling back to a generated key in the data dir."""
        key = secret_key or os.environ.get("LUTARTERIAL_SECRET_KEY") or load_or_create_secret(data_dir_for(db_url))
        secure = os.environ.get("LUTARTERIAL_SECURE_COOKIES", "").lower() in {"1", "true", "yes"}
        max_age = int(os.environ.get("LUTARTERIAL_SESSION_MAX_AGE_S", 8 * 3600))
        idle = int(os.environ.get("LUTARTERIAL_SESSION_IDLE_S", 30 * 60))
        return cls(secret_key=key, secure_cookies=secure, session_max_age_s=max_age, idle_timeout_s=idle)
