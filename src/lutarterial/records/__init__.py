"""lutarterial.records (see docs/architecture.md)."""
