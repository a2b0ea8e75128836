"""Edit checks as data and the one evaluator that runs them on a casebook.

A *casebook* is a plain dict the registry builds for one participant::

    {"participant": {"id", "trial_number", "sex", "year_of_birth", "site_aliases": [...]},
     "consent": {"id", "signed_date"} | None,            # the latest consent
     "screening": {"id", "as_of", "record": {...}} | None, # the latest screening
     "visits": [{"id", "kind", "number", "status", "visit_date", "activity_mbq"}, ...],
     "labs": [{"id", "analyte", "value", "unit", "lln", "uln"}, ...],
     "adverse_events": [{"id", "term", "relatedness"}, ...],
     "imaging_analyses": [{"id", "study_dates": {"pet_after_iv": "2024-06-10", ...}}, ...]}

:func:`evaluate_checks` returns one :class:`Finding` per discrepancy, naming the table, row and
field the query belongs on; a missing value makes a ``compare`` check silent (missing data is
the ``required`` checks' business), so one gap never produces two queries.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from lutarterial.errors import ProtocolDefinitionError

__all__ = ["EditCheck", "Finding", "load_edit_checks", "parse_edit_checks", "evaluate_checks", "PlausibleFn",
           "default_plausible", "check_inputs"]

#: ``is_plausible(kind, value, unit) -> bool | None`` (None: cannot tell, e.g. unknown kind).
PlausibleFn = Callable[[str, float, str], "bool | None"]

_TYPES = ("compare", "required", "range", "plausible", "dicom_dates")
_TABLES = ("participant", "visits", "labs", "adverse_events")


@dataclass(frozen=True, slots=True)
class EditCheck:
    """One check as read from the rulebook (``spec`` keeps the type-specific keys)."""

    id: str
    type: str
    title: str
    message: str
    spec: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Finding:
    """A discrepancy: where the query goes (table, row, field) and what it says."""

    check_id: str
    table: str
    row_id: int | None
    field: str | None
    message: str

    @property
    def key(self) -> str:
        """Deduplication key: one open query per check and target."""
        return f"{self.check_id}:{self.table}:{self.row_id}:{self.field or ''}"


def parse_edit_checks(data: Any, where: str = "edit checks") -> tuple[EditCheck, ...]:
    """Validate the rulebook mapping (unknown types, duplicate ids and missing keys refused)."""
    if not isinstance(data, dict) or not isinstance(data.get("checks"), list):
        raise ProtocolDefinitionError(f"{where}: must be a mapping with a 'checks' list")
    out: list[EditCheck] = []
    for i, raw in enumerate(data["checks"]):
        w = f"{where} check {i + 1}"
        if not isinstance(raw, dict):
            raise ProtocolDefinitionError(f"{w}: must be a mapping")
        cid, typ = raw.get("id"), raw.get("type")
        if not isinstance(cid, str) or not cid:
            raise ProtocolDefinitionError(f"{w}: 'id' is required")
        if typ not in _TYPES:
            raise ProtocolDefinitionError(f"{w} ({cid}): type {typ!r}; valid: {', '.join(_TYPES)}")
        if any(c.id == cid for c in out):
            raise ProtocolDefinitionError(f"{w}: duplicate id {cid!r}")
        if not isinstance(raw.get("message"), str):
            raise ProtocolDefinitionError(f"{w} ({cid}): 'message' is required")
        spec = {k: v for k, v in raw.items() if k not in ("id", "type", "title", "message")}
        need = {"compare": ("left", "right", "target"), "required": ("table", "field"),
                "range": ("table", "field"), "plausible": ("table", "kind_field", "value_field", "unit_field"),
                "dicom_dates": ()}[typ]
        missing = [k for k in need if k not in spec]
        if missing:
            raise ProtocolDefinitionError(f"{w} ({cid}): missing {missing}")
        if "table" in spec and spec["table"] not in _TABLES:
            raise ProtocolDefinitionError(f"{w} ({cid}): table {spec['table']!r}; valid: {', '.join(_TABLES)}")
        out.append(EditCheck(cid, typ, str(raw.get("title") or cid), raw["message"], spec))
    return tuple(out)


@lru_cache(maxsize=1)
def load_edit_checks() -> tuple[EditCheck, ...]:
    """The packaged rulebook ``edit_checks.yaml`` (validated once)."""
    text = resources.files("lutarterial.datamanagement").joinpath("edit_checks.yaml").read_text(encoding="utf-8")
    return parse_edit_checks(yaml.safe_load(text), "edit_checks.yaml")


def check_inputs(check: EditCheck) -> frozenset[str]:
    """The casebook parts (top-level keys) a check reads: what must change for its findings to change.

    ``compare``: the parts its ``left``, ``right`` and target ``row`` paths start in; ``required``,
    ``range`` and ``plausible``: their table; ``dicom_dates``: visits and imaging analyses.
    """
    s = check.spec
    if check.type == "compare":
        paths = [s["left"], s["right"], (s.get("target") or {}).get("row") or ""]
        return frozenset(str(x).split(".")[0] for x in paths if x)
    if check.type == "dicom_dates":
        return frozenset({"visits", "imaging_analyses"})
    return frozenset({str(s["table"])})


# --- evaluation --------------------------------------------------------------------------------


def _get(obj: Any, path: str) -> Any:
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _text(v: Any) -> str:
    s = unicodedata.normalize("NFKD", str(v)).encode("ascii", "ignore").decode()
    return " ".join(s.lower().split())


def _norm(kind: str | None, v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return [_norm(kind, x) for x in v]
    if kind == "sex":
        s = _text(v)
        return {"f": "F", "female": "F", "m": "M", "male": "M"}.get(s, s.upper())
    if kind == "year":
        if isinstance(v, int):
            return v
        try:
            return int(str(v)[:4])
        except ValueError:
            return str(v)
    if kind == "date":
        return v.isoformat() if isinstance(v, dt.date) else str(v)[:10]
    if kind == "text":
        return _text(v)
    return v


def _fmt(template: str, values: Mapping[str, Any]) -> str:
    class _Safe(dict):  # type: ignore[type-arg]
        def __missing__(self, key: str) -> str:
            return "?"

    def show(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, (list, tuple)):
            return "/".join(str(x) for x in v)
        return v

    return template.format_map(_Safe({k: show(v) for k, v in values.items()}))


def _rows(casebook: Mapping[str, Any], table: str) -> list[Mapping[str, Any]]:
    if table == "participant":
        p = casebook.get("participant")
        return [p] if isinstance(p, Mapping) else []
    return [r for r in casebook.get(table) or [] if isinstance(r, Mapping)]


_TABLE_NAMES = {"participant": "participants", "visits": "visits", "labs": "lab_results",
                "adverse_events": "adverse_events"}


def _matches(row: Mapping[str, Any], where: Mapping[str, Any] | None) -> bool:
    return all(row.get(k) == v for k, v in (where or {}).items())


def _compare(c: EditCheck, cb: Mapping[str, Any]) -> list[Finding]:
    s = c.spec
    left, right = _get(cb, s["left"]), _get(cb, s["right"])
    if _blank(left) or _blank(right):
        return []
    nl, nr = _norm(s.get("normalise"), left), _norm(s.get("normalise"), right)
    if (nr in nl) if isinstance(nl, list) else (nl == nr):
        return []
    t = s["target"]
    row = _get(cb, t["row"])
    return [Finding(c.id, t["table"], int(row) if row is not None else None, t.get("field"),
                    _fmt(c.message, {"left": left, "right": right}))]


def _required(c: EditCheck, cb: Mapping[str, Any]) -> list[Finding]:
    s = c.spec
    fields = s["field"] if isinstance(s["field"], list) else [s["field"]]
    not_in = set(s.get("not_in") or [])
    out = []
    for row in _rows(cb, s["table"]):
        if not _matches(row, s.get("where")):
            continue
        values = [row.get(f) for f in fields]
        if all(_blank(v) or v in not_in for v in values):
            out.append(Finding(c.id, _TABLE_NAMES[s["table"]], row.get("id"), fields[0],
                               _fmt(c.message, {**row, "value": values[0]})))
    return out


def _range(c: EditCheck, cb: Mapping[str, Any]) -> list[Finding]:
    s = c.spec
    out = []
    for row in _rows(cb, s["table"]):
        v = row.get(s["field"])
        if v is None or not _matches(row, s.get("where")):
            continue
        if ("min" in s and v < s["min"]) or ("max" in s and v > s["max"]):
            out.append(Finding(c.id, _TABLE_NAMES[s["table"]], row.get("id"), s["field"],
                               _fmt(c.message, {**row, "value": v})))
    return out


def _plausible(c: EditCheck, cb: Mapping[str, Any], plausible: PlausibleFn | None) -> list[Finding]:
    if plausible is None:
        return []
    s = c.spec
    out = []
    for row in _rows(cb, s["table"]):
        kind, value, unit = row.get(s["kind_field"]), row.get(s["value_field"]), row.get(s["unit_field"])
        if kind is None or value is None or unit is None:
            continue
        if plausible(str(kind), float(value), str(unit)) is False:
            out.append(Finding(c.id, _TABLE_NAMES[s["table"]], row.get("id"), s["value_field"],
                               _fmt(c.message, dict(row))))
    return out


def _dicom_dates(c: EditCheck, cb: Mapping[str, Any]) -> list[Finding]:
    visits = {v.get("kind"): v for v in _rows(cb, "visits") if v.get("visit_date") and v.get("number", 1) == 1}
    out = []
    for a in cb.get("imaging_analyses") or []:
        for kind, study_date in sorted((a.get("study_dates") or {}).items()):
            v = visits.get(kind)
            if v is None or _blank(study_date):
                continue
            if _norm("date", v["visit_date"]) != _norm("date", study_date):
                out.append(Finding(c.id, "visits", v.get("id"), "visit_date",
                                   _fmt(c.message, {"kind": kind, "visit_date": _norm("date", v["visit_date"]),
                                                    "study_date": _norm("date", study_date)})))
    return out


def evaluate_checks(checks: Sequence[EditCheck], casebook: Mapping[str, Any], *,
                    plausible: PlausibleFn | None = None) -> list[Finding]:
    """Run every check on ``casebook``; findings in rulebook order, deduplicated by key."""
    found: dict[str, Finding] = {}
    for c in checks:
        if c.type == "compare":
            items = _compare(c, casebook)
        elif c.type == "required":
            items = _required(c, casebook)
        elif c.type == "range":
            items = _range(c, casebook)
        elif c.type == "plausible":
            items = _plausible(c, casebook, plausible)
        else:
            items = _dicom_dates(c, casebook)
        for f in items:
            found.setdefault(f.key, f)
    return list(found.values())


def default_plausible() -> PlausibleFn | None:
    """Adapter to ``lutarterial.plausibility.is_plausible(kind, value, unit) -> bool`` (issue 9b).

    None while that layer is not installed (the ``plausible`` checks are then silent); an error
    it raises for a kind or unit it does not know means "cannot tell", not "implausible".
    """
    try:
        from lutarterial import plausibility  # type: ignore[attr-defined]
    except ImportError:
        return None
    fn = getattr(plausibility, "is_plausible", None)
    limits = getattr(plausibility, "limits_for", None)
    if fn is None:
        return None

    def call(kind: str, value: float, unit: str) -> bool | None:
        try:
            if limits is not None:
                limits(kind)  # a kind the layer has no limits for: cannot tell (KeyError)
            return bool(fn(kind, value, unit))
        except (ValueError, KeyError, LookupError):  # LutarterialError subclasses are ValueError/LookupError
            return None

    return call
