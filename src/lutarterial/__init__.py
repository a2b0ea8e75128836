"""lutarterial: software for the LUTARTERIAL trial (NCT04837885) and studies like it.

Domain packages (protocol, eligibility, imaging, dosimetry, clinical, units) are pure;
registry, web and cli are the edges. See docs/architecture.md.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
