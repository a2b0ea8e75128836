"""The CLI's last line of defence: every exception becomes ``error: ...`` on stderr, never a traceback.

Why here and not in each command: input a command did not anticipate (a corrupted SQLite
file, a directory where a file was expected, binary garbage, a file that vanished) still
must not end in a traceback (issue 9, item 6). User errors derive from
:class:`~lutarterial.errors.LutarterialError` and are handled by :func:`lutarterial.cli.main.run`;
this module turns the remaining *environment* errors (database, file system, decoding) into a
clear one-line message with exit code 2, and anything else into an ``internal error`` line
(exit 2) that asks for a bug report. ``LUTARTERIAL_DEBUG=1`` re-raises for the traceback.
The fuzz suite (``tests/fuzz``) asserts that no input reaches the ``internal error`` branch.
"""

from __future__ import annotations

import os
import sys

__all__ = ["INTERNAL_ERROR_PREFIX", "describe", "handle"]

#: Start of the message for an exception nobody anticipated (a bug).
INTERNAL_ERROR_PREFIX = "error: internal error"


def _database_message(exc: BaseException) -> str | None:
    try:
        from sqlalchemy import exc as sa_exc
    except ImportError:  # pragma: no cover - SQLAlchemy is a dependency
        return None
    if isinstance(exc, sa_exc.DBAPIError):
        orig = getattr(exc, "orig", None)
        detail = str(orig if orig is not None else exc).splitlines()[0]
        return (f"the database could not be used ({detail}); check --db / LUTARTERIAL_DATABASE_URL "
                "points at a lutarterial database that is not corrupted (`lutarterial db upgrade` creates one)")
    if isinstance(exc, sa_exc.ArgumentError):
        return f"invalid database URL ({exc}); use e.g. sqlite:///path/to/file.db or postgresql+psycopg://..."
    if isinstance(exc, sa_exc.SQLAlchemyError):
        return f"database error ({str(exc).splitlines()[0]})"
    return None


def _decode_message(exc: BaseException) -> str | None:
    import json

    if isinstance(exc, UnicodeError):
        return f"input is not valid text ({exc}); give a UTF-8 text file"
    if isinstance(exc, json.JSONDecodeError):
        return f"input is not valid JSON ({exc})"
    try:
        import yaml

        if isinstance(exc, yaml.YAMLError):
            return f"input is not valid YAML ({str(exc).splitlines()[0]})"
    except ImportError:  # pragma: no cover
        pass
    try:
        from pydicom.errors import InvalidDicomError

        if isinstance(exc, InvalidDicomError):
            return f"not a readable DICOM file ({exc})"
    except ImportError:  # pragma: no cover
        pass
    import csv
    import zlib

    if isinstance(exc, csv.Error):
        return f"not a readable CSV file ({exc})"

    if isinstance(exc, (zlib.error, EOFError)):
        return f"a compressed or binary input is truncated or corrupt ({exc or type(exc).__name__})"
    return None


def describe(exc: BaseException) -> tuple[str, bool]:
    """(message without the ``error:`` prefix, anticipated?) for an exception a command raised."""
    msg = _database_message(exc)
    if msg:
        return msg, True
    msg = _decode_message(exc)
    if msg:
        return msg, True
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        return f"{where}{exc.strerror or exc}", True
    if isinstance(exc, MemoryError):
        return "not enough memory for this input (is it much larger than expected?)", True
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}".rstrip(": "), False


def handle(exc: BaseException) -> int:
    """Print ``error: ...`` for ``exc`` on stderr and return the exit code (2)."""
    if os.environ.get("LUTARTERIAL_DEBUG"):
        raise exc
    msg, anticipated = describe(exc)
    if anticipated:
        print(f"error: {msg}", file=sys.stderr)
    else:
        print(f"{INTERNAL_ERROR_PREFIX} ({msg}); this is a bug: please report it with the command line "
              "(LUTARTERIAL_DEBUG=1 shows the traceback)", file=sys.stderr)
    return 2
