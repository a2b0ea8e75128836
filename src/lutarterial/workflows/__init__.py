"""Workflows: the steps that join the engines (imaging, dosimetry) and the registry.

* :mod:`.store` — the content-addressed file store and the import limits (files, bytes, zip ratio);
* :mod:`.studies` — import a participant's DICOM / NIfTI files (folders or a zip) into the store
  and the registry (studies, series, files), list them, materialise series for the engines;
* :mod:`.analyse` — pure analyses over file paths (IAH-vs-IV uptake, SPECT-measured IAH-cycle
  dosimetry) returning result objects, and :func:`.analyse.store_outcomes`, which writes them
  (reproduced / superseding) in one transaction;
* :mod:`.batch` — the same analyses for a cohort on Dask distributed (workers get files and
  parameters and return results; only the client writes to the registry);
* :mod:`.jobs` — background runs of the web server with status in the ``analysis_jobs`` table.

Web and CLI are thin shells over these functions.
"""

__all__: list[str] = []
