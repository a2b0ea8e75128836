"""Protocol versions as data: load, validate and choose the version in force.

Why data and not code: the protocol is amended by ethics committees, not by programmers.
Each version is one YAML file in ``versions/`` holding every criterion's verbatim text, its
structured thresholds and windows and an ``interpretation`` note for each judgement call.
This module refuses any file that is not exactly well formed
(:class:`~lutarterial.errors.ProtocolDefinitionError` naming the file and the field), so a
typo in a threshold can never silently change who enters the trial.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from lutarterial.errors import ProtocolDefinitionError, UnitError
from lutarterial.units import ANALYTES, convert, parse_unit

__all__ = [
    "Threshold",
    "Window",
    "Criterion",
    "Protocol",
    "OPERATORS",
    "ANCHORS",
    "load_protocol_file",
    "load_protocol",
    "available_versions",
    "all_protocols",
    "version_in_force",
    "default_protocol",
    "choose_version",
    "default_reason",
]

#: Comparison operators a threshold may use (no other string is ever interpreted).
OPERATORS = ("<", "<=", ">", ">=", "==")
#: Events a window may be anchored to (besides the screening date, which is implicit).
ANCHORS = ("fourth_lutathera_cycle", "first_lutathera_cycle", "last_lutathera_cycle")
_ID = re.compile(r"^(INC|EXC)\d{2}$")
_WINDOW_KEYS = {
    "anchor",
    "strictly_after_anchor",
    "max_age_days",
    "max_age_months",
    "min_days_after_anchor",
    "max_days_after_anchor",
    "min_months_after_last_injection",
    "interpretation",
}
_CRITERION_KEYS = {"id", "kind", "title", "text", "thresholds", "windows", "params", "interpretation"}
_TOP_KEYS = {
    "protocol",
    "registry_id",
    "version",
    "effective_date",
    "title",
    "source",
    "interpretation",
    "defaults",
    "criteria",
    "schedule",  # issue 13: schedule of events, parsed by lutarterial.datamanagement.schedule
    "effective_date_known",  # issue 10: whether effective_date is a sourced fact
    "provenance",  # issue 10: {document, seen}: where the text was read, and when
    "default",  # issue 10: the version that applies unless told otherwise (exactly one)
}
_VERSIONS_PACKAGE = "lutarterial.protocol.versions"


@dataclass(frozen=True, slots=True)
class Threshold:
    """One numeric limit: ``value`` in ``unit``, or ``uln_multiple`` x the lab's ULN."""

    name: str
    operator: str
    value: float | None = None
    unit: str | None = None
    analyte: str | None = None
    uln_multiple: float | None = None

    def canonical_value(self) -> float:
        """The limit in its analyte's canonical unit (or as written when no analyte)."""
        if self.value is None:
            raise ProtocolDefinitionError(f"threshold {self.name!r} has no absolute value")
        return _canonical_threshold(self.value, self.unit, self.analyte)

    def describe(self) -> str:
        """Human form, e.g. ``>= 75000 /mm3`` or ``<= 2.5 x ULN``."""
        return _describe_threshold(self.operator, self.value, self.unit, self.uln_multiple)


@lru_cache(maxsize=512)
def _describe_threshold(operator: str, value: float | None, unit: str | None, uln_multiple: float | None) -> str:
    if uln_multiple is not None:
        return f"{operator} {uln_multiple:g} x ULN"
    shown = "" if unit in (None, "1") else f" {unit}"
    v = f"{int(value):,}" if value is not None and float(value).is_integer() else f"{value:g}"
    return f"{operator} {v}{shown}"


@lru_cache(maxsize=512)
def _canonical_threshold(value: float, unit: str | None, analyte: str | None) -> float:
    if analyte is None or unit is None:
        return value
    a = ANALYTES[analyte]
    return convert(value, unit, a.canonical_unit, molar_mass_g_per_mol=a.molar_mass_g_per_mol)


@dataclass(frozen=True, slots=True)
class Window:
    """A time window: how old data may be, and which treatment date it must follow."""

    anchor: str | None = None
    strictly_after_anchor: bool = False
    max_age_days: int | None = None
    max_age_months: int | None = None
    min_days_after_anchor: int | None = None
    max_days_after_anchor: int | None = None
    min_months_after_last_injection: int | None = None
    interpretation: str = ""


