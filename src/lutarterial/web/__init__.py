"""lutarterial.web (see docs/architecture.md)."""
