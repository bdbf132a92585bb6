"""Profiles, and the quick profile's wiring at smoke size: headline tables -> notebook parameters
-> a real (smoke-sized) training run through kdlib.experiment."""
import importlib
import importlib.util

import pytest

from kdlib.profiles import PROFILES, get_profile, scaled_milestones
from kdlib.cells import NOTEBOOKS_DIR, plan_cells
from kdlib.reproduce import PAPERS, load_tables

FIELDS = {"data_root", "synthpose", "input_size", "model_variant", "epochs", "lr_milestones",
          "lr_gamma", "warmup_iters", "batch_size", "val_every", "seeds", "num_workers", "device",
          "teacher_epochs"}


def test_every_profile_has_every_field():
    assert set(PROFILES) == {"smoke", "quick", "classroom", "gpu", "paper"}
    for name, profile in PROFILES.items():
        assert set(profile) == FIELDS, name
        if name == "paper":
            assert profile["synthpose"] is None and profile["data_root"] == "data"
        else:
            assert set(profile["synthpose"]) == {"num_train", "num_val", "image_size", "seed"}
            assert profile["data_root"].startswith("data/synthpose/")
        assert profile["model_variant"] in ("paper", "classroom", "smoke")
        assert all(0 < m < profile["epochs"] for m in profile["lr_milestones"])
        assert profile["teacher_epochs"] >= profile["epochs"]
    assert len(PROFILES["quick"]["seeds"]) >= 2                  # the main job's verdicts are paired
    assert PROFILES["paper"]["input_size"]["coco"] == (256, 192)
    assert PROFILES["paper"]["input_size"]["mpii"] == (256, 256)
    assert PROFILES["gpu"]["input_size"] == PROFILES["paper"]["input_size"]
    assert PROFILES["quick"]["synthpose"]["num_train"] < PROFILES["classroom"]["synthpose"]["num_train"]
    assert len(PROFILES["classroom"]["seeds"]) == 3


def test_milestones_scale_from_170_200_of_210():
    assert scaled_milestones(210) == (170, 200)
    assert scaled_milestones(21) == (17, 20)
    assert get_profile("classroom", epochs=42)["lr_milestones"] == (34, 40)
    assert get_profile("classroom", epochs=42, lr_milestones=(5,))["lr_milestones"] == (5,)


def test_overrides_copy_and_reject_typos():
    profile = get_profile("smoke", batch_size=2)
    assert profile["batch_size"] == 2 and PROFILES["smoke"]["batch_size"] != 2
    profile["input_size"]["coco"] = (1, 1)
    assert PROFILES["smoke"]["input_size"]["coco"] == (64, 48)
    with pytest.raises(KeyError, match="batchsize"):
        get_profile("smoke", batchsize=2)
    with pytest.raises(KeyError, match="unknown profile"):
        get_profile("huge")


def test_every_paper_has_its_notebook_and_table_module():
    for paper, (notebook, module) in PAPERS.items():
        assert (NOTEBOOKS_DIR / notebook).is_file(), f"{paper}: notebooks/{notebook} missing"
        assert module is None or importlib.util.find_spec(module), f"{paper}: {module} missing"


def _parameters_cell_names(notebook) -> set[str]:
    """Names assigned in the cell tagged 'parameters' (parsed with ast)."""
    import ast
    import json
    nb = json.loads(notebook.read_text())
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"{notebook.name}: expected one cell tagged 'parameters', found {len(cells)}"
    source = cells[0]["source"]
    tree = ast.parse(source if isinstance(source, str) else "".join(source))
    return {t.id for node in ast.walk(tree) if isinstance(node, (ast.Assign, ast.AnnAssign))
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(t, ast.Name)}


@pytest.mark.parametrize("paper", [p for p in PAPERS if PAPERS[p][1]])
def test_quick_headline_cells_match_notebook_parameters(paper, tmp_path):
    """Every quick-profile cell's parameters are declared in the notebook's parameters cell."""
    notebook = NOTEBOOKS_DIR / PAPERS[paper][0]
    tables, headline = load_tables(PAPERS[paper][1])
    assert headline in tables, f"{paper}: HEADLINE {headline!r} is not a table"
    declared = _parameters_cell_names(notebook)
    cells = plan_cells(paper, notebook, {headline: tables[headline]}, "smoke", [0], tmp_path)
    assert cells, f"{paper}: the headline table has no run rows"
    for cell in cells:
        missing = set(cell.params) - declared
        assert not missing, f"{paper} {cell.rows}: parameters {sorted(missing)} not in the notebook"


def test_smoke_experiment_with_real_data_and_model(tmp_path, monkeypatch):
    """kdlib.experiment on the real SynthPose smoke data and model zoo (integration)."""
    importlib.import_module("kdlib.models")
    monkeypatch.setenv("KDLIB_RUNS", str(tmp_path))
    from kdlib.experiment import ExperimentConfig, run_experiment
    cfg = ExperimentConfig(profile="smoke", dataset="mpii", model="sbl_r50", head="heatmap",
                           epochs=1, train={"show_progress": False})
    result = run_experiment(cfg, show_progress=False)
    assert {"Mean", "Head"} <= set(result["metrics"]) and result["params_M"] > 0
    assert result["input_size"] == [64, 64] and result["num_joints"] == 16