@dataclass(frozen=True, slots=True)
class Criterion:
    """One eligibility criterion of one protocol version."""

    id: str
    kind: str  # "inclusion" | "exclusion"
    title: str
    text: str
    thresholds: tuple[Threshold, ...] = ()
    windows: Mapping[str, Window] = field(default_factory=lambda: MappingProxyType({}))
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    interpretation: tuple[str, ...] = ()

    def threshold(self, name: str) -> Threshold:
        """The threshold called ``name`` (a definition error if the file lacks it)."""
        for t in self.thresholds:
            if t.name == name:
                return t
        raise ProtocolDefinitionError(f"criterion {self.id} defines no threshold named {name!r}")

    def window(self, name: str) -> Window:
        """The window called ``name`` (a definition error if the file lacks it)."""
        try:
            return self.windows[name]
        except KeyError:
            raise ProtocolDefinitionError(f"criterion {self.id} defines no window named {name!r}") from None


@dataclass(frozen=True, slots=True)
class Protocol:
    """One protocol version: its criteria in file order and the date it takes effect."""

    protocol: str
    version: str
    effective_date: _dt.date | None  # None: not known (issue 10: no invented dates)
    title: str
    source: str
    criteria: tuple[Criterion, ...]
    interpretation: tuple[str, ...] = ()
    registry_id: str = ""
    #: Schedule of events (issue 13): ``lutarterial.datamanagement.schedule.ScheduleRule`` tuple.
    schedule: tuple[Any, ...] = ()
    #: issue 10: is ``effective_date`` a sourced fact? Where was the text read, and when?
    effective_date_known: bool = False
    source_document: str = ""
    source_seen: str = ""
    default: bool = False

    def criterion(self, criterion_id: str) -> Criterion:
        for c in self.criteria:
            if c.id == criterion_id:
                return c
        raise ProtocolDefinitionError(f"protocol version {self.version} has no criterion {criterion_id}")

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.criteria)


def _fail(where: str, message: str) -> ProtocolDefinitionError:
    return ProtocolDefinitionError(f"{where}: {message}")


