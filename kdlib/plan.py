"""What a reproduction costs, before it runs: ``python -m kdlib.reproduce <paper> --plan``.

For the chosen tables and seeds, every run the cells need (each paper module's ``row_runs``: the
row's run, its teachers and initialisation, each once), with its resolved epochs, batch and input
size, its state in the run cache (``done``, ``epoch k/N`` for a run that will resume, empty for one
not started) with the training minutes its ``metrics.csv`` records, the training-set size, a
**measured** step time and the planned device-hours, in all and for what is left:

    hours = epochs x ceil(train samples / batch) x (student train step + teachers' forwards) / 3600

The step time is measured here, on this machine's device (a GPU where there is one), for each
distinct (network, head, input size, batch) with random inputs: ``warmup`` untimed steps, then the
median of ``steps`` timed ones, the student's forward/backward/Adam step plus each teacher's
forward. It leaves out data loading (``python -m kdlib.benchmarks data``) and a method's own loss
arithmetic (``python -m kdlib.benchmarks train``: 1.2-3x a plain step on CPU), so it is a lower
bound. Training-set sizes are counted from the files when the dataset is on disk; otherwise the
papers' COCO and MPII sizes are used, marked as quoted.
"""
from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import torch

# Top-down training samples, quoted where the data is not on disk (HRNet's loaders:
# "=> load 149813 samples" for COCO train2017, 22246 for MPII train.json).
QUOTED_TRAIN_SAMPLES = {"coco": 149_813, "mpii": 22_246}


PLAN_COLUMNS = ("model", "head", "method", "dataset", "teachers", "epochs", "batch", "input")


def describe_run(cfg) -> dict:
    """What a run is, in one row: network, head, method (+ its parameters), student builder,
    dataset, number of teachers, resolved epochs / batch / input size / learning rate; a
    released teacher (``CheckpointRef``): its network and whether its file is present."""
    from kdlib.experiment import input_size_for
    from kdlib.models.pretrained import CheckpointRef
    if isinstance(cfg, CheckpointRef):
        state = "present" if cfg.problem() is None else "MISSING " + str(cfg.file())
        return {"model": cfg.model, "head": cfg.head, "method": f"released: {state}", "method_params": {},
                "builder": "", "dataset": "", "teachers": 0, "epochs": 0, "batch": 0,
                "input": cfg.input_size, "lr": None}
    p = cfg.resolved_profile()
    return {"model": cfg.model, "head": cfg.head, "method": cfg.method, "method_params": cfg.method_params,
            "builder": cfg.student_builder, "dataset": cfg.dataset, "teachers": len(cfg.teachers),
            "epochs": p["epochs"], "batch": p["batch_size"], "input": input_size_for(cfg, p),
            "lr": cfg.lr or "recipe"}


def planned_runs(paper: str, profile: str, tables: list[str] | None = None,
                 seeds: list[int] | None = None) -> tuple[pd.DataFrame, dict]:
    """One row per distinct run the cells of ``tables`` x ``seeds`` need, in training order, and
    the configs by run hash."""
    from kdlib.experiment import config_hash
    from kdlib.models.pretrained import CheckpointRef
    from kdlib.paper_tables import paper_module
    from kdlib.profiles import get_profile
    module = paper_module(paper)
    names = tables or [module.HEADLINE]
    seeds = list(seeds if seeds is not None else get_profile(profile)["seeds"])
    rows, seen = [], {}
    for name in names:
        for row in module.TABLES[name].run_rows():
            for seed in seeds:
                for run_name, cfg in module.row_runs(profile, seed, **row.params).items():
                    # a release is loaded, not trained: listed once per file
                    key = f"file:{cfg.path}" if isinstance(cfg, CheckpointRef) else config_hash(cfg)
                    if key in seen:
                        continue
                    seen[key] = cfg
                    described = describe_run(cfg)
                    rows.append({"cell": f"{name} / {row.label} / seed {seed}", "run": run_name, "hash": key,
                                 **{c: described[c] for c in PLAN_COLUMNS},
                                 **run_state(cfg, described["epochs"])})
    return pd.DataFrame(rows).set_index("hash"), seen


def run_state(cfg, epochs: int) -> dict:
    """Where a run stands in the run cache: ``state`` ('done', 'epoch k/N' for a run that resumes
    from its ``last.pt``, '' when not started), ``epochs done`` and ``trained min`` (the epoch
    times its ``metrics.csv`` records, on whichever machine trained it; None when there are none).
    A released teacher is a file, never trained: its state is in ``method``."""
    from kdlib.experiment import run_dir_of
    from kdlib.models.pretrained import CheckpointRef
    if isinstance(cfg, CheckpointRef):
        return {"state": "", "epochs done": 0, "trained min": None}
    run_dir = run_dir_of(cfg)
    done = (run_dir / "result.json").exists()
    history = pd.DataFrame()
    if (run_dir / "metrics.csv").exists():
        try:
            history = pd.read_csv(run_dir / "metrics.csv")
        except (pd.errors.EmptyDataError, pd.errors.ParserError):
            pass                            # unreadable: the trainer restarts it; count nothing
    trained = len(history) if not done else epochs
    minutes = (float(history["epoch_time_s"].sum()) / 60 if "epoch_time_s" in history and len(history)
               else None)
    state = "done" if done else (f"epoch {trained}/{epochs}" if trained else "")
    return {"state": state, "epochs done": trained, "trained min": minutes}


