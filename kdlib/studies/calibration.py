"""Is a small profile a regime where the papers' effects can be seen? Measured per paper pairing.

    python -m kdlib.studies.calibration --profile classroom --seeds 3 --jobs 2 [--papers sdp ekr]

For each paper, its own teacher and student (built by the paper's own table module, so the study
measures exactly the runs its tables train) at the profile's sizes:

1. **Teachers are teachers**: the teacher (``kdlib.teachers.teacher_run``: one run, the profile's
   ``teacher_epochs``) against the supervised student at each seed; the claim "the teacher beats the
   student by >= ``GAP`` points" is judged on the paired differences (``evaluate_claim``).
2. **The canary**: plain output distillation from that teacher into the same student, same seed
   (same initialisation and data order), against the supervised student: heatmap KD as FPD's code
   (``fpd``, alpha 0.5) for heatmap pairings, the SimCC KL (``kd``, EKR Table 1's KD) for SimCC
   pairings; Unified-MT's pairing is its own Table 2 switch (Eq. 7's KL from both teachers on or
   off), which is plain output distillation already.
3. **No saturation**: the supervised student's score over the decoding ceiling (the val ground truth
   encoded as heatmaps and decoded again at the profile's input size; a SimCC head's ceiling is at
   least as high, so the share printed for SimCC students is an upper bound).

Every run goes through ``run_experiment`` (cached under ``runs/<profile>/``); the table, the per-run
wall times and the learning curves go to ``results/<profile>/calibration.{csv,json}`` (atomically).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from kdlib.experiment import ExperimentConfig, config_hash, run_experiment
from kdlib.paper_tables import Claim, evaluate_claim, gain

GAP = 3.0          # points a teacher must beat its student by (issue: "a decided margin, >= 3")
FPD_ALPHA = 0.5    # FPD's code: loss = (1 - alpha) L_gt + alpha L_kd  (kdlib.methods.fpd)


@dataclass(frozen=True)
class Pairing:
    """One paper's teacher -> student, and the column its tables judge."""
    paper: str
    dataset: str
    metric: str
    student: Callable[[str, int], ExperimentConfig]    # (profile, seed) -> supervised student
    canary: Callable[[str, int], ExperimentConfig]     # (profile, seed) -> distilled student
    teacher_label: str
    student_label: str
    teacher_metric: str = ""      # the teacher's key for ``metric`` where it differs (one dataset
                                  # alone vs the unified student's 'mpii/Mean')
    teacher_name: str = "teacher"  # which of the canary's teachers is compared (Unified: 'mpii')

    def key(self, role: str) -> str:
        return self.teacher_metric if role == "teacher" and self.teacher_metric else self.metric

    def runs(self, profile: str, seed: int) -> dict[str, ExperimentConfig]:
        canary = self.canary(profile, seed)
        return {"teacher": canary.teachers[self.teacher_name], "student": self.student(profile, seed),
                "canary": canary}


def _fpd(student: ExperimentConfig, teacher: ExperimentConfig) -> ExperimentConfig:
    return dataclasses.replace(student, method="fpd", method_params={"kd_alpha": FPD_ALPHA},
                               teachers={"teacher": teacher})


def _sdp(method):
    from kdlib.paper_tables import sdp
    return lambda profile, seed: sdp.experiment_config(profile, seed, "hourglass4", method, "mpii",
                                                       teacher="hourglass8", kd_alpha=FPD_ALPHA)


def _ekr(distiller):
    from kdlib.paper_tables import ekr
    return lambda profile, seed: ekr.experiment_config(profile, seed, "mpii", "litehrnet_18", "simcc",
                                                       distiller)


def _elpn_student(profile, seed):
    from kdlib.paper_tables import elpn_mapd
    return elpn_mapd.experiment_config(profile, seed, "mpii", "elpn_v1", "supervised")


def _elpn_canary(profile, seed):
    from kdlib.paper_tables import elpn_mapd
    teacher = elpn_mapd.experiment_config(profile, seed, "mpii", elpn_mapd.TEACHER, "supervised")
    return _fpd(_elpn_student(profile, seed), teacher)     # MAPD's own teacher (the same run)


def _two_stage(scheme_runs):
    def build(profile, seed):
        from kdlib.paper_tables import two_stage_gcn
        runs = two_stage_gcn.experiments("baseline", "crowdpose", profile, seed)
        student = runs["student"]
        return student if not scheme_runs else dataclasses.replace(
            student, method="kd", method_params={}, teachers={"teacher": runs["teacher"]})
    return build


def _unified(distill):
    from kdlib.paper_tables import unified
    return lambda profile, seed: unified.experiment_config(profile, seed, "rtmpose_t", "unified",
                                                           distill=distill)


