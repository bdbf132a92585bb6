"""A sixth paper, added as docs/CONTRACTS.md ("Adding a paper") says: this module and
``sixth.ipynb``, nothing else. Its runs are real kdlib runs (the trainer, the run cache, FPD's
output distillation) on the fake data and network of ``fake.py``, which stand for a paper's own
dataset and model in kdlib's registries (``register_fakes``)."""
from kdlib.experiment import ExperimentConfig
from kdlib.paper_tables import Claim, Row, Table, gain, with_dependencies
from kdlib.teachers import teacher_run

TABLES = {
    "main": Table(
        title="Sixth Table 1: output distillation lifts the student", columns=["AP", "Params (M)"],
        metric_source="coco", baseline="Student",
        rows=[Row("Literature [Y]", {"AP": 49.0}, "quoted"),
              Row("Student", {"AP": 50.0}, "run", {"method": "supervised"}),
              Row("Student + KD", {"AP": 51.0}, "run", {"method": "fpd"})],
        claims=[Claim("KD lifts the student (Table 1: +1.0 AP)", gain("Student + KD", "Student", "AP"))]),
}
HEADLINE = "main"


def experiment_config(profile: str, seed: int, method: str = "supervised", kd_alpha: float = 0.5):
    """The run behind a row: the fake student, supervised or distilled (FPD) from a fake teacher
    trained by the kit's one teacher picker."""
    common = dict(paper="sixth", profile=profile, dataset="fake", student_builder="fake", model="fake")
    if method == "supervised":
        return ExperimentConfig(seed=seed, **common)
    teacher = teacher_run(ExperimentConfig(**common))
    return ExperimentConfig(seed=seed, method="fpd", method_params={"kd_alpha": kd_alpha},
                            teachers={"teacher": teacher}, **common)


def row_runs(profile: str, seed: int, **params) -> dict:
    """The papers interface: the run behind a table row (``'row'``) and the runs it needs."""
    return with_dependencies({"row": experiment_config(profile, seed, **params)})


def row_metrics(results: dict, **_params) -> dict:
    """The papers interface: the row's numbers from its runs' results."""
    row = results["row"]
    return {**row["metrics"], "params_M": row["params_M"], "train_time_s": row["train_time_s"]}
