"""The reproduction driver on a toy notebook + toy paper-table module (tests/toy/)."""
import json
import sys
from pathlib import Path

import pytest

TOY = Path(__file__).parent / "toy"
sys.path.insert(0, str(TOY.parent))

from kdlib.paper_tables import Claim, Stat, evaluate_claim  # noqa: E402
from kdlib.cells import cell_done, plan_cells, save_cell_result  # noqa: E402
from kdlib.reproduce import reproduce  # noqa: E402


def _toy(tmp_path, **kw):
    args = dict(profile="smoke", seeds=2, jobs=4, results_root=tmp_path, notebook=TOY / "toy.ipynb",
                tables_module="toy.toy_tables", show_progress=False)
    args.update(kw)
    return reproduce("toy", **args)


def test_driver_runs_cells_in_parallel_assembles_tables_and_claims(tmp_path):
    summary = _toy(tmp_path)
    cells = summary["cells"]
    # Baseline is shared by both tables: one cell per seed, not two
    assert len(cells) == 6 and sum(("extra", "Baseline") in map(tuple, c["rows"]) for c in cells) == 2
    failed = [c for c in cells if c["status"] == "failed"]
    assert len(failed) == 2 and all(c["params"]["fail"] for c in failed)
    assert all("toy cell asked to fail" in c["error"] and Path(c["notebook"]).is_file() for c in failed)
    ok = [c for c in cells if c["status"] == "ok"]
    assert len(ok) == 4
    spans = [json.loads(Path(c["result_path"]).read_text())["metrics"] for c in ok]
    assert max(s["start"] for s in spans) < min(s["end"] for s in spans) or any(
        a["start"] < b["end"] and b["start"] < a["end"] for a in spans for b in spans if a is not b), \
        "no two cells ran at the same time"

    table = summary["tables"]["main"]["markdown"]
    assert "| Literature [X] *(quoted)* | *60.00* | – | – |" in table      # the paper's number, italic
    # SynthPose profile: kit value | its paired effect over the baseline | the paper's effect
    assert "| Baseline | 50.05 ± 0.07 | base | – |" in table          # 50.0, 50.1 over seeds
    assert "| Method | 52.05 ± 0.07 | +2.00 | +2.00 |" in table    # the same +2 on every seed: no ±
    assert "| 1.50 |" in table and "± 0.00" not in table      # 'Params (M)' read from params_M
    assert "| Broken | – | – | -49.00 |" in table
    verdicts = {c["claim"]: c["status"] for c in summary["tables"]["main"]["claims"]}
    assert verdicts == {"Method beats Baseline": "reproduced", "Baseline beats Method": "contradicted",
                        "Broken beats Baseline": "not run"}
    report = (tmp_path / "smoke" / "REPORT.md").read_text()
    assert "**reproduced**" in report and "FAILED" in report and "executed notebook" in report
    assert (tmp_path / "smoke" / "toy" / "main.csv").is_file()

    again = _toy(tmp_path, tables=["extra"])            # completed cells are skipped on re-run
    assert [c["status"] for c in again["cells"][:2]] == ["skipped", "skipped"]
    assert set(again["tables"]) == {"main", "extra"}         # earlier tables kept in the summary
    assert "Toy Table 1" in (tmp_path / "smoke" / "REPORT.md").read_text()


def test_submitit_executor(tmp_path):
    summary = _toy(tmp_path, tables=["extra"], seeds=1, executor="submitit", cluster="debug")
    assert [c["status"] for c in summary["cells"]] == ["ok"]
    assert "| Baseline | 50.00 | 50.00 |" in summary["tables"]["extra"]["markdown"]   # no baseline: kit | paper