PAIRINGS = {
    "sdp": Pairing("sdp", "mpii", "Mean", _sdp("supervised"), _sdp("fpd"),
                   "Hourglass-8", "Hourglass-4"),
    "two_stage_gcn": Pairing("two_stage_gcn", "crowdpose", "AP", _two_stage(False), _two_stage(True),
                             "SimCC HRNet-W48", "SimCC HRNet-W32"),
    "ekr": Pairing("ekr", "mpii", "Mean", _ekr("supervised"), _ekr("kd"),
                   "SimDR HRNet-W32", "SimDR Lite-HRNet-18"),
    "unified": Pairing("unified", "mpii", "mpii/Mean", _unified(False), _unified(True),
                       "RTMPose-m (MPII; and COCO)", "RTMPose-t (unified)", teacher_metric="Mean",
                       teacher_name="mpii"),
    "elpn_mapd": Pairing("elpn_mapd", "mpii", "Mean", _elpn_student, _elpn_canary,
                         "HRNet-W32", "ELPN-V1"),
}


# ------------------------------------------------------------------------------- running
def _essentials(result: dict) -> dict:
    """What the study reads of a run's result (no weights, picklable)."""
    return {"metrics": result["metrics"], "history": result.get("history", []),
            "train_time_s": result.get("train_time_s")}


def _run_one(cfg_dict: dict, threads: int) -> dict:
    """One run in a worker process (``threads`` torch threads)."""
    import torch
    torch.set_num_threads(threads)
    return _essentials(run_experiment(ExperimentConfig.from_dict(cfg_dict), show_progress=False))


def run_all(configs: list[ExperimentConfig], jobs: int = 1) -> dict[str, dict]:
    """Results by ``config_hash``, ``jobs`` runs at a time; a run starts as soon as the runs it
    distils from are finished (a shared teacher is trained once, before its students)."""
    from concurrent.futures import FIRST_COMPLETED, wait
    unique = {config_hash(c): c for c in configs}
    needs = {h: {config_hash(t) for t in c.teachers.values() if isinstance(t, ExperimentConfig)} & set(unique)
             for h, c in unique.items()}
    threads = max(1, (os.cpu_count() or 1) // jobs)
    out, running = {}, {}
    needed = set().union(*needs.values())

    def teachers_first(h):
        return h not in needed
    if jobs == 1:                       # in this process (a notebook kernel: no fork after OpenMP)
        for h in sorted(unique, key=teachers_first):
            out[h] = _essentials(run_experiment(unique[h], show_progress=True))
        return out
    # spawn, not fork: a forked child of a process whose OpenMP pool is running can deadlock
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        while len(out) < len(unique):
            ready = [h for h in unique if h not in out and h not in running.values() and needs[h] <= set(out)]
            ready.sort(key=teachers_first)
            for h in ready[:jobs - len(running)]:
                running[pool.submit(_run_one, dataclasses.asdict(unique[h]), threads)] = h
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                out[running.pop(future)] = future.result()
    return out


def _value(result: dict, metric: str) -> float:
    return float(result["metrics"][metric])


def calibrate(profile: str, papers=None, seeds: int = 3, jobs: int = 1) -> tuple[pd.DataFrame, dict]:
    """The calibration table (one row per pairing) and the record it is computed from (per run:
    the metric, training time and validation history; per dataset: the decoding ceiling)."""
    from kdlib.studies.difficulty import decoding_ceiling
    papers = list(papers or PAIRINGS)
    plans = {p: {s: PAIRINGS[p].runs(profile, s) for s in range(seeds)} for p in papers}
    results = run_all([c for plan in plans.values() for runs in plan.values() for c in runs.values()], jobs)
    record, ceilings = {"profile": profile, "seeds": seeds, "pairings": {}}, {}
    for paper in papers:
        pairing = PAIRINGS[paper]
        per_seed = {role: {s: results[config_hash(runs[role])] for s, runs in plans[paper].items()}
                    for role in ("teacher", "student", "canary")}
        if pairing.dataset not in ceilings:
            ceilings[pairing.dataset] = decoding_ceiling(profile, pairing.dataset)[pairing.key("teacher")]
        record["pairings"][paper] = {
            "values": {role: {s: {pairing.metric: _value(r, pairing.key(role))} for s, r in by_seed.items()}
                       for role, by_seed in per_seed.items()},
            "ceiling": ceilings[pairing.dataset],
            "train_time_s": {role: [r["train_time_s"] for r in by_seed.values()]
                             for role, by_seed in per_seed.items()},
            "history": {role: {s: r["history"] for s, r in by_seed.items()} for role, by_seed in per_seed.items()}}
    return calibration_table(record), record


def calibration_table(record: dict) -> pd.DataFrame:
    """The verdicts, recomputed from a record alone (a committed record can be checked against its
    table): per pairing the paired teacher - student gap (claim: >= ``GAP``), the canary's paired
    effect with its SE, verdict and minimum detectable effect, the student's share of the ceiling
    and the mean training minutes per role."""
    rows = {}
    for paper, entry in record["pairings"].items():
        pairing, m = PAIRINGS[paper], PAIRINGS[paper].metric
        values = {role: {int(s): v for s, v in by_seed.items()} for role, by_seed in entry["values"].items()}
        gap = evaluate_claim(Claim(f"teacher beats student by >= {GAP:g}", gain("teacher", "student", m, GAP)),
                             values)
        canary = evaluate_claim(Claim("canary: distillation beats supervised", gain("canary", "student", m)),
                                values)
        mean = {role: float(np.mean([v[m] for v in values[role].values()])) for role in values}
        times = {role: float(np.mean(t)) / 60 for role, t in entry["train_time_s"].items()}
        rows[paper] = {
            "pairing": f"{pairing.teacher_label} -> {pairing.student_label}", "metric": m,
            "teacher": mean["teacher"], "student": mean["student"], "canary": mean["canary"],
            "gap - 3": gap.get("effect", float("nan")), "gap verdict": gap["status"],
            "canary effect": canary.get("effect", float("nan")), "canary SE": canary.get("se", float("nan")),
            "canary verdict": canary["status"], "canary MDE": canary.get("mde", float("nan")),
            "student / ceiling": mean["student"] / entry["ceiling"],
            "teacher min": times["teacher"], "student min": times["student"], "canary min": times["canary"]}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = f"{record['profile']}, {record['seeds']} seeds"
    return table


def published_record(profile: str, root=None) -> dict | None:
    """The committed calibration records of ``profile`` (``docs/results/<profile>/calibration*.json``,
    one per study) merged into one record, so a notebook can show what was measured without
    training; None where nothing is committed (e.g. an installed package without ``docs/``)."""
    from pathlib import Path

    from kdlib.cells import REPO_ROOT
    paths = sorted(Path(root or REPO_ROOT / "docs" / "results").joinpath(profile).glob("calibration*.json"))
    records = [json.loads(path.read_text()) for path in paths]
    if not records:
        return None
    merged = {"profile": profile, "pairings": {}, "sources": [path.name for path in paths]}
    for record in records:
        merged["pairings"].update(record["pairings"])
    seeds = sorted({r["seeds"] for r in records})
    merged["seeds"] = seeds[0] if len(seeds) == 1 else "/".join(map(str, seeds))
    return merged


def markdown(table: pd.DataFrame, prov: dict | None = None) -> str:
    """The table as a markdown page (numbers to 2 decimals), under its provenance line."""
    cells = table.reset_index()
    lines = []
    if prov:
        lines += [f"Produced by `{prov['command']}` at commit `{prov['commit']}` on {prov['machine']}; "
                  f"{prov['jobs']} run(s) at a time, wall time {prov['wall_s'] / 60:.1f} min "
                  f"(finished {prov['finished']}; runs found in the cache are read, not retrained: "
                  f"the `min` columns are each role's mean training time).", ""]
    lines += ["| " + " | ".join(map(str, cells.columns)) + " |", "|" + "---|" * len(cells.columns)]
    for _, row in cells.iterrows():
        lines.append("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    import sys

    from kdlib.cells import results_dir
    from kdlib.reproduce import provenance
    from kdlib.train.checkpoint import atomic_write_text
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="classroom")
    parser.add_argument("--papers", nargs="*", choices=sorted(PAIRINGS), default=None)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    table, record = calibrate(args.profile, args.papers, args.seeds, args.jobs)
    command = "python -m kdlib.studies.calibration " + " ".join(sys.argv[1:] if argv is None else argv)
    record["provenance"] = provenance(time.perf_counter() - start, args.jobs, command)
    out = results_dir(args.profile)
    out.mkdir(parents=True, exist_ok=True)
    name = "calibration" + ("" if args.papers is None else "_" + "_".join(args.papers))
    atomic_write_text(out / f"{name}.csv", table.to_csv(float_format="%.3f"))
    atomic_write_text(out / f"{name}.json", json.dumps(record, indent=1, default=float))
    atomic_write_text(out / f"{name}.md", markdown(table, record["provenance"]))
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.round(2).to_string())
    print(f"wall time {record['provenance']['wall_s'] / 60:.1f} min; written: {out / name}.csv, .json, .md")


