"""Bad input and interrupted work in the reproduction driver and the notebooks (kdlib issue 15):
misspelt papermill parameters, a cell past its time limit, corrupt cache files, a run whose loss
explodes but stays finite."""
import json
import sys
from pathlib import Path

import papermill
import pytest

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))

from kdlib.cells import NOTEBOOKS_DIR, Cell, ParameterError, check_parameters, declared_parameters  # noqa: E402
from kdlib.reproduce import PAPERS, load_tables, reproduce, run_cell, write_report  # noqa: E402

TOY = TESTS / "toy"


# ----------------------------------------------------------------------------- parameters
def _first_cells(notebook: Path, out_dir: Path) -> Path:
    """A copy of ``notebook`` cut after the cell that follows its parameters (the check)."""
    nb = json.loads(notebook.read_text())
    index = next(i for i, c in enumerate(nb["cells"]) if "parameters" in c["metadata"].get("tags", []))
    nb["cells"] = nb["cells"][:index + 2]
    path = out_dir / notebook.name
    path.write_text(json.dumps(nb))
    return path


@pytest.mark.parametrize("name", [nb for nb, _ in PAPERS.values()])
def test_notebook_rejects_a_misspelt_parameter(name, tmp_path):
    """``papermill nb.ipynb out.ipynb -p netwrok ...`` only warns; the notebook's cell after the
    injected parameters fails, naming the unknown name and listing the declared ones."""
    notebook = _first_cells(NOTEBOOKS_DIR / name, tmp_path)
    declared = declared_parameters(notebook)
    run = dict(cwd=str(NOTEBOOKS_DIR), kernel_name="python3", progress_bar=False)
    papermill.execute_notebook(str(notebook), str(tmp_path / "ok.ipynb"),                # declared: fine
                               parameters={"profile": "smoke", "seed": 1}, **run)
    with pytest.raises(papermill.PapermillExecutionError) as info:
        papermill.execute_notebook(str(notebook), str(tmp_path / "bad.ipynb"),
                                   parameters={"seed": 1, "sede": 2}, **run)
    message = str(info.value)
    assert "ParameterError" in message and "'sede' (did you mean 'seed'?)" in message
    listed = message.split("the parameters cell declares ")[1].split(". Fix the name")[0]
    assert listed.split(", ") == declared                          # not IPython's In, Out, exit...


def test_every_table_row_uses_declared_parameters():
    """Each paper's run rows set only what its notebook declares (``declared_parameters`` reads
    the cell with ``ast``; papermill's inspector skips a line with two '=')."""
    for paper, (notebook, module) in PAPERS.items():
        declared = set(declared_parameters(NOTEBOOKS_DIR / notebook))
        assert {"profile", "seed", "result_path"} <= declared, paper
        inspected = set(papermill.inspect_notebook(str(NOTEBOOKS_DIR / notebook))) - {"_declared"}
        assert inspected == declared, paper
        for table in load_tables(module)[0].values():
            for row in table.run_rows():
                assert set(row.params) <= declared, (paper, row.label, set(row.params) - declared)


def test_check_parameters_ignores_imports_and_ipython_history():
    namespace = {"profile": "smoke", "seed": 0}
    declared = set(namespace)
    namespace.update(_declared=declared, _i3="...", _7=1, json=json, check_parameters=check_parameters,
                     seed=4)                                      # a declared name re-injected
    check_parameters(namespace, declared)
    namespace["_seed"] = 1
    with pytest.raises(ParameterError, match=r"'_seed' \(did you mean 'seed'\?\); the parameters cell "
                                             r"declares profile, seed\. Fix the name"):
        check_parameters(namespace, declared)


