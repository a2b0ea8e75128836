"""Packaged data tables of the top-level domain modules (plausibility limits)."""
