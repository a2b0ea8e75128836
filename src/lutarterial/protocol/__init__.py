"""lutarterial.protocol (see docs/architecture.md)."""
