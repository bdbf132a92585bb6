"""The papers interface (docs/CONTRACTS.md, "Adding a paper"): a sixth paper is one module and one
notebook. The toy ``tests/toy/sixth.py`` + ``sixth.ipynb`` is registered in ``PAPERS`` and nothing
else; the driver, the plan, the notebook's table view and the report then work for it."""
import sys
from pathlib import Path

import pytest

TOY = Path(__file__).resolve().parent / "toy"
sys.path.insert(0, str(TOY))


@pytest.fixture
def sixth(monkeypatch, tmp_path):
    import fake
    from kdlib.paper_tables import PAPERS
    fake.register_fakes()
    monkeypatch.setitem(PAPERS, "sixth", (str(TOY / "sixth.ipynb"), "sixth"))
    monkeypatch.setenv("KDLIB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("KDLIB_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return tmp_path


def test_a_sixth_paper_is_one_module_and_one_notebook(sixth):
    from kdlib.figures.common import table_items
    from kdlib.plan import planned_runs
    from kdlib.reproduce import reproduce, write_report
    runs, _ = planned_runs("sixth", "smoke", seeds=[0, 1])
    # 2 students x 2 seeds; the teacher (seed 0, smoke's epochs) is the seed-0 student's run, listed once
    assert list(runs["method"]) == ["supervised", "supervised", "fpd", "fpd"]
    summary = reproduce("sixth", "smoke", seeds=2, results_root=sixth / "results", show_progress=False)
    assert all(c["status"] == "ok" for c in summary["cells"]), summary["cells"]
    table = summary["tables"]["main"]
    assert "| Student + KD |" in table["markdown"] and "*49.00*" in table["markdown"]
    [claim] = table["claims"]
    assert claim["seeds"] == [0, 1] and claim["status"] in ("reproduced", "contradicted", "inconclusive")
    assert "## sixth" in write_report("smoke", sixth / "results").read_text()
    # the notebook's view reads the same rows (driver cells, else the run cache) and judges the same claim
    [item] = table_items("sixth", "smoke", seeds=[0, 1])
    assert item["claims"].to_dict("records")[0]["effect"] == pytest.approx(claim["effect"])
    assert "kit rows found: 2 of 2" in item["title"]
    cells = sorted((sixth / "results" / "smoke" / "sixth" / "cells").glob("*.json"))
    for path in cells:          # without the driver's cells, the run cache gives the same numbers
        path.unlink()
    [again] = table_items("sixth", "smoke", seeds=[0, 1])
    assert again["claims"].to_dict("records")[0]["effect"] == pytest.approx(claim["effect"])


def test_row_metrics_reads_only_the_parameters_it_takes(sixth):
    """Notebook-only row parameters (figures, tables, ...) do not reach ``row_metrics``; a
    ``columns`` argument reaches only a ``row_metrics`` that takes it."""
    from kdlib.paper_tables import row_metrics
    seen = {}

    class Module:
        @staticmethod
        def row_metrics(results, method="supervised", columns=None):
            seen.update(method=method, columns=columns)
            return {"AP": 1.0}
    assert row_metrics(Module, {"row": {}}, {"method": "fpd", "figures": True}, ["AP"]) == {"AP": 1.0}
    assert seen == {"method": "fpd", "columns": ["AP"]}


def test_every_paper_implements_the_interface():
    """TABLES, HEADLINE, row_runs and row_metrics in every paper module; each run row's runs end
    with its own run under 'row'."""
    from kdlib.paper_tables import PAPERS, paper_module
    for paper, (notebook, module_name) in PAPERS.items():
        if module_name is None:
            continue
        module = paper_module(paper)
        assert module.HEADLINE in module.TABLES, paper
        assert callable(module.row_runs) and callable(module.row_metrics), paper
        for row in module.TABLES[module.HEADLINE].run_rows():
            runs = module.row_runs("smoke", 0, **row.params)
            assert list(runs)[-1] == "row", (paper, row.label, list(runs))