def plot_learning_curves(record: dict, papers=None):
    """Validation score against epoch per pairing: the teacher (its longer schedule) and, averaged
    over seeds, the supervised student and the canary. Returns the matplotlib figure."""
    import matplotlib.pyplot as plt
    import numpy as np
    papers = [p for p in (papers or record["pairings"]) if p in record["pairings"]]
    fig, axes = plt.subplots(1, len(papers), figsize=(3.6 * len(papers), 3.0), squeeze=False)
    for ax, paper in zip(axes[0], papers):
        pairing, entry = PAIRINGS[paper], record["pairings"][paper]
        for role, style in (("teacher", "k-"), ("student", "C0-"), ("canary", "C1--")):
            key = "val/" + pairing.key(role)
            curves = [[(h["epoch"], h[key]) for h in history if key in h]
                      for history in entry["history"][role].values()]
            curves = [c for c in curves if c]
            if not curves:
                continue
            epochs = [e for e, _ in curves[0]]
            mean = np.mean([[v for _, v in c] for c in curves if len(c) == len(epochs)], axis=0)
            label = {"teacher": pairing.teacher_label, "student": pairing.student_label,
                     "canary": f"{pairing.student_label} + KD"}[role]
            ax.plot(epochs, mean, style, marker="o", ms=3, label=label)
        ax.set_title(f"{paper} ({pairing.dataset})", fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel(pairing.metric)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    main()
