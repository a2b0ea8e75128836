"""A small typed Python client of the registry's REST API (``/api/v1``), built on httpx.

    from lutarterial.client import Client, ApiError

    with Client("https://registry.example.org", token="lut_...") as api:
        tn = api.register_participant(site="BDX", reason="inclusion")
        api.add_lab(tn, analyte="platelets", value=92, unit="G/L", collected_date="2024-03-04",
                    lln=150, uln=400, reason="hospital report")
        try:
            api.participant("BDX-999")
        except ApiError as exc:
            print(exc.status, exc.error, exc.detail)   # 404 NotFoundError ...

Authentication: a personal API token (``token=``, sent as ``Authorization: Bearer``), or
:meth:`Client.login` with a username and password (session cookie + CSRF header, as a browser).
Every error answer becomes :class:`ApiError` carrying the API's error model
(``error``, ``detail``, ``problems``) and the HTTP status; 429 answers carry ``retry_after``.
"""

from __future__ import annotations

import datetime as dt
from types import TracebackType
from typing import Any, Literal

import httpx

__all__ = ["Client", "ApiError", "Json"]

Json = dict[str, Any]
DateLike = dt.date | str


def _d(value: DateLike | None) -> str | None:
    return value.isoformat() if isinstance(value, dt.date) else value


def _clean(body: dict[str, Any]) -> dict[str, Any]:
    return {k: _d(v) if isinstance(v, dt.date) else v for k, v in body.items() if v is not None}


