"""The LUTARTERIAL protocol as versioned data (``versions/*.yaml``) and its validating loader."""

from lutarterial.protocol.loader import (
    Criterion,
    Protocol,
    Threshold,
    Window,
    available_versions,
    load_protocol,
    load_protocol_file,
    version_in_force,
)

__all__ = [
    "Criterion",
    "Protocol",
    "Threshold",
    "Window",
    "available_versions",
    "load_protocol",
    "load_protocol_file",
    "version_in_force",
]
