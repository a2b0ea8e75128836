"""lutarterial.registry (see docs/architecture.md)."""
