"""lutarterial.imaging (see docs/architecture.md)."""
