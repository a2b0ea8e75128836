"""``lutarterial screen`` / ``protocols`` / ``screening-schema`` end to end (in-process)."""

from __future__ import annotations

import csv
import json

import pytest

from lutarterial.cli.main import run
from lutarterial.records import make_records


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        run(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_single_record_json(tmp_path, record, capsys):
    f = tmp_path / "r.json"
    f.write_text(json.dumps(record), encoding="utf-8")
    code, out, _ = _run(["screen", str(f), "--json"], capsys)
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 1
    d = json.loads(lines[0])
    assert d["verdict"] == "eligible" and d["as_of"] == "2024-06-03" and d["protocol_version"] == "1"  # default
    assert [c["id"] for c in d["criteria"]][:2] == ["INC01", "INC02"]


def test_protocol_version_and_as_of_options(tmp_path, record, capsys):
    f = tmp_path / "r.json"
    f.write_text(json.dumps(record), encoding="utf-8")
    code, out, _ = _run(["screen", str(f), "--json", "--protocol-version", "1", "--as-of", "2024-06-10"], capsys)
    d = json.loads(out)
    assert code == 0 and d["protocol_version"] == "1" and d["as_of"] == "2024-06-10"


def test_single_record_table(tmp_path, record, capsys):
    record["administrative"]["social_security"] = None
    f = tmp_path / "r.json"
    f.write_text(json.dumps(record), encoding="utf-8")
    code, out, _ = _run(["screen", str(f)], capsys)
    assert code == 0 and "incomplete" in out and "INC11" in out and "missing" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--as-of", "03/06/2024"], "YYYY-MM-DD"), (["--protocol-version", "7"], "available"),
     (["--protocol-version", "9"], "unknown protocol version")],
)
def test_user_errors_exit_2(tmp_path, record, capsys, argv, message):
    f = tmp_path / "r.json"
    f.write_text(json.dumps(record), encoding="utf-8")
    code, _, err = _run(["screen", str(f), *argv], capsys)
    assert code == 2 and message in err and "Traceback" not in err


def test_record_without_date_needs_as_of(tmp_path, record, capsys):
    record.pop("screening_date")
    f = tmp_path / "r.json"
    f.write_text(json.dumps(record), encoding="utf-8")
    code, _, err = _run(["screen", str(f)], capsys)
    assert code == 2 and "--as-of" in err


def test_cohort_writes_log_and_consort_summary(tmp_path, capsys):
    recs = make_records(40, seed=11)
    cohort = tmp_path / "cohort.ndjson"
    cohort.write_text("".join(json.dumps(r) + "\n" for r in recs) + '{"record_id": "bad", "x": 1}\n', encoding="utf-8")
    out_dir = tmp_path / "out"
    code, out, err = _run(["screen", str(cohort), "--json", "--out", str(out_dir)], capsys)
    assert code == 1 and "could not be read" in err  # one unreadable record is reported, not dropped
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert len(lines) == 40
    rows = list(csv.DictReader((out_dir / "screening-log.csv").open(encoding="utf-8")))
    assert len(rows) == 41 and rows[-1]["verdict"] == "unreadable" and "x" in rows[-1]["reasons"]
    summary = json.loads((out_dir / "screening-summary.json").read_text(encoding="utf-8"))
    assert summary["assessed"] == 40 and summary["unreadable"] == 1
    assert summary["eligible"] + summary["ineligible"] + summary["incomplete"] == 40
    failed = sum(1 for line in lines for c in line["criteria"] if c["id"] == "INC07" and c["status"] == "fail")
    assert summary["failed_by_criterion"].get("INC07", 0) == failed


def test_cohort_directory_with_two_jobs_matches_one_job(tmp_path, capsys):
    d = tmp_path / "recs"
    d.mkdir()
    for r in make_records(12, seed=4):
        (d / f"{r['record_id']}.json").write_text(json.dumps(r), encoding="utf-8")
    code1, out1, _ = _run(["screen", str(d), "--json", "--out", str(tmp_path / "a")], capsys)
    code2, out2, _ = _run(["screen", str(d), "--json", "--jobs", "2", "--out", str(tmp_path / "b")], capsys)
    assert code1 == code2 == 0 and out1 == out2 and len(out1.splitlines()) == 12


def test_cohort_table_output(tmp_path, capsys):
    cohort = tmp_path / "c.ndjson"
    cohort.write_text("".join(json.dumps(r) + "\n" for r in make_records(10, seed=2)), encoding="utf-8")
    code, out, _ = _run(["screen", str(cohort), "--out", str(tmp_path)], capsys)
    assert code == 0 and "CONSORT" in out and "assessed" in out


def test_protocols_and_schema_commands(capsys):
    code, out, _ = _run(["protocols", "--json"], capsys)
    rows = json.loads(out)
    assert code == 0 and [r["version"] for r in rows] == ["1", "2"] and rows[0]["criteria"] == 23
    # issue 10: which version is the default and why; no invented effective dates
    assert [r["default"] for r in rows] == [True, False]
    assert rows[0]["applies"].startswith("by default") and "--protocol-version 2" in rows[1]["applies"]
    assert all(r["effective_date"] is None and r["effective_date_known"] is False and r["seen"] for r in rows)
    code, out, _ = _run(["protocols"], capsys)
    assert code == 0 and "not known" in out and "by default" in out
    code, out, _ = _run(["screening-schema"], capsys)
    assert code == 0 and json.loads(out)["title"] == "ScreeningRecord"


