"""Packaged clinical rulebooks (YAML); see README.md in this folder for sources and versions."""