def _notes(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(value)
    raise _fail(where, "interpretation must be a string or a list of non-empty strings")


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(where, f"expected a finite number, got {value!r}")
    return float(value)


def _threshold(raw: Any, where: str) -> Threshold:
    if not isinstance(raw, dict):
        raise _fail(where, "a threshold must be a mapping")
    unknown = set(raw) - {"name", "operator", "value", "unit", "analyte", "uln_multiple"}
    if unknown:
        raise _fail(where, f"unknown threshold keys {sorted(unknown)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise _fail(where, "threshold needs a 'name'")
    where = f"{where} threshold {name!r}"
    op = raw.get("operator")
    if op not in OPERATORS:
        raise _fail(where, f"operator {op!r} is not one of {OPERATORS}")
    analyte = raw.get("analyte")
    if analyte is not None and analyte not in ANALYTES:
        raise _fail(where, f"unknown analyte {analyte!r}; known: {sorted(ANALYTES)}")
    uln = raw.get("uln_multiple")
    value = raw.get("value")
    unit = raw.get("unit")
    if (uln is None) == (value is None):
        raise _fail(where, "give exactly one of 'value' (with 'unit') or 'uln_multiple'")
    if uln is not None:
        uln = _number(uln, where)
        if uln <= 0:
            raise _fail(where, "uln_multiple must be positive")
        if analyte is None:
            raise _fail(where, "a x ULN threshold needs an 'analyte'")
        if unit is not None:
            raise _fail(where, "a x ULN threshold takes its unit from the lab result; drop 'unit'")
        return Threshold(name=name, operator=op, analyte=analyte, uln_multiple=uln)
    value = _number(value, where)
    if not isinstance(unit, str) or not unit:
        raise _fail(where, "an absolute threshold needs a 'unit' (use \"1\" for a pure number)")
    try:
        parse_unit(unit)
        if analyte is not None:
            a = ANALYTES[analyte]
            convert(value, unit, a.canonical_unit, molar_mass_g_per_mol=a.molar_mass_g_per_mol)
    except UnitError as exc:
        raise _fail(where, f"unit {unit!r} unusable: {exc}") from None
    return Threshold(name=name, operator=op, value=value, unit=unit, analyte=analyte)


def _window(raw: Any, where: str, defaults: Mapping[str, Window]) -> Window:
    if isinstance(raw, str):
        if raw == "default" and "lab_window" in defaults:
            return defaults["lab_window"]
        raise _fail(where, f"window reference {raw!r} unknown (only 'default' is allowed)")
    if not isinstance(raw, dict):
        raise _fail(where, "a window must be a mapping or 'default'")
    unknown = set(raw) - _WINDOW_KEYS
    if unknown:
        raise _fail(where, f"unknown window keys {sorted(unknown)}")
    anchor = raw.get("anchor")
    if anchor is not None and anchor not in ANCHORS:
        raise _fail(where, f"anchor {anchor!r} is not one of {ANCHORS}")
    ints: dict[str, int | None] = {}
    for key in ("max_age_days", "max_age_months", "min_days_after_anchor", "max_days_after_anchor",
                "min_months_after_last_injection"):
        v = raw.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise _fail(where, f"{key} must be a non-negative integer, got {v!r}")
        ints[key] = v
    if (ints["min_days_after_anchor"] is not None or ints["max_days_after_anchor"] is not None) and anchor is None:
        raise _fail(where, "days after anchor need an 'anchor'")
    sa = raw.get("strictly_after_anchor", False)
    if not isinstance(sa, bool):
        raise _fail(where, "strictly_after_anchor must be true or false")
    note = raw.get("interpretation", "")
    if not isinstance(note, str):
        raise _fail(where, "window interpretation must be a string")
    return Window(anchor=anchor, strictly_after_anchor=sa, interpretation=note, **ints)


def _criterion(raw: Any, where: str, defaults: Mapping[str, Window]) -> Criterion:
    if not isinstance(raw, dict):
        raise _fail(where, "each criterion must be a mapping")
    cid = raw.get("id")
    if not isinstance(cid, str) or not _ID.match(cid):
        raise _fail(where, f"criterion id {cid!r} must look like INC01 or EXC01")
    where = f"{where} {cid}"
    unknown = set(raw) - _CRITERION_KEYS
    if unknown:
        raise _fail(where, f"unknown keys {sorted(unknown)}")
    kind = raw.get("kind")
    expected = "inclusion" if cid.startswith("INC") else "exclusion"
    if kind != expected:
        raise _fail(where, f"kind must be {expected!r} for this id, got {kind!r}")
    for key in ("title", "text"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise _fail(where, f"'{key}' (non-empty text) is required")
    thresholds = raw.get("thresholds") or []
    if not isinstance(thresholds, list):
        raise _fail(where, "thresholds must be a list")
    parsed = tuple(_threshold(t, where, ) for t in thresholds)
    names = [t.name for t in parsed]
    if len(set(names)) != len(names):
        raise _fail(where, "threshold names must be unique")
    windows = raw.get("windows") or {}
    if not isinstance(windows, dict):
        raise _fail(where, "windows must be a mapping")
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise _fail(where, "params must be a mapping")
    return Criterion(
        id=cid,
        kind=kind,
        title=raw["title"].strip(),
        text=raw["text"].strip(),
        thresholds=parsed,
        windows=MappingProxyType({k: _window(v, f"{where} window {k!r}", defaults) for k, v in windows.items()}),
        params=MappingProxyType(dict(params)),
        interpretation=_notes(raw.get("interpretation"), where),
    )


def parse_protocol(data: Any, where: str) -> Protocol:
    """Validate the mapping read from one protocol file and build a :class:`Protocol`."""
    if not isinstance(data, dict):
        raise _fail(where, "the file must hold a mapping")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise _fail(where, f"unknown top-level keys {sorted(unknown)}")
    version = data.get("version")
    if not isinstance(version, str) or not version.strip():
        raise _fail(where, "'version' must be a quoted string, e.g. \"1\"")
    if "effective_date" not in data:
        raise _fail(where, "effective_date is required: a date (YYYY-MM-DD) or null when not known")
    eff = data.get("effective_date")
    if isinstance(eff, str):
        try:
            eff = _dt.date.fromisoformat(eff)
        except ValueError:
            raise _fail(where, f"effective_date {eff!r} is not an ISO date") from None
    if eff is not None and (not isinstance(eff, _dt.date) or isinstance(eff, _dt.datetime)):
        raise _fail(where, "effective_date must be a date (YYYY-MM-DD) or null")
    known = data.get("effective_date_known")
    if not isinstance(known, bool):
        raise _fail(where, "effective_date_known (true/false) is required: is the effective date a sourced fact?")
    if known and eff is None:
        raise _fail(where, "effective_date_known is true but effective_date is null")
    prov = data.get("provenance")
    if not isinstance(prov, dict) or not str(prov.get("document", "")).strip() or \
            not str(prov.get("seen", "")).strip():
        raise _fail(where, "provenance {document, seen} is required: the source document and when it was read")
    if set(prov) - {"document", "seen"}:
        raise _fail(where, f"provenance: unknown keys {sorted(set(prov) - {'document', 'seen'})}")
    default = data.get("default", False)
    if not isinstance(default, bool):
        raise _fail(where, "default must be true or false")
    raw_defaults = data.get("defaults") or {}
    if not isinstance(raw_defaults, dict):
        raise _fail(where, "defaults must be a mapping")
    defaults = {k: _window(v, f"{where} defaults {k!r}", {}) for k, v in raw_defaults.items()}
    criteria_raw = data.get("criteria")
    if not isinstance(criteria_raw, list) or not criteria_raw:
        raise _fail(where, "'criteria' must be a non-empty list")
    criteria = tuple(_criterion(c, where, defaults) for c in criteria_raw)
    ids = [c.id for c in criteria]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise _fail(where, f"duplicate criterion ids {dupes}")
    return Protocol(
        protocol=str(data.get("protocol", "")),
        version=version.strip(),
        effective_date=eff,
        title=str(data.get("title", "")),
        source=str(data.get("source", "")),
        criteria=criteria,
        interpretation=_notes(data.get("interpretation"), where),
        registry_id=str(data.get("registry_id", "")),
        schedule=_schedule(data.get("schedule"), where),
        effective_date_known=known,
        source_document=str(prov["document"]).strip(),
        source_seen=str(prov["seen"]).strip(),
        default=default,
    )


def _schedule(raw: Any, where: str) -> tuple[Any, ...]:
    from lutarterial.datamanagement.schedule import parse_schedule

    return parse_schedule(raw, f"{where} schedule")


def load_protocol_file(path: str | Path) -> Protocol:
    """Load and validate one protocol YAML file (any location; used for tests and drafts)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProtocolDefinitionError(f"cannot read protocol file {p}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProtocolDefinitionError(f"{p.name}: not valid YAML ({exc})") from None
    return parse_protocol(data, p.name)


@lru_cache(maxsize=1)
def all_protocols() -> tuple[Protocol, ...]:
    """Every packaged protocol version, sorted by effective date (validated once)."""
    root = resources.files(_VERSIONS_PACKAGE)
    loaded: list[Protocol] = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".yaml", ".yml")):
            try:
                data = yaml.safe_load(entry.read_text(encoding="utf-8"))
            except yaml.YAMLError as exc:
                raise ProtocolDefinitionError(f"{entry.name}: not valid YAML ({exc})") from None
            loaded.append(parse_protocol(data, entry.name))
    versions = [p.version for p in loaded]
    if len(set(versions)) != len(versions):
        raise ProtocolDefinitionError(f"two packaged protocol files declare the same version: {versions}")
    defaults = [p.version for p in loaded if p.default]
    if len(defaults) != 1:
        raise ProtocolDefinitionError(f"exactly one packaged protocol version must be the default; found {defaults}")
    return tuple(sorted(loaded, key=_version_key))


def _version_key(p: Protocol) -> tuple[Any, ...]:
    v = p.version
    return (0, int(v), v) if v.isdigit() else (1, 0, v)


def available_versions() -> tuple[str, ...]:
    """Packaged protocol versions, in version order."""
    return tuple(p.version for p in all_protocols())


def default_protocol() -> Protocol:
    """The packaged version marked ``default: true`` (version 1: the text in force per the public summary)."""
    return next(p for p in all_protocols() if p.default)


def load_protocol(version: str) -> Protocol:
    """The packaged protocol ``version`` (a :class:`ProtocolDefinitionError` listing the known ones)."""
    for p in all_protocols():
        if p.version == str(version):
            return p
    raise ProtocolDefinitionError(
        f"unknown protocol version {version!r}; available: {', '.join(available_versions())}"
    )


def choose_version(
    on: _dt.date, *, explicit: str | None = None, site_effective_dates: Mapping[str, _dt.date] | None = None,
    site: str | None = None,
) -> tuple[Protocol, str]:
    """The protocol version for a screening on ``on``, and why (issue 10: no invented dates).

    1. ``explicit`` (``--protocol-version``) wins;
    2. else the version whose site-configured effective date (``site_effective_dates``: version ->
       date, from the registry's audited site configuration) is the latest not after ``on``;
    3. else the packaged default version. Effective dates written in the version files are
       information, never used to switch versions by themselves.
    """
    if explicit is not None:
        return load_protocol(explicit), f"version {explicit} requested explicitly (--protocol-version)"
    where = f" at site {site}" if site else ""
    chosen: tuple[_dt.date, Protocol] | None = None
    for version, eff in (site_effective_dates or {}).items():
        p = load_protocol(version)
        if eff <= on and (chosen is None or eff >= chosen[0]):
            chosen = (eff, p)
    if chosen is not None:
        return chosen[1], (f"version {chosen[1].version} in force{where} since {chosen[0].isoformat()} "
                           "(site configuration)")
    d = default_protocol()
    return d, f"default version {d.version}: {default_reason(d)}"


def default_reason(p: Protocol) -> str:
    return (f"the text in force per {p.source_document} (seen {p.source_seen}); another version applies only "
            "when --protocol-version says so or a site configuration sets its effective date")


def version_in_force(on: _dt.date, site_effective_dates: Mapping[str, _dt.date] | None = None) -> Protocol:
    """The protocol version in force on ``on`` (see :func:`choose_version`): the site's configured
    version when one has taken effect by ``on``, else the packaged default."""
    return choose_version(on, site_effective_dates=site_effective_dates)[0]
