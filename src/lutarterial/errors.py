"""Error hierarchy shared by every part of lutarterial.

Every error a user can cause derives from :class:`LutarterialError` and carries a
message that says what to fix. The CLI maps them to exit code 2 and a one-line
message; the web app maps them to HTTP 4xx. Tracebacks are for bugs only.
"""

from __future__ import annotations

__all__ = [
    "LutarterialError",
    "InvalidInputError",
    "UnitError",
    "ImplausibleValueError",
    "DicomConformanceError",
    "ProtocolDefinitionError",
    "AccessDeniedError",
    "NotFoundError",
]


class LutarterialError(Exception):
    """Base class of every error caused by input, configuration or permissions."""

    exit_code: int = 2
    http_status: int = 400


class InvalidInputError(LutarterialError, ValueError):
    """Input that is malformed, inconsistent or out of range."""


class UnitError(InvalidInputError):
    """A unit that is unknown, or incompatible with the quantity it describes."""


class ImplausibleValueError(InvalidInputError):
    """A number outside the physical limits of its quantity (NaN, infinity, platelets 1e308, ...).

    See :mod:`lutarterial.plausibility`; the message names the quantity, the value, the limits
    and what to fix. The web answers 422 (the value is well-formed but impossible).
    """

    http_status = 422


class DicomConformanceError(InvalidInputError):
    """DICOM data missing a required attribute or violating the standard."""


class ProtocolDefinitionError(LutarterialError):
    """A protocol, CTCAE or nuclide rulebook file that is invalid."""


class AccessDeniedError(LutarterialError):
    """The current user may not read or change this resource."""

    exit_code = 3
    http_status = 403


class NotFoundError(LutarterialError, LookupError):
    """A referenced participant, file or record does not exist."""

    http_status = 404