def _tables_module(tmp_path, monkeypatch, params: dict) -> str:
    """A paper-table module (importable as ``faulty_tables``) with one run row of ``params``."""
    (tmp_path / "faulty_tables.py").write_text(
        "from kdlib.paper_tables import Row, Table\n"
        f"TABLES = {{'main': Table('Faulty', ['AP'], [Row('Row', {{'AP': 50.0}}, 'run', {params!r})])}}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "faulty_tables"


def test_driver_rejects_an_undeclared_row_parameter(tmp_path, monkeypatch):
    module = _tables_module(tmp_path, monkeypatch, {"valeu": 52.0})
    summary = reproduce("toy", "smoke", seeds=1, results_root=tmp_path / "results",
                        notebook=TOY / "toy.ipynb", tables_module=module, show_progress=False)
    (cell,) = summary["cells"]
    assert cell["status"] == "failed" and len(summary["failed_now"]) == 1
    assert "ParameterError: notebook toy.ipynb: unknown parameter 'valeu' (did you mean 'value'?)" \
        in cell["error"]
    assert "declares fail, profile, result_path, seed, sleep, value" in cell["error"]
    assert not Path(cell["notebook"]).exists()                   # rejected before papermill ran
    assert "valeu" in (tmp_path / "results" / "smoke" / "REPORT.md").read_text()


# ----------------------------------------------------------------------------- time limit
def test_cell_timeout_names_the_cell_and_the_limit(tmp_path):
    cell = Cell("toy", str(TOY / "toy.ipynb"), {"sleep": 60.0, "result_path": str(tmp_path / "r.json")},
                str(tmp_path / "out.ipynb"), str(tmp_path / "r.json"))
    outcome = run_cell(cell, timeout=2)
    assert outcome["status"] == "failed" and outcome["seconds"] < 50
    assert outcome["error"].startswith("CellTimeoutError: cell 3 (In [3]: `import time`) of out.ipynb")
    assert "per-cell time limit of 2 s (--timeout 2)" in outcome["error"]


# ----------------------------------------------------------------------------- corrupt cache files
def _summary(tmp_path, paper):
    return reproduce(paper, "smoke", tables=["extra"], seeds=1, results_root=tmp_path,
                     notebook=TOY / "toy.ipynb", tables_module="toy.toy_tables", show_progress=False)


def test_a_corrupt_summary_does_not_block_the_report(tmp_path):
    _summary(tmp_path, "toy")
    _summary(tmp_path, "other")
    other = tmp_path / "smoke" / "other" / "summary.json"
    other.write_bytes(other.read_bytes()[:100])                  # truncated by a crash
    report = write_report("smoke", tmp_path).read_text()
    assert "## toy" in report and "Toy Table 2" in report          # the other paper still reported
    assert f"**Summary unreadable**: {other}: not valid JSON" in report
    assert "python -m kdlib.reproduce other --profile smoke` to rebuild it" in report
    (tmp_path / "smoke" / "toy" / "summary.json").write_text("[]")      # JSON, not a summary
    assert "not a paper summary (missing paper" in write_report("smoke", tmp_path).read_text()
    # re-running the paper moves the corrupt file aside (named) and rebuilds it; cells are kept
    with pytest.warns(UserWarning, match="summary.json is corrupt"):
        again = _summary(tmp_path, "other")
    assert [c["status"] for c in again["cells"]] == ["skipped"]
    assert json.loads(other.read_text())["paper"] == "other"
    assert list((tmp_path / "smoke" / "other").glob("corrupt-*/summary.json"))


def test_a_corrupt_cell_result_is_recomputed(tmp_path):
    first = _summary(tmp_path, "toy")
    result = Path(first["cells"][0]["result_path"])
    result.write_text('{"metrics": {"AP": 5')                   # truncated
    again = _summary(tmp_path, "toy")
    assert [c["status"] for c in again["cells"]] == ["ok"]
    assert json.loads(result.read_text())["metrics"]["AP"] == 50.0


# ----------------------------------------------------------------------------- divergence
def test_report_lists_a_diverged_run(tmp_path, monkeypatch):
    """A run whose loss exploded (finite) is flagged by the trainer; the report names it under the
    paper its config is labelled with."""
    import torch
    from test_train import _ExplodingFrom, _cfg
    from toy.fake import FakePoseDataset, FakePoseNet, fake_predict
    from kdlib.train import fit
    monkeypatch.setenv("KDLIB_RUNS", str(tmp_path / "runs"))
    torch.manual_seed(0)
    config = {"paper": "toy", "model": "fake", "method": "exploding", "method_params": {}, "seed": 0}
    fit(FakePoseNet(), _ExplodingFrom(start=3), FakePoseDataset(12), FakePoseDataset(6, seed=1),
        _cfg(epochs=2), tmp_path / "runs" / "smoke" / "abc123", predict_fn=fake_predict, config=config)
    fit(FakePoseNet(), _ExplodingFrom(start=10**6), FakePoseDataset(12), FakePoseDataset(6, seed=1),
        _cfg(epochs=2), tmp_path / "runs" / "smoke" / "fine00", predict_fn=fake_predict,
        config={**config, "method": "supervised"})
    _summary(tmp_path / "results", "toy")
    report = (tmp_path / "results" / "smoke" / "REPORT.md").read_text()
    toy_section = report.split("## toy")[1]
    assert "**DIVERGED** run `abc123` (fake exploding, seed 0): epoch 2 mean loss 4e+25" in toy_section
    assert "fine00" not in report
