"""lutarterial.eligibility (see docs/architecture.md)."""
