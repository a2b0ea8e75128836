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

# issue 13: data management (schedule, queries and edit checks, e-signatures, locks and SDV)
from lutarterial.registry.services.audit_search import search_audit  # noqa: E402
from lutarterial.registry.services.locks import *  # noqa: F403,E402
from lutarterial.registry.services.locks import __all__ as _locks_all  # noqa: E402
from lutarterial.registry.services.queries import *  # noqa: F403,E402
from lutarterial.registry.services.queries import __all__ as _queries_all  # noqa: E402
from lutarterial.registry.services.schedule import *  # noqa: F403,E402
from lutarterial.registry.services.schedule import __all__ as _schedule_all  # noqa: E402
from lutarterial.registry.services.signatures import *  # noqa: F403,E402
from lutarterial.registry.services.signatures import __all__ as _signatures_all  # noqa: E402

__all__ = [*_people_all, *_participants_all, *_study_all, *_locks_all, *_queries_all, *_schedule_all,
           *_signatures_all, "search_audit"]