def test_plan_and_save_cell_result(tmp_path):
    from toy.toy_tables import TABLES
    cells = plan_cells("toy", TOY / "toy.ipynb", TABLES, "smoke", [0, 1, 2], tmp_path)
    assert len(cells) == 3 * 3 and all(c.params["profile"] == "smoke" for c in cells)
    save_cell_result(cells[0].result_path, {"AP": 1, "train_time_s": 7200})
    assert cell_done(cells[0]) and not cell_done(cells[1])
    assert json.loads(Path(cells[0].result_path).read_text())["metrics"]["train_time_h"] == 2.0
    with pytest.raises(TypeError, match="must be a number"):
        save_cell_result(cells[1].result_path, {"AP": "high"})
    save_cell_result("", {"AP": 1.0})                  # interactive run: no-op


def test_claim_single_seed_is_inconclusive_with_direction():
    claim = Claim("a > b", lambda r: r["a"]["AP"] > r["b"]["AP"])
    stats = {"a": {"AP": Stat(2.0, float("nan"), 1)}, "b": {"AP": Stat(1.0, float("nan"), 1)}}
    verdict = evaluate_claim(claim, stats)
    assert verdict["status"] == "inconclusive" and "holds" in verdict["detail"]


def test_claim_inside_seed_spread_is_inconclusive():
    claim = Claim("a > b", lambda r: r["a"]["AP"] > r["b"]["AP"])
    close = {"a": {"AP": Stat(50.10, 0.07, 2)}, "b": {"AP": Stat(50.05, 0.07, 2)}}
    apart = {"a": {"AP": Stat(52.05, 0.07, 2)}, "b": {"AP": Stat(50.05, 0.07, 2)}}
    assert evaluate_claim(claim, close)["status"] == "inconclusive"
    assert evaluate_claim(claim, apart)["status"] == "reproduced"


@pytest.mark.slow
def test_quick_profile_headline_of_one_paper_end_to_end(tmp_path, monkeypatch):
    """The main job's path at its real size for one paper: SDP's headline table on `quick`
    (SynthPose generation, three notebook cells, table assembly, REPORT.md). ~3-5 min on 2 cores."""
    from kdlib.reproduce import reproduce
    monkeypatch.setenv("KDLIB_RUNS", str(tmp_path / "runs"))
    summary = reproduce("sdp", "quick", headline_only=True, jobs=2, results_root=tmp_path / "results",
                        show_progress=False)
    assert [c["status"] for c in summary["cells"]] == ["ok"] * len(summary["cells"])
    (name, table), = summary["tables"].items()
    assert "not run" not in table["markdown"]
    assert (tmp_path / "results" / "quick" / "REPORT.md").is_file()


@pytest.mark.parametrize("bad", ["0", "-1", "two"])
def test_driver_rejects_non_positive_seeds(bad, capsys):
    from kdlib.reproduce import main
    with pytest.raises(SystemExit) as exit_info:
        main(["sdp", "--profile", "smoke", "--seeds", bad])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--seeds" in err and ("positive integer" in err)


def test_reproduce_rejects_zero_seeds_and_lists_failed_cells(tmp_path):
    with pytest.raises(ValueError, match="positive integer"):
        _toy(tmp_path, seeds=0)
    summary = _toy(tmp_path, tables=["main"], seeds=1)
    assert len(summary["failed_now"]) == 1 and summary["failed_now"][0].endswith(".ipynb")


def _runs(values):
    return {seed: {"AP": v} for seed, v in enumerate(values)}


def test_paired_seeds_decide_what_the_unpaired_spread_cannot():
    """MEASURED.md's canary: FPD lifts the student by ~0.3-0.4 AP at every seed while seed-to-seed
    spreads are larger; pairing by seed resolves it."""
    from kdlib.paper_tables import aggregate, gain
    results = {"Supervised": _runs([6.90, 7.12, 8.17]), "FPD": _runs([7.33, 7.40, 8.50])}
    claim = Claim("FPD lifts the student", gain("FPD", "Supervised", "AP"))
    paired = evaluate_claim(claim, results)
    assert paired["status"] == "reproduced" and paired["seeds"] == [0, 1, 2]
    diffs = [0.43, 0.28, 0.33]
    assert paired["effect"] == pytest.approx(sum(diffs) / 3)
    assert evaluate_claim(claim, aggregate(results))["status"] == "inconclusive"   # unpaired


