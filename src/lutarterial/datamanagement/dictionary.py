"""The data dictionary of the screening record (``data_dictionary.yaml``): labels, help, units,
required flags per record path, and its REDCap-style CSV export (pure; the schema is passed in)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from lutarterial.errors import ProtocolDefinitionError

__all__ = ["DictEntry", "load_data_dictionary", "redcap_csv", "REDCAP_COLUMNS", "schema_fields"]

_KEYS = {"label", "help", "unit", "required", "row_label"}


@dataclass(frozen=True, slots=True)
class DictEntry:
    path: str
    label: str
    help: str = ""
    unit: str = ""
    required: bool = False
    row_label: str = ""


@lru_cache(maxsize=1)
def load_data_dictionary() -> Mapping[str, DictEntry]:
    """Entries by record path (validated: label required, no unknown keys)."""
    text = resources.files("lutarterial.datamanagement").joinpath("data_dictionary.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not isinstance(data.get("fields"), dict):
        raise ProtocolDefinitionError("data_dictionary.yaml: a mapping with 'fields' is required")
    out: dict[str, DictEntry] = {}
    for path, raw in data["fields"].items():
        if not isinstance(raw, dict) or not raw.get("label"):
            raise ProtocolDefinitionError(f"data_dictionary.yaml: {path}: a label is required")
        unknown = set(raw) - _KEYS
        if unknown:
            raise ProtocolDefinitionError(f"data_dictionary.yaml: {path}: unknown keys {sorted(unknown)}")
        out[str(path)] = DictEntry(str(path), str(raw["label"]), str(raw.get("help") or ""), str(raw.get("unit") or ""),
                                   bool(raw.get("required", False)), str(raw.get("row_label") or ""))
    return out


#: Columns of a REDCap data dictionary (instrument designer CSV), in REDCap's order.
REDCAP_COLUMNS = ("Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
                  "Choices, Calculations, OR Slider Labels", "Field Note", "Text Validation Type OR Show Slider Number",
                  "Text Validation Min", "Text Validation Max", "Identifier?",
                  "Branching Logic (Show field only if...)", "Required Field?", "Custom Alignment",
                  "Question Number (surveys only)", "Matrix Group Name", "Matrix Ranking?", "Field Annotation")


def _variable(path: str) -> str:
    return path.replace(".", "_").lower()[:100]


def redcap_csv(fields: list[dict[str, Any]], *, form: str = "screening_record") -> str:
    """REDCap-style data dictionary CSV of ``fields`` (dicts with ``path``, ``type``, ``enum``,
    ``format``, ``section``; labels, notes, units and required flags from the dictionary).
    Repeating lists are one instrument each (``form``_``list``), as REDCap repeating instruments."""
    dd = load_data_dictionary()
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(REDCAP_COLUMNS)
    seen_section: set[str] = set()
    for f in fields:
        e = dd.get(f["path"])
        label = e.label if e else f["path"]
        note = "; ".join(x for x in ((f"unit: {e.unit}" if e and e.unit else ""), (e.help if e else "")) if x)
        ftype, choices, validation = "text", "", ""
        if f.get("enum"):
            ftype = "dropdown"
            choices = " | ".join(f"{i + 1}, {v}" for i, v in enumerate(f["enum"]))
        elif f["type"] == "boolean":
            ftype = "yesno"
        elif f["type"] == "integer":
            validation = "integer"
        elif f["type"] == "number":
            validation = "number"
        elif f.get("format") == "date" or f["path"].endswith("date"):
            validation = "date_ymd"
        section = f.get("section", "")
        header = section if section and section not in seen_section else ""
        seen_section.add(section)
        w.writerow([_variable(f["path"]), f.get("form") or form, header, ftype, label, choices, note, validation, "", "",
                    "y" if f["path"] in ("patient.birth_date",) else "", "", "y" if e and e.required else "", "", "",
                    "", "", f"@lutarterial-path={f['path']}"])
    return buf.getvalue()


def _resolve(node: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    if "$ref" in node:
        return defs.get(str(node["$ref"]).rsplit("/", 1)[-1], {})
    if "anyOf" in node:
        options = [_resolve(o, defs) for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) == 1:
            return {**options[0], **{k: v for k, v in node.items() if k != "anyOf"}}
    return node


def schema_fields(schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Scalar fields of a JSON Schema (the screening record's), one level of objects deep, and the
    columns of its lists of flat objects (``group`` = the list's path), in schema order."""
    defs = schema.get("$defs", {})
    out: list[dict[str, Any]] = []

    def add(path: str, node: Mapping[str, Any], group: str | None) -> None:
        n = _resolve(node, defs)
        t = n.get("type", "string")
        if t == "array":
            item = _resolve(n.get("items") or {}, defs)
            for col, cn in (item.get("properties") or {}).items():
                c = _resolve(cn, defs)
                if c.get("type") not in ("array", "object"):
                    out.append({"path": f"{path}.{col}", "type": c.get("type", "string"), "enum": c.get("enum"),
                                "format": c.get("format"), "group": path})
            return
        if t == "object":
            return
        out.append({"path": path, "type": t if isinstance(t, str) else "string", "enum": n.get("enum"),
                    "format": n.get("format"), "group": group})

    for key, node in (schema.get("properties") or {}).items():
        n = _resolve(node, defs)
        if n.get("type") == "object" and "properties" in n:
            for sub, sn in n["properties"].items():
                add(f"{key}.{sub}", sn, None)
        else:
            add(key, node, None)
    return out
