"""Shared fixtures."""
import json
from pathlib import Path

import papermill
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / 'notebooks'


@pytest.fixture
def isolated_runs(tmp_path, monkeypatch):
    """A run cache (`tmp_path/runs`) and results folder (`tmp_path/results`) of the test's own."""
    monkeypatch.setenv('KDLIB_RUNS', str(tmp_path / 'runs'))
    monkeypatch.setenv('KDLIB_RESULTS', str(tmp_path / 'results'))
    return tmp_path


@pytest.fixture
def run_notebook(isolated_runs, tmp_path, monkeypatch):
    """Execute `notebooks/<name>` with papermill (profile 'smoke' unless given) on a run cache and
    results folder of its own; return (metrics it saved via result_path or None, executed path)."""
    monkeypatch.setenv('OMP_NUM_THREADS', '1')

    def run(name: str, save: bool = True, **parameters):
        out = tmp_path / f'{Path(name).stem}_{len(list(tmp_path.glob("*.ipynb")))}.ipynb'
        result = out.with_suffix('.json')
        if save:
            parameters['result_path'] = str(result)
        papermill.execute_notebook(str(NOTEBOOKS / name), str(out),
                                   parameters={'profile': 'smoke', **parameters}, cwd=str(NOTEBOOKS),
                                   kernel_name='python3', progress_bar=False)
        return (json.loads(result.read_text())['metrics'] if save else None), out
    return run
