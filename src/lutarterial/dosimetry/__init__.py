"""lutarterial.dosimetry (see docs/architecture.md)."""
