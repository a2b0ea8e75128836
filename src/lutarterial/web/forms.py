"""Screening form fields generated from the published screening-record JSON Schema.

Why generated: the record format belongs to ``lutarterial.records``; building the form from
its schema keeps the form and the format in step (a new field appears without web changes).
Objects become fieldsets, scalars become inputs, arrays (measurements, cycles) are edited as
JSON. Field names are dotted paths (``liver.cirrhosis``), which ``screening.js`` folds back into
the record.
"""

from __future__ import annotations

from typing import Any

__all__ = ["record_schema", "field_groups", "record_from_form", "measurement_rows", "measurement_analytes",
           "MEASUREMENT_SHOWN", "repeat_groups", "dictionary_fields", "kept", "group_rows", "typed_record", "NOT_KEPT"]

#: Fields never written back into a page: a refused form comes back without them.
NOT_KEPT = frozenset({"password", "csrf_token"})


def kept(form: str, values: Any, message: str) -> dict[str, Any]:
    """Template context of a page rendered again after a refused write (issue 13: values kept with
    the message): ``kept.form`` names the form that was sent, ``kept.typed`` holds every field as
    typed (repeating-group rows included, secrets left out), ``kept.error`` the message.

    The page is rendered in the response to the POST itself, never after a redirect, so nothing
    typed travels in the session cookie. Templates read ``kv`` (``_kept.html``).
    """
    return {"kept": {"form": form, "error": message,
                     "typed": {k: v for k, v in dict(values).items() if isinstance(v, str) and k not in NOT_KEPT}}}


def group_rows(values: Any, prefix: str) -> list[dict[str, str]]:
    """Rows ``<prefix><i>.<column>`` of a repeating group as submitted, in row order; rows with
    nothing typed are dropped (values stripped, as strings)."""
    by: dict[int, dict[str, str]] = {}
    for k, v in dict(values).items():
        if k.startswith(prefix) and isinstance(v, str):
            idx, _, col = k[len(prefix):].partition(".")
            if idx.isdigit() and col:
                by.setdefault(int(idx), {})[col] = v.strip()
    return [by[i] for i in sorted(by) if any(by[i].values())]

#: Measurement keys edited in the table; any other key of a row is kept as it was.
MEASUREMENT_SHOWN = ("analyte", "value", "unit", "date", "reference_high")


def measurement_analytes() -> list[str]:
    schema = record_schema() or {}
    node = schema.get("$defs", {}).get("MeasurementIn", {}).get("properties", {}).get("analyte", {})
    return list(node.get("enum", []))