def train_samples(profile: str, dataset: str) -> tuple[int | None, str]:
    """(number of training samples, 'counted' | 'quoted' | why unknown)."""
    from kdlib.experiment import ExperimentConfig, build_datasets, ensure_data
    cfg = ExperimentConfig(profile=profile, dataset=dataset)
    try:
        p = cfg.resolved_profile()
        ensure_data(p)
        train_set, _, _ = build_datasets(cfg, p)
        return len(train_set), "counted"
    except (FileNotFoundError, OSError, ValueError, KeyError) as exc:
        if dataset in QUOTED_TRAIN_SAMPLES:
            return QUOTED_TRAIN_SAMPLES[dataset], "quoted"
        return None, f"unknown ({type(exc).__name__}: dataset not on disk)"


def step_seconds(cfg, device: str | None = None, warmup: int = 1, steps: int = 3) -> float:
    """Median seconds of one training step of ``cfg``'s student with random inputs (+ teachers'
    forwards), on ``device`` (default: the profile's)."""
    from kdlib.experiment import input_size_for
    from kdlib.models import build_model
    p = cfg.resolved_profile()
    device = device or p["device"]
    size = input_size_for(cfg, p)
    joints = 17
    extra = {k: v for k, v in cfg.model_params.items() if k != "pretrained"}   # no weight files needed
    student = build_model(cfg.model, num_joints=joints, head=cfg.head, input_size=size,
                          variant=p["model_variant"], **extra).to(device).train()
    teachers = [build_model(t.model, num_joints=joints, head=t.head, input_size=size,   # random weights
                            variant=t.variant if hasattr(t, "variant") else t.resolved_profile()["model_variant"],
                            **{k: v for k, v in t.model_params.items() if k != "pretrained"}).to(device).eval()
                for t in cfg.teachers.values()]
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-4)
    x = torch.randn(p["batch_size"], 3, *size, device=device)
    times = []
    for i in range(warmup + steps):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.no_grad():
            for teacher in teachers:
                teacher(x)
        out = student(x)
        loss = sum(v.float().pow(2).mean() for v in out.values() if isinstance(v, torch.Tensor)
                   and v.requires_grad)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return float(np.median(times))


def plan(paper: str, profile: str, tables: list[str] | None = None, seeds: list[int] | None = None,
         measure: bool = True) -> pd.DataFrame:
    """``planned_runs`` + training samples, measured step time and planned device-hours per run."""
    runs, configs = planned_runs(paper, profile, tables, seeds)
    samples = {d: train_samples(profile, d) for d in runs["dataset"].unique() if d}
    samples[""] = (None, "released")
    runs["train samples"] = [samples[d][0] for d in runs["dataset"]]
    runs["samples from"] = [samples[d][1] for d in runs["dataset"]]
    runs["steps"] = [math.ceil(n / b) * e if n and b else None
                     for n, b, e in zip(runs["train samples"], runs["batch"], runs["epochs"])]
    if measure:
        cache: dict[tuple, float] = {}
        step = []
        for key, r in runs.iterrows():
            if key.startswith("file:"):
                step.append(None)
                continue
            ident = (r["model"], r["head"], r["input"], r["batch"], r["teachers"])
            if ident not in cache:
                cache[ident] = step_seconds(configs[key])
            step.append(cache[ident])
        runs["step s"] = step
        runs["device-hours"] = [s * n / 3600 if s is not None and n else None
                                for s, n in zip(runs["step s"], runs["steps"])]
        runs["hours left"] = [h * (1 - d / e) if h is not None and e else None
                              for h, d, e in zip(runs["device-hours"], runs["epochs done"], runs["epochs"])]
    return runs


def describe(table: pd.DataFrame, device: str) -> str:
    """The plan as text: one line per run and the total."""
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 60):
        text = table.drop(columns=["samples from", "epochs done"]).to_string(
            float_format=lambda v: f"{v:.3g}", na_rep="")
    quoted = sorted(set(table.loc[table["samples from"] == "quoted", "dataset"]))
    done = int((table["state"] == "done").sum())
    partial = int(table["state"].str.startswith("epoch").sum())
    trained = table["trained min"].sum()
    lines = [text, f"{len(table)} runs: {done} done, {partial} partly trained (they resume where they stopped), "
                   f"{len(table) - done - partial} not started; {trained:.0f} training minutes recorded "
                   "in their metrics.csv."]
    if "step s" in table:
        lines.append(f"step times measured on {device} with random inputs "
                     "(a lower bound: no data loading, no method loss).")
    if quoted:
        lines.append(f"training-set sizes quoted (not on disk): {', '.join(quoted)} "
                     f"({', '.join(f'{d} {QUOTED_TRAIN_SAMPLES[d]}' for d in quoted)} samples)")
    if "device-hours" in table and table["device-hours"].notna().any():
        lines.append(f"planned: {table['device-hours'].sum():.2f} device-hours in all, "
                     f"{table['hours left'].sum():.2f} left (one run after another on one device)")
    return "\n".join(lines)
