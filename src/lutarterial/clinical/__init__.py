"""lutarterial.clinical (see docs/architecture.md)."""
