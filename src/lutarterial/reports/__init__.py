"""Reports are views: Jinja2 templates over computed results, rendered to HTML and PDF (WeasyPrint).

* :mod:`.trial` — the trial report (answer on page 1, methods, tables, figures, snapshot) and the
  endpoint-only report of ``lutarterial endpoint --report``;
* :mod:`.participant` — one participant's report for the medical file;
* :mod:`.figures` — matplotlib figures as PNG data URIs; :mod:`.render` — templates and PDF.

Nothing here reads the registry (the workflow :mod:`lutarterial.workflows.reports` does) and no
identity ever reaches a template: participants are named by trial number only.
"""

from lutarterial.reports.trial import trial_context, write_endpoint_report, write_report

__all__ = ["trial_context", "write_report", "write_endpoint_report"]