class ApiError(Exception):
    """An error answer of the API: ``status`` plus the error model ``error``, ``detail``, ``problems``."""

    def __init__(self, status: int, error: str, detail: str, problems: list[Any] | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(f"{status} {error}: {detail}")
        self.status = status
        self.error = error
        self.detail = detail
        self.problems = problems or []
        self.retry_after = retry_after

    @classmethod
    def from_response(cls, r: httpx.Response) -> ApiError:
        try:
            body = r.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {"error": "HTTPError", "detail": r.text[:500] or r.reason_phrase}
        retry = r.headers.get("retry-after")
        return cls(r.status_code, str(body.get("error", "HTTPError")), str(body.get("detail", "")),
                   body.get("problems") if isinstance(body.get("problems"), list) else None,
                   float(retry) if retry and retry.replace(".", "", 1).isdigit() else None)


class Client:
    """The registry API for scripts. Use as a context manager or call :meth:`close`."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout,
                                  transport=transport)

    @classmethod
    def login(cls, base_url: str, username: str, password: str, **kwargs: Any) -> Client:
        """A client signed in with a password (session cookie; writes send the CSRF token)."""
        c = cls(base_url, **kwargs)
        out = c._call("POST", "/login", json={"username": username, "password": password})
        c._http.headers["X-CSRF-Token"] = str(out["csrf_token"])
        return c

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # --- plumbing ---------------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
              raw: bool = False, prefix: str = "/api/v1") -> Any:
        r = self._http.request(method, prefix + path, json=json,
                               params={k: v for k, v in (params or {}).items() if v is not None})
        if r.status_code >= 400:
            raise ApiError.from_response(r)
        if raw:
            return r.content
        if r.status_code == 204 or not r.content:
            return None
        return r.json()

    # --- session, sites, tokens -------------------------------------------------------------------

    def session(self) -> Json:
        """Who is authenticated (username, roles, sites, can_write)."""
        return dict(self._call("GET", "/session"))

    def sites(self) -> list[Json]:
        return list(self._call("GET", "/sites"))

    def tokens(self) -> list[Json]:
        """Your API tokens (signed-in sessions only: a token cannot list tokens)."""
        return list(self._call("GET", "/tokens"))

    # --- participants -----------------------------------------------------------------------------

    def participants(self, site: str | None = None, status: str | None = None) -> list[Json]:
        return list(self._call("GET", "/participants", params={"site": site, "status": status}))

    def participant(self, tn: str) -> Json:
        """Everything about one participant (study data; never the identity key)."""
        return dict(self._call("GET", f"/participants/{tn}"))

    def register_participant(self, *, site: str, reason: str, sex: str | None = None,
                             year_of_birth: int | None = None, consent_version: str | None = None,
                             consent_date: DateLike | None = None) -> str:
        """Register a participant; returns the trial number."""
        out = self._call("POST", "/participants", json=_clean(dict(
            site=site, reason=reason, sex=sex, year_of_birth=year_of_birth, consent_version=consent_version,
            consent_date=consent_date)))
        return str(out["trial_number"])

    def record_consent(self, tn: str, *, version: str, signed_date: DateLike, reason: str) -> None:
        self._call("POST", f"/participants/{tn}/consents",
                   json=_clean(dict(version=version, signed_date=signed_date, reason=reason)))

    def identity(self, tn: str) -> Json:
        """The identity key (administrators only)."""
        return dict(self._call("GET", f"/participants/{tn}/identity"))

    def timeline(self, tn: str) -> list[Json]:
        return list(self._call("GET", f"/participants/{tn}/timeline"))

    # --- screening, enrolment ---------------------------------------------------------------------

    def evaluate(self, record: Json, *, as_of: DateLike | None = None, protocol_version: str | None = None) -> Json:
        """Screen a record without storing anything."""
        return dict(self._call("POST", "/screening/evaluate",
                               json=_clean(dict(record=record, as_of=as_of, protocol_version=protocol_version))))

    def screen(self, tn: str, record: Json, *, as_of: DateLike, reason: str,
               protocol_version: str | None = None) -> Json:
        """Screen and store (returns id, overall verdict, protocol version)."""
        return dict(self._call("POST", f"/participants/{tn}/screenings", json=_clean(dict(
            record=record, as_of=as_of, reason=reason, protocol_version=protocol_version))))

    def rescreen(self, screening_id: int) -> Json:
        return dict(self._call("GET", f"/screenings/{int(screening_id)}/rescreen"))

    def import_screening(self, tn: str, bundle: Json, *, reason: str, as_of: DateLike | None = None,
                         protocol_version: str | None = None) -> Json:
        """Screen from an EHR FHIR Bundle; stored with the bundle's SHA-256."""
        return dict(self._call("POST", f"/participants/{tn}/screening:import", json=_clean(dict(
            bundle=bundle, reason=reason, as_of=as_of, protocol_version=protocol_version))))

    def enrol(self, tn: str, *, enrolled_date: DateLike, reason: str) -> None:
        self._call("POST", f"/participants/{tn}/enrolment", json=_clean(dict(enrolled_date=enrolled_date,
                                                                              reason=reason)))

    # --- visits -----------------------------------------------------------------------------------

    def record_visit(self, tn: str, *, kind: str, reason: str, number: int = 1, status: str = "planned",
                     planned_date: DateLike | None = None, visit_date: DateLike | None = None,
                     activity_mbq: float | None = None, notes: str | None = None) -> Json:
        return dict(self._call("POST", f"/participants/{tn}/visits", json=_clean(dict(
            kind=kind, reason=reason, number=number, status=status, planned_date=planned_date,
            visit_date=visit_date, activity_mbq=activity_mbq, notes=notes))))

    def record_iah_cycle(self, tn: str, *, visit_date: DateLike, activity_mbq: float, artery: str,
                         catheter_position: str, reason: str, notes: str | None = None) -> Json:
        return dict(self._call("POST", f"/participants/{tn}/iah-cycle", json=_clean(dict(
            visit_date=visit_date, activity_mbq=activity_mbq, artery=artery, catheter_position=catheter_position,
            reason=reason, notes=notes))))

    def visits(self, tn: str) -> list[Json]:
        return list(self.participant(tn)["visits"])

    # --- labs -------------------------------------------------------------------------------------

    def add_lab(self, tn: str, *, value: float, unit: str, collected_date: DateLike, reason: str,
                analyte: str | None = None, loinc: str | None = None, lln: float | None = None,
                uln: float | None = None) -> Json:
        """Record one lab value (converted and CTCAE-graded by the registry)."""
        return dict(self._call("POST", f"/participants/{tn}/labs", json=_clean(dict(
            analyte=analyte, loinc=loinc, value=value, unit=unit, collected_date=collected_date, reason=reason,
            lln=lln, uln=uln))))

    def import_labs(self, tn: str, content: str | Json, *, reason: str,
                    format: Literal["fhir", "ndjson", "csv"] | None = None) -> Json:
        """Import a lab file (CSV/NDJSON text or a FHIR Bundle); returns the import summary."""
        return dict(self._call("POST", f"/participants/{tn}/labs:import",
                               json=_clean(dict(content=content, reason=reason, format=format))))

    def labs(self, tn: str) -> list[Json]:
        return list(self.participant(tn)["labs"])

    # --- adverse events, RECIST -------------------------------------------------------------------

    def add_adverse_event(self, tn: str, *, term: str, grade: int, onset_date: DateLike, reason: str,
                          serious: bool = False, relatedness: str = "unknown",
                          resolution_date: DateLike | None = None, outcome: str | None = None) -> Json:
        return dict(self._call("POST", f"/participants/{tn}/adverse-events", json=_clean(dict(
            term=term, grade=grade, onset_date=onset_date, reason=reason, serious=serious, relatedness=relatedness,
            resolution_date=resolution_date, outcome=outcome))))

    def adverse_events(self, tn: str) -> list[Json]:
        return list(self.participant(tn)["adverse_events"])

    def add_recist(self, tn: str, *, assessment_date: DateLike, response: str, reason: str,
                   target_sum_mm: float | None = None, details: Json | None = None) -> Json:
        return dict(self._call("POST", f"/participants/{tn}/recist", json=_clean(dict(
            assessment_date=assessment_date, response=response, reason=reason, target_sum_mm=target_sum_mm,
            details=details))))

    def recist(self, tn: str) -> list[Json]:
        return list(self.participant(tn)["recist"])

    # --- analyses ---------------------------------------------------------------------------------

    def attach_imaging_analysis(self, tn: str, *, kind: str, result: Json, reason: str, **fields: Any) -> int:
        return int(self._call("POST", f"/participants/{tn}/imaging-analyses",
                              json=_clean(dict(kind=kind, result=result, reason=reason, **fields)))["id"])

    def attach_dosimetry_analysis(self, tn: str, *, kind: str, result: Json, reason: str, **fields: Any) -> int:
        return int(self._call("POST", f"/participants/{tn}/dosimetry-analyses",
                              json=_clean(dict(kind=kind, result=result, reason=reason, **fields)))["id"])

    def analyses(self, tn: str) -> Json:
        p = self.participant(tn)
        return {"imaging": p["imaging"], "dosimetry": p["dosimetry"]}

    # --- audit ------------------------------------------------------------------------------------

    def audit(self, *, table: str | None = None, limit: int = 200) -> list[Json]:
        """Newest audit rows (monitors and administrators)."""
        return list(self._call("GET", "/audit", params={"table": table, "limit": limit}))

    def participant_audit(self, tn: str) -> list[Json]:
        return list(self._call("GET", f"/participants/{tn}/audit"))

    def verify_audit(self) -> Json:
        return dict(self._call("GET", "/audit/verify"))

    # --- exports ----------------------------------------------------------------------------------

    def export_csv_zip(self, site: str | None = None) -> bytes:
        """All CSV tables you may export plus manifest.json, as zip bytes."""
        return bytes(self._call("GET", "/exports/lutarterial-csv.zip", params={"site": site}, raw=True, prefix=""))

    def export_odm(self, site: str | None = None) -> bytes:
        """CDISC ODM 1.3.2 XML with audit records."""
        return bytes(self._call("GET", "/exports/odm.xml", params={"site": site}, raw=True, prefix=""))