def test_inconclusive_states_the_minimum_detectable_effect():
    from scipy import stats
    from kdlib.paper_tables import gain
    results = {"A": _runs([1.0, 2.0, 3.0]), "B": _runs([1.2, 1.5, 3.1])}      # diffs -0.2, 0.5, -0.1
    verdict = evaluate_claim(Claim("A beats B", gain("A", "B", "AP")), results)
    assert verdict["status"] == "inconclusive"
    diffs = [-0.2, 0.5, -0.1]
    mean = sum(diffs) / 3
    sd = (sum((d - mean) ** 2 for d in diffs) / 2) ** 0.5
    mde = (stats.t.ppf(0.95, 2) + stats.t.ppf(0.8, 2)) * sd / 3 ** 0.5
    assert verdict["mde"] == pytest.approx(mde) and f"{mde:.2f}" in verdict["detail"]



def test_inconclusive_says_how_many_seeds_the_papers_effect_needs():
    """With the paper's numbers, an inconclusive claim says how many paired seeds would resolve
    the paper's effect at the spread the kit observed: the first n whose minimum detectable
    effect (t_0.95 + t_0.8, n - 1 degrees of freedom, x sd / sqrt(n)) is at most the effect."""
    from scipy import stats
    from kdlib.paper_tables import gain, seeds_needed
    results = {"A": _runs([1.0, 2.0, 3.0]), "B": _runs([1.2, 1.5, 3.1])}      # diffs -0.2, 0.5, -0.1
    paper = {"A": {"AP": 70.3}, "B": {"AP": 70.0}}                             # the paper's effect: +0.3
    verdict = evaluate_claim(Claim("A beats B", gain("A", "B", "AP")), results, paper=paper)
    sd = stats.tstd([-0.2, 0.5, -0.1])

    def mde(n):
        return (stats.t.ppf(0.95, n - 1) + stats.t.ppf(0.8, n - 1)) * sd / n ** 0.5
    n = verdict["seeds_needed"]
    assert verdict["paper_effect"] == pytest.approx(0.3)
    assert mde(n) <= 0.3 < mde(n - 1) and f"needs {n} seeds" in verdict["detail"]
    assert seeds_needed(sd, 0.001) is None                                     # beyond 100 seeds
    assert "needs" not in evaluate_claim(Claim("A beats B", gain("A", "B", "AP")), results)["detail"]
    large = {"A": {"AP": 75.0}, "B": {"AP": 70.0}}                             # +5: 3 seeds had the power
    assert mde(3) <= 5.0
    assert "3 seeds at this spread would have resolved the paper's effect (+5)" in evaluate_claim(
        Claim("A beats B", gain("A", "B", "AP")), results, paper=large)["detail"]
    against = {"A": {"AP": 69.0}, "B": {"AP": 70.0}}                           # the paper's own rows disagree
    assert "needs" not in evaluate_claim(Claim("A beats B", gain("A", "B", "AP")), results, paper=against)["detail"]

def test_paired_contradicted_and_single_seed_rows_stay_local():
    from kdlib.paper_tables import gain
    results = {"A": _runs([5.0, 6.0, 7.0]), "B": _runs([6.0, 7.1, 7.9]),
               "Lonely": {0: {"AP": 1.0}}}                                   # one seed only
    assert evaluate_claim(Claim("A beats B", gain("A", "B", "AP")), results)["status"] == "contradicted"
    lonely = evaluate_claim(Claim("Lonely beats B", gain("Lonely", "B", "AP")), results)
    assert lonely["status"] == "inconclusive" and "one seed" in lonely["detail"]
    missing = evaluate_claim(Claim("C beats B", gain("C", "B", "AP")), results)
    assert missing["status"] == "not run" and "'C'" in missing["detail"]


