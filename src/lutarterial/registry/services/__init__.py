"""Registry services: the only way to read and change registry data.

Every function takes the SQLAlchemy ``Session`` and the :class:`~lutarterial.registry.access.Actor`
on whose behalf it acts; every change also takes a ``reason`` (required, audited). Services check
access (raising :class:`~lutarterial.errors.AccessDeniedError`), validate input (raising
:class:`~lutarterial.errors.InvalidInputError`), flush, and leave the commit to the caller's unit
of work (``with registry.session() as s: ...`` commits at the end of the block).

Participants are referenced by database id or trial number (``"BDX-001"``).
"""

from lutarterial.registry.services.participants import *  # noqa: F403
from lutarterial.registry.services.participants import __all__ as _participants_all
from lutarterial.registry.services.people import *  # noqa: F403
from lutarterial.registry.services.people import __all__ as _people_all
from lutarterial.registry.services.study_data import *  # noqa: F403
from lutarterial.registry.services.study_data import __all__ as _study_all

__all__ = [*_people_all, *_participants_all, *_study_all]