def measurement_rows(record: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The record's measurements as table rows: shown keys plus the rest kept as JSON."""
    import json

    rows = []
    for m in (record or {}).get("measurements") or []:
        if not isinstance(m, dict):
            continue
        extra = {k: v for k, v in m.items() if k not in MEASUREMENT_SHOWN}
        rows.append({**{k: m.get(k) for k in MEASUREMENT_SHOWN}, "extra": json.dumps(extra) if extra else ""})
    return rows


def record_schema() -> dict[str, Any] | None:
    try:
        from lutarterial.records.schema import json_schema
    except ImportError:
        return None
    return json_schema()


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        return defs.get(node["$ref"].rsplit("/", 1)[-1], {})
    return node


def _scalar(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Collapse ``anyOf: [T, null]`` to ``T``."""
    node = _resolve(node, defs)
    if "anyOf" in node:
        options = [_resolve(o, defs) for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) == 1:
            merged = {**options[0], **{k: v for k, v in node.items() if k != "anyOf"}}
            return merged
    return node


def _get(record: dict[str, Any] | None, path: list[str]) -> Any:
    cur: Any = record or {}
    for p in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


def _field(name: str, node: dict[str, Any], defs: dict[str, Any], record: dict[str, Any] | None) -> dict[str, Any]:
    n = _scalar(node, defs)
    ftype = n.get("type", "string")
    if "enum" in n:
        ftype = n.get("type", "string")
    e = _dictionary().get(name)  # issue 13: labels, help, units, required from the data dictionary
    return {"name": name, "label": e.label if e else (n.get("title") or name.rsplit(".", 1)[-1].replace("_", " ").capitalize()),
            "type": ftype if isinstance(ftype, str) else "string", "format": n.get("format"),
            "enum": n.get("enum"), "help": (e.help if e and e.help else n.get("description", "")),
            "unit": (e.unit if e and e.unit else None), "required": bool(e and e.required),
            "value": _get(record, name.split("."))}


def _dictionary() -> Any:
    from lutarterial.datamanagement.dictionary import load_data_dictionary

    return load_data_dictionary()


def field_groups(record: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Fieldsets for the screening form, filled from ``record`` where it has values."""
    schema = record_schema()
    if not schema:
        return []
    defs = schema.get("$defs", {})
    general: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []
    arrays: list[dict[str, Any]] = []
    for key, node in schema.get("properties", {}).items():
        resolved = _resolve(node, defs)
        if resolved.get("type") == "object" and "properties" in resolved:
            fields = [_field(f"{key}.{sub}", sn, defs, record) for sub, sn in resolved["properties"].items()
                      if _scalar(sn, defs).get("type") not in ("array", "object")]
            arrays.extend(_field(f"{key}.{sub}", sn, defs, record) for sub, sn in resolved["properties"].items()
                          if _scalar(sn, defs).get("type") in ("array", "object")
                          and _item_properties(sn, defs) is None)  # lists of rows: repeat_groups
            title = resolved.get("description") or resolved.get("title") or key
            groups.append({"title": f"{key.replace('_', ' ').capitalize()} — {title}" if title != key else key,
                           "fields": fields})
        elif key == "measurements":
            continue  # edited in its own table (measurement_rows)
        elif _scalar(node, defs).get("type") in ("array", "object"):
            if _item_properties(node, defs) is None:  # lists of rows are edited as repeating groups
                arrays.append(_field(key, node, defs, record))
        else:
            general.append(_field(key, node, defs, record))
    out = [{"title": "Record", "fields": general}] if general else []
    out.extend(groups)
    if arrays:
        out.append({"title": "Lists (JSON): cycles, scans, imaging reads, events", "fields": arrays})
    return out


# --- repeating groups (issue 13): rows with add/remove instead of JSON -----------------------------


def _item_properties(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any] | None:
    """The properties of the objects of an array of flat objects (None: not such an array)."""
    n = _scalar(node, defs)
    if n.get("type") != "array":
        return None
    item = _resolve(n.get("items") or {}, defs)
    props = item.get("properties")
    if item.get("type") != "object" or not isinstance(props, dict):
        return None
    if any(_scalar(v, defs).get("type") in ("array", "object") for v in props.values()):
        return None
    return props


def _label(key: str) -> str:
    words = key.replace("_", " ").strip()
    fixes = {"mbq": "(MBq)", "ssa": "SSA", "recist": "RECIST", "iv": "IV", "iah": "IAH", "ecog": "ECOG"}
    return " ".join(fixes.get(w.lower(), w) for w in words.split()).capitalize().replace("(mbq)", "(MBq)") \
        .replace("Recist", "RECIST").replace(" ssa", " SSA").replace(" iv", " IV")


def repeat_groups(record: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Lists of rows of the record (LUTATHERA cycles, post-therapy scans, inclusion imaging reads,
    cardiac events) as repeating groups: columns from the item schema, rows from ``record``.

    Field names are ``grp.<path>.<row>.<column>``; ``grpnone.<path>`` says "none (documented)".
    """
    schema = record_schema()
    if not schema:
        return []
    defs = schema.get("$defs", {})
    found: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for key, node in schema.get("properties", {}).items():
        if key == "measurements":
            continue
        props = _item_properties(node, defs)
        if props is not None:
            found.append((key, node, props))
            continue
        resolved = _resolve(node, defs)
        if resolved.get("type") == "object":
            for sub, sn in (resolved.get("properties") or {}).items():
                sp = _item_properties(sn, defs)
                if sp is not None:
                    found.append((f"{key}.{sub}", sn, sp))
    out = []
    for path, node, props in found:
        n = _scalar(node, defs)
        columns = []
        dd = _dictionary()
        for col, cn in props.items():
            c = _scalar(cn, defs)
            e = dd.get(f"{path}.{col}")
            columns.append({"key": col, "label": e.label if e else (c.get("title") or _label(col)),
                            "type": c.get("type", "string"), "enum": c.get("enum"), "format": c.get("format"),
                            "help": (e.help if e and e.help else c.get("description", "")),
                            "unit": e.unit if e else "", "required": bool(e and e.required)})
        ge = dd.get(path)
        value = _get(record, path.split("."))
        rows = [{c["key"]: r.get(c["key"]) for c in columns} for r in (value if isinstance(value, list) else [])
                if isinstance(r, dict)]
        out.append({"path": path, "title": n.get("title") or _label(path.split(".")[-1]),
                    "label": ge.label if ge else "", "row_label": ge.row_label if ge else "",
                    "help": (ge.help if ge and ge.help else n.get("description", "")), "columns": columns, "rows": rows,
                    "documented_none": isinstance(value, list) and not value})
    return out


def dictionary_fields() -> list[dict[str, Any]]:
    """Every field of the screening form (scalars, then list columns) for the data-dictionary export."""
    out: list[dict[str, Any]] = []
    for g in field_groups():
        for f in g["fields"]:
            out.append({"path": f["name"], "type": f["type"], "enum": f["enum"], "format": f["format"],
                        "section": g["title"], "form": "screening_record"})
    for g in repeat_groups():
        for c in g["columns"]:
            out.append({"path": f"{g['path']}.{c['key']}", "type": c["type"], "enum": c["enum"], "format": c["format"],
                        "section": g["label"] or g["title"], "form": f"screening_{g['path'].replace('.', '_')}"})
    return out


def _repeat_from_form(form: Any, record: dict[str, Any], strict: bool = True) -> None:
    """Fold ``grp.<path>.<i>.<col>`` rows back into the record (types from the schema)."""
    from lutarterial.errors import InvalidInputError

    keys = list(form.keys())
    for g in repeat_groups(None):
        prefix = f"grp.{g['path']}."
        marker = f"grpmark.{g['path']}"
        if marker not in keys and not any(k.startswith(prefix) for k in keys):
            continue  # the group was not on the submitted form: keep the record's value
        types = {c["key"]: c["type"] for c in g["columns"]}
        by_row: dict[int, dict[str, str]] = {}
        for k in keys:
            if not k.startswith(prefix):
                continue
            idx, _, col = k[len(prefix):].partition(".")
            if not idx.isdigit() or col not in types:
                continue
            by_row.setdefault(int(idx), {})[col] = str(form.get(k) or "").strip()
        rows = []
        for idx in sorted(by_row):
            raw = {c: v for c, v in by_row[idx].items() if v != ""}
            if not raw:
                continue
            row: dict[str, Any] = {}
            for col, v in raw.items():
                try:
                    row[col] = _coerce(types[col], v)
                except InvalidInputError as exc:
                    if strict:
                        raise InvalidInputError(f"{g['title']} row {idx + 1}, {col}: {exc}") from None
                    row[col] = v  # kept as typed, to be shown again with the message
            rows.append(row)
        parts = g["path"].split(".")
        cur = record
        for part in parts[:-1]:
            if not isinstance(cur.get(part), dict):
                cur[part] = {}
            cur = cur[part]
        if rows:
            cur[parts[-1]] = rows
        elif form.get(f"grpnone.{g['path']}"):
            cur[parts[-1]] = []
        else:
            cur.pop(parts[-1], None)


def _coerce(ftype: str, raw: str) -> Any:
    import json

    from lutarterial.errors import InvalidInputError

    if ftype in ("number", "integer"):
        try:
            return int(raw) if ftype == "integer" else float(raw)
        except ValueError:
            raise InvalidInputError(f"{raw!r} is not a number") from None
    if ftype == "boolean":
        return raw.lower() in ("true", "yes", "1", "on")
    if ftype in ("array", "object"):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"list field is not valid JSON: {exc.msg}") from None
    return raw


def record_from_form(form: Any, *, strict: bool = True) -> dict[str, Any]:
    """The submitted record: the JSON box, overlaid with the form fields (``rec.<path>``).

    The fields win, so the form works with and without JavaScript; an emptied field removes
    the value (not documented screens as ``unknown``). ``strict=False`` never refuses: a value
    that is not of its field's type stays as typed and an unreadable JSON box counts as empty —
    the record of a refused form, to show it again with the message (issue 13).
    """
    import json

    from lutarterial.errors import InvalidInputError

    raw = str(form.get("record_json") or "").strip() or "{}"
    try:
        record = json.loads(raw)
    except json.JSONDecodeError as exc:
        if strict:
            raise InvalidInputError(f"the screening record is not valid JSON: {exc.msg} (line {exc.lineno})") from None
        record = {}
    if not isinstance(record, dict):
        if strict:
            raise InvalidInputError("the screening record must be a JSON object")
        record = {}
    if any(k.startswith("meas.") for k in form.keys()):
        record["measurements"] = _measurements_from_form(form, strict)
    _repeat_from_form(form, record, strict)
    types = {f["name"]: f["type"] for g in field_groups() for f in g["fields"]}
    for key in form.keys():
        if not key.startswith("rec."):
            continue
        path = key[4:]
        value = str(form.get(key) or "").strip()
        parts = path.split(".")
        cur = record
        for part in parts[:-1]:
            if not isinstance(cur.get(part), dict):
                cur[part] = {}
            cur = cur[part]
        if value == "":
            cur.pop(parts[-1], None)
            continue
        try:
            cur[parts[-1]] = _coerce(types.get(path, "string"), value)
        except InvalidInputError:
            if strict:
                raise
            cur[parts[-1]] = value
    return record


def typed_record(form: Any) -> tuple[dict[str, Any], str]:
    """A refused screening form as typed (issue 13): the record (``record_from_form(strict=False)``)
    and the text for the JSON box — the record as JSON, or the box as typed when it is not JSON."""
    import json

    raw = str(form.get("record_json") or "")
    record = record_from_form(form, strict=False)
    try:
        json.loads(raw or "{}")
    except json.JSONDecodeError:
        return record, raw
    return record, json.dumps(record, indent=2)


def _measurements_from_form(form: Any, strict: bool = True) -> list[dict[str, Any]]:
    """Rows ``meas.<i>.<key>`` back into measurement objects (empty rows dropped)."""
    import json

    from lutarterial.errors import InvalidInputError

    by_row: dict[int, dict[str, str]] = {}
    for key in form.keys():
        if not key.startswith("meas."):
            continue
        _, idx, name = key.split(".", 2)
        by_row.setdefault(int(idx), {})[name] = str(form.get(key) or "").strip()
    out = []
    for idx in sorted(by_row):
        row = by_row[idx]
        if not row.get("analyte") and not row.get("value"):
            continue
        try:
            m: dict[str, Any] = json.loads(row["extra"]) if row.get("extra") else {}
        except json.JSONDecodeError:
            if strict:
                raise InvalidInputError(f"measurement {idx + 1}: the hidden extra fields are not JSON") from None
            m = {}
        m["analyte"] = row.get("analyte", "")
        for num in ("value", "reference_high"):
            if row.get(num):
                try:
                    m[num] = float(row[num])
                except ValueError:
                    if strict:
                        raise InvalidInputError(f"measurement {idx + 1}: {num} {row[num]!r} is not a number") from None
                    m[num] = row[num]
        for text in ("unit", "date"):
            if row.get(text):
                m[text] = row[text]
        out.append(m)
    return out
