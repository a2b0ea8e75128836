"""The trial report PDF rendered to images by poppler (``pdftoppm``) and read back (``pdftotext``):
more than one page, a first page that is not blank, the expected section titles in order.

poppler-utils is a system package (``scripts/bootstrap.sh`` installs it); without ``pdftoppm``
the test is skipped, saying so.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lutarterial.cli.main import run

from .test_reports import TRIAL_SECTIONS

pytestmark = pytest.mark.skipif(shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None,
                                reason="poppler-utils (pdftoppm, pdftotext) not installed: "
                                       "apt-get install -y poppler-utils (scripts/bootstrap.sh does)")


def _ink(png: Path) -> tuple[float, float]:
    """(grey-level variance, share of pixels darker than near-white) of a rendered page."""
    from PIL import Image

    a = np.asarray(Image.open(png).convert("L"), dtype=float)
    return float(a.var()), float((a < 200).mean())


def test_ink_measure_sees_a_blank_page(tmp_path: Path) -> None:
    """Guard for the check below: a white page has no variance and no ink."""
    from PIL import Image

    Image.new("L", (100, 140), 255).save(tmp_path / "blank.png")
    assert _ink(tmp_path / "blank.png") == (0.0, 0.0)


def test_trial_report_pdf_renders_pages_with_sections(db: str, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    with pytest.raises(SystemExit) as exc:
        run(["report", "trial", "--db", db, "--user", "stat", "--out", str(out), "--n-boot", "200"])
    assert exc.value.code in (0, None)
    pdf = out / "report.pdf"
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")], check=True, timeout=60)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) > 1
    variance, ink = _ink(pages[0])
    assert variance > 100 and ink > 0.01, (variance, ink)  # text, a box and a table on page 1

    def text(*args: str) -> str:
        return subprocess.run(["pdftotext", *args, str(pdf), "-"], check=True, capture_output=True, text=True,
                              timeout=60).stdout

    first, whole = text("-f", "1", "-l", "1"), text()
    assert "The answer" in first and "GMR" in first and "95% CI" in first and "Methods" in first
    lines = [line.strip() for line in whole.splitlines()]

    def is_title(line: str, t: str) -> bool:  # a line of its own, or "Title: ..." / "Title (...)"
        return line == t or line.startswith((t + ":", t + " ("))

    at = -1
    for t in TRIAL_SECTIONS:  # each title after the previous one: present and in the report's order
        at = next((i for i in range(at + 1, len(lines)) if is_title(lines[i], t)), -1)
        assert at >= 0, f"section title {t!r} missing or out of order"
