"""What is committed under ``docs/results/<profile>/`` (``python -m kdlib.reproduce all --profile P
--publish docs/results``) is exactly what the kit assembles from the committed cell result files:
the report and every table are re-assembled here, on a copy, and compared (no hand edits)."""
import shutil
from pathlib import Path

import pytest

from kdlib.reproduce import reassemble

DOCS = Path(__file__).resolve().parents[1] / "docs" / "results"
PUBLISHED = sorted(p.parent.name for p in DOCS.glob("*/REPORT.md"))


def test_the_classroom_report_is_published():
    assert "classroom" in PUBLISHED, f"no docs/results/classroom/REPORT.md (published: {PUBLISHED})"


@pytest.mark.parametrize("profile", PUBLISHED)
def test_published_report_reassembles_from_its_cell_files(profile, tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_RUNS", str(tmp_path / "no-run-cache"))     # only the committed files
    shutil.copytree(DOCS / profile, tmp_path / profile)
    report = reassemble(profile, tmp_path)
    assert report.read_text() == (DOCS / profile / "REPORT.md").read_text()
    written = [p for p in (tmp_path / profile).glob("*/*") if p.suffix in (".md", ".csv")]
    assert written, "the report has no paper tables"
    for path in written:
        committed = DOCS / profile / path.relative_to(tmp_path / profile)
        assert path.read_text() == committed.read_text(), f"{committed} differs from its re-assembly"