def test_fhir_bundle_file_is_recognised(tmp_path, capsys):
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "f1", "birthDate": "1950-02-01", "gender": "male"}},
        {"resource": {"resourceType": "Observation", "id": "plt", "status": "final",
                      "code": {"coding": [{"system": "http://loinc.org", "code": "777-3"}]},
                      "effectiveDateTime": "2024-05-30",
                      "valueQuantity": {"value": 50, "unit": "10*9/L", "system": "http://unitsofmeasure.org",
                                        "code": "10*9/L"}}},
    ]}
    f = tmp_path / "b.json"
    f.write_text(json.dumps(bundle), encoding="utf-8")
    code, out, _ = _run(["screen", str(f), "--json", "--as-of", "2024-06-03"], capsys)
    d = json.loads(out)
    assert code == 0 and d["record"] == "f1"
    statuses = {c["id"]: c["status"] for c in d["criteria"]}
    assert statuses["INC08"] == "pass" and statuses["INC07"] == "unknown"  # no LUTATHERA cycles to date labs against
    code, _, err = _run(["screen", str(f)], capsys)
    assert code == 2 and "--as-of" in err


def test_unreadable_file_in_a_directory_is_logged_not_fatal(tmp_path, capsys):
    d = tmp_path / "recs"
    d.mkdir()
    (d / "a.json").write_text(json.dumps(make_records(1, seed=1)[0]), encoding="utf-8")
    (d / "b.json").write_bytes(b"\xff\xfe\x00garbage")
    code, _, err = _run(["screen", str(d), "--out", str(tmp_path)], capsys)
    rows = list(csv.DictReader((tmp_path / "screening-log.csv").open(encoding="utf-8")))
    assert code == 1 and [r["verdict"] for r in rows][1] == "unreadable" and "cannot read file" in rows[1]["reasons"]


def test_cohort_without_out_writes_nothing_into_the_cwd(tmp_path, capsys, monkeypatch):
    # issue 10: `screen DIR --json` without --out silently wrote a log and summary into the cwd
    from lutarterial.records.synthetic import make_records

    d = tmp_path / "recs"
    d.mkdir()
    for i, r in enumerate(make_records(3, seed=5)):
        (d / f"r{i}.json").write_text(json.dumps(r), encoding="utf-8")
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    code, out, _ = _run(["screen", str(d), "--json"], capsys)
    assert code == 0 and len(out.strip().splitlines()) == 3
    code, out, _ = _run(["screen", str(d)], capsys)
    assert code == 0 and "no files written" in out
    assert list(work.iterdir()) == []


def _reference_outputs(paths, as_of=None, want_json=True):
    """What screen writes, computed the plain way: every text read in text mode, screened in one process."""
    import io

    from lutarterial.cli.eligibility import _texts
    from lutarterial.eligibility.cohort import LOG_FIELDS, CohortSummary, screen_texts

    items = [it for p in paths for it in _texts(p)]
    outs = screen_texts(items, as_of=as_of, protocol_version=None, want_json=want_json)
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(LOG_FIELDS)
    w.writerows([tuple(row.values()) for _line, row in outs])
    summary = CohortSummary()
    for _line, row in outs:
        summary.add_row(row)
    return buf.getvalue(), summary.to_dict(), "".join(line + "\n" for line, _row in outs if line is not None)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_mixed_inputs_and_odd_line_ends_give_the_plain_outputs(tmp_path, capsys, jobs):
    """NDJSON is read in byte ranges by the workers (issue 10, speed): same rows, lines and counts as text mode."""
    recs = [json.dumps(r, ensure_ascii=i % 2 == 0) for i, r in enumerate(make_records(30, seed=9))]
    a = tmp_path / "a.ndjson"  # CRLF, a bare CR, blank and whitespace-only lines, a form feed, no final newline
    a.write_bytes(("\r\n".join(recs[:10]) + "\r\n\r\n  \n" + recs[10] + "\r" + recs[11] + "\n\x0c\n"
                   + '{"record_id": "bad"\n' + recs[12]).encode("utf-8"))
    d = tmp_path / "dir"
    d.mkdir()
    (d / "b.json").write_text(json.dumps([json.loads(r) for r in recs[13:16]]), encoding="utf-8")
    (d / "c.jsonl").write_text("\n".join(recs[16:]) + "\n", encoding="utf-8")
    (d / "d.json").write_text(recs[0], encoding="utf-8")
    log, summary, ndjson = _reference_outputs([a, d])
    out_dir = tmp_path / "out"
    code, out, _err = _run(["screen", str(a), str(d), "--json", "--jobs", jobs, "--out", str(out_dir)], capsys)
    assert code == 1  # the bad line is unreadable
    assert (out_dir / "screening-log.csv").read_bytes().decode("utf-8") == log
    assert json.loads((out_dir / "screening-summary.json").read_text(encoding="utf-8")) == summary
    assert out == ndjson


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ndjson_that_is_not_utf8_is_reported_as_reading_it_as_text_does(tmp_path, capsys, jobs):
    recs = [json.dumps(r) for r in make_records(5, seed=1)]
    f = tmp_path / "bad.ndjson"
    f.write_bytes(("\n".join(recs[:3]) + "\n").encode() + b'{"record_id": "\xff"}\n' + recs[3].encode() + b"\n")
    with pytest.raises(UnicodeDecodeError) as expected:
        with f.open(encoding="utf-8") as fh:
            for _line in fh:
                pass
    code, _out, err = _run(["screen", str(f), "--jobs", jobs, "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and f"input is not valid text ({expected.value})" in err