def test_relative_tables_measure_each_row_against_its_own_baseline():
    """SynthPose tables: a row's paired effect over the baseline its table names for it (here each
    network against its undistilled self), beside the paper's effect."""
    from kdlib.paper_tables import Row, Table
    from kdlib.paper_tables.assemble import assemble_table
    table = Table("t", ["AP"], [Row("A", {"AP": 50.0}), Row("A + KD", {"AP": 51.0}),
                                Row("B", {"AP": 60.0}), Row("B + KD", {"AP": 60.5})],
                  baseline={"A + KD": "A", "B + KD": "B"})
    per_seed = {"A": _runs([10.0, 11.0]), "A + KD": _runs([10.5, 11.3]),
                "B": _runs([20.0, 22.0]), "B + KD": _runs([19.0, 21.0])}
    frame, markdown = assemble_table(table, per_seed, relative=True)
    assert markdown.splitlines()[0] == "| Row | AP | Δ AP | Δ AP (paper) |"       # separate columns
    assert "| A | 10.50 ± 0.71 | base | – |" in markdown
    assert "| A + KD | 10.90 ± 0.57 | +0.40 ± 0.10 | +1.00 |" in markdown
    assert "| B + KD | 20.00 ± 1.41 | -1.00 | +0.50 |" in markdown       # -1 on both seeds
    assert frame.set_index("row").loc["B + KD", "paper_effect"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="must name run rows"):
        Table("t", ["AP"], [Row("A", {})], baseline={"A": "missing"})


def test_report_reassembles_from_cell_results_alone(tmp_path):
    """A results folder copied elsewhere (as docs/results/ is committed) gives the same REPORT.md
    from its cell files, without running anything; its provenance and cell times are kept."""
    from kdlib.reproduce import publish, reassemble
    _toy(tmp_path / "a")
    report = (tmp_path / "a" / "smoke" / "REPORT.md").read_text()
    assert "Produced by `kdlib.reproduce.reproduce(...)` at commit" in report
    assert "Cell wall times (4 timed)" in report and "2 failed" in report
    assert publish("smoke", tmp_path / "b", results_root=tmp_path / "a").read_text() == report
    assert list((tmp_path / "a").rglob("*.ipynb")) and not list((tmp_path / "b").rglob("*.ipynb"))
    assert reassemble("smoke", tmp_path / "b").read_text() == report
    summary = json.loads((tmp_path / "b" / "smoke" / "toy" / "summary.json").read_text())
    assert {c["status"] for c in summary["cells"]} == {"skipped", "failed"}     # nothing ran
    (tmp_path / "b" / "smoke" / "toy" / "main.md").unlink()
    cell = next((tmp_path / "b" / "smoke" / "toy" / "cells").glob("Method_s0_*.json"))
    payload = json.loads(cell.read_text())
    payload["metrics"]["AP"] += 1.0                     # a hand edit of one cell shows in the report
    cell.write_text(json.dumps(payload))
    assert reassemble("smoke", tmp_path / "b").read_text() != report


def test_each_table_keeps_the_provenance_of_the_run_that_made_it(tmp_path):
    """Two invocations on two tables of one paper: each table's header says which command, commit
    and wall time produced it (one paper-level line would credit the later run with both), and a
    re-assembly keeps both lines."""
    from kdlib.reproduce import reassemble
    _toy(tmp_path, tables=["extra"], jobs=2)
    _toy(tmp_path, tables=["main"], jobs=1)          # reported first all the same: the paper's order
    report = (tmp_path / "smoke" / "REPORT.md").read_text()
    section = report[report.index("## toy"):]
    made = [line for line in section.splitlines() if line.startswith("Produced by")]
    assert len(made) == 2 and "2 cell(s) at a time" in made[1] and "1 cell(s) at a time" in made[0]
    main_at, extra_at = section.index("### Toy Table 1"), section.index("### Toy Table 2")
    assert main_at < section.index(made[0]) < extra_at < section.index(made[1])   # under its table
    assert reassemble("smoke", tmp_path).read_text() == report
