"""Password hashing with scrypt (RFC 7914) and a per-user random salt; constant-time verify.

Why scrypt from :mod:`hashlib`: memory-hard, in the standard library (nothing to install),
and recommended by OWASP for password storage. The stored form carries its own parameters
(``scrypt$n$r$p$salt_hex$hash_hex``) so they can be raised later without breaking old hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from lutarterial.errors import InvalidInputError

__all__ = ["hash_password", "verify_password", "MIN_PASSWORD_LENGTH"]

#: Minimum length of a new password (NIST SP 800-63B: at least 8 characters).
MIN_PASSWORD_LENGTH = 8
_N, _R, _P = 2**14, 8, 1  # OWASP minimum for scrypt: N=2^17 r=8 p=1 is better; 2^14 keeps logins < 50 ms
_DKLEN = 32


def hash_password(password: str) -> str:
    """Hash ``password`` with a fresh 16-byte salt; refuses passwords shorter than 8 characters."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=_DKLEN)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; compares digests in constant time."""
    try:
        scheme, n, r, p, salt_hex, hash_hex = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = bytes.fromhex(hash_hex)
        digest = hashlib.scrypt(
            password.encode("utf-8"), salt=bytes.fromhex(salt_hex), n=int(n), r=int(r), p=int(p),
            dklen=len(expected), maxmem=256 * 1024 * 1024,
        )
    except (ValueError, AttributeError):
        return False
    return hmac.compare_digest(digest, expected)
