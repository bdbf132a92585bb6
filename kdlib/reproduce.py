"""Batch reproduction: a paper's notebook x its table cells -> the paper table with the kit's numbers.

    python -m kdlib.reproduce sdp --table table4 --profile classroom --seeds 3 --jobs 2
    python -m kdlib.reproduce all --profile quick          # README main job: every HEADLINE table
    python -m kdlib.reproduce sdp --executor submitit --cluster slurm --slurm-partition gpu

Every run-row of a table, once per seed, is one *cell*: the paper's notebook executed by papermill
with parameters ``profile``, ``seed``, ``result_path`` and the row's ``params``. The notebook trains
(through ``kdlib.experiment.run_experiment``, cached, so rows sharing a run train it once) and
ends with ``save_cell_result(result_path, metrics)``. Cells run in parallel local processes
(``--jobs``) or as submitit jobs; each executed notebook and its result JSON are kept under
``results/<profile>/<paper>/cells/``. A cell whose result exists is skipped on re-run; a failed
cell is reported with the path of its executed notebook and does not stop the others. Inside a
cell, several visible GPUs make ``run_experiment`` train with DDP via torchrun (kdlib/train/ddp.py);
with ``--jobs`` > 1 on a multi-GPU node give each job its GPUs with ``CUDA_VISIBLE_DEVICES``.

The driver then writes, per paper, ``<table>.csv`` / ``<table>.md`` (kit mean +- std over seeds,
the paper's number, the difference; quoted rows marked) and ``summary.json`` with the claims
ledger, and (re)writes ``results/<profile>/REPORT.md`` over all papers run so far.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import math
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kdlib.paper_tables import Stat, Table, aggregate, evaluate_claim
from kdlib.train.checkpoint import atomic_write_text

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
PAPERS = {  # short name -> (notebook, paper-table module or None for a table-less notebook)
    "data": ("00_data_and_metrics.ipynb", None),
    "sdp": ("01_sdp.ipynb", "kdlib.paper_tables.sdp"),
    "two_stage_gcn": ("02_two_stage_gcn.ipynb", "kdlib.paper_tables.two_stage_gcn"),
    "ekr": ("03_enhanced_knowledge_review.ipynb", "kdlib.paper_tables.ekr"),
    "unified": ("04_unified_skeleton.ipynb", "kdlib.paper_tables.unified"),
    "elpn_mapd": ("05_elpn_mapd.ipynb", "kdlib.paper_tables.elpn_mapd"),
}
# result keys a notebook may save under the kit's own names, read for these table columns
COLUMN_ALIASES = {"GFLOPs": "gflops_paper", "Params": "params_M", "Params (M)": "params_M",
                  "#Params": "params_M", "Training Time (h)": "train_time_h"}


def save_cell_result(result_path: str | os.PathLike | None, metrics: dict, **extra) -> None:
    """Called by a notebook's last cell: write its metrics for the driver (atomic JSON).

    ``metrics``: flat {name: number}, named like the table's columns (e.g. 'AP', 'Mean', 'GFLOPs')
    or with the kit's keys (``params_M``, ``gflops_paper``, ``train_time_s``). A no-op when
    ``result_path`` is empty (the notebook run interactively).
    """
    if not result_path:
        return
    clean = {}
    for key, value in metrics.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise TypeError(f"save_cell_result: metric {key!r} must be a number, got {type(value).__name__}")
        clean[key] = float(value)
    if "train_time_s" in clean:
        clean.setdefault("train_time_h", clean["train_time_s"] / 3600)
    payload = {"metrics": clean, "finished": time.strftime("%Y-%m-%d %H:%M:%S"), **extra}
    atomic_write_text(result_path, json.dumps(payload, indent=1, default=str))


@dataclass
class Cell:
    paper: str
    notebook: str               # input notebook (absolute)
    params: dict                # papermill parameters, including profile / seed / result_path
    output_notebook: str
    result_path: str
    rows: list = field(default_factory=list)   # [(table, row label)] this cell feeds


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:40] or "cell"


def plan_cells(paper: str, notebook: Path, tables: dict[str, Table], profile: str,
               seeds: list[int], out_dir: Path) -> list[Cell]:
    """One cell per distinct (row params, seed); rows with identical params share a cell."""
    cells: dict[str, Cell] = {}
    for table_name, table in tables.items():
        for row in table.run_rows():
            for seed in seeds:
                params = {**row.params, "profile": profile, "seed": seed}
                key = hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:10]
                if key not in cells:
                    stem = f"{_slug(row.label)}_s{seed}_{key}"
                    result_path = str(out_dir / "cells" / f"{stem}.json")
                    cells[key] = Cell(paper, str(notebook), {**params, "result_path": result_path},
                                      str(out_dir / "cells" / f"{stem}.ipynb"), result_path)
                cells[key].rows.append((table_name, row.label))
    return list(cells.values())


def cell_done(cell: Cell) -> bool:
    try:
        return "metrics" in json.loads(Path(cell.result_path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return False


def run_cell(cell: Cell, threads: int | None = None, timeout: int | None = None) -> dict:
    """Execute one cell with papermill; never raises (the outcome says what happened)."""
    import papermill
    if threads:   # one thread count for every runtime (a mismatch oversubscribes the cores)
        count = os.environ.get("OMP_NUM_THREADS", str(threads))
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = count
    Path(cell.output_notebook).parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        papermill.execute_notebook(cell.notebook, cell.output_notebook, parameters=cell.params,
                                   cwd=str(Path(cell.notebook).parent), progress_bar=False,
                                   execution_timeout=timeout)
        status, error = ("ok", "") if cell_done(cell) else \
            ("failed", "the notebook finished without writing result_path (save_cell_result)")
    except Exception as exc:  # noqa: BLE001 -- a failing cell must not stop the others
        lines = str(exc).strip().splitlines() or [""]
        status, error = "failed", f"{type(exc).__name__}: {lines[-1][:300]}"
    return {"status": status, "error": error, "notebook": cell.output_notebook,
            "result_path": cell.result_path, "seconds": time.perf_counter() - start}


def run_cells(cells: list[Cell], jobs: int = 1, executor: str = "local", cluster: str | None = None,
              folder: Path | None = None, timeout: int | None = None, slurm: dict | None = None,
              show_progress: bool = True) -> list[dict]:
    """Run the cells not done yet; return one outcome per cell (skipped ones included)."""
    from tqdm.auto import tqdm
    outcomes = {id(c): {"status": "skipped", "error": "", "notebook": c.output_notebook,
                        "result_path": c.result_path, "seconds": 0.0} for c in cells if cell_done(c)}
    todo = [c for c in cells if id(c) not in outcomes]
    threads = max(1, (os.cpu_count() or 1) // max(1, jobs))
    if executor == "submitit" and todo:
        outcomes.update(_run_submitit(todo, cluster, folder, timeout, slurm or {}, threads))
    elif executor == "local" and todo:
        with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {pool.submit(run_cell, c, threads, timeout): c for c in todo}
            for future in tqdm(as_completed(futures), total=len(futures), desc="cells",
                               disable=not show_progress):
                outcomes[id(futures[future])] = future.result()
    elif executor not in ("local", "submitit"):
        raise ValueError(f"executor must be 'local' or 'submitit', got {executor!r}")
    return [outcomes[id(c)] for c in cells]


def _run_submitit(cells, cluster, folder, timeout, slurm: dict, threads) -> dict:
    """Submit each cell as a submitit job (SLURM, or cluster='local'/'debug' to test)."""
    import submitit
    ex = submitit.AutoExecutor(folder=str(folder or REPO_ROOT / "results" / "submitit"), cluster=cluster)
    ex.update_parameters(timeout_min=max(1, (timeout or 24 * 3600) // 60), **slurm)
    jobs = [(c, ex.submit(run_cell, c, threads, timeout)) for c in cells]
    out = {}
    for cell, job in jobs:
        try:
            out[id(cell)] = job.result()
        except Exception as exc:  # noqa: BLE001 -- the job itself died (preempted, OOM, ...)
            out[id(cell)] = {"status": "failed", "error": f"submitit job {job.job_id}: {exc}",
                             "notebook": cell.output_notebook, "result_path": cell.result_path,
                             "seconds": 0.0}
    return out


# ----------------------------------------------------------------------------- tables
def cell_values(table: Table, metrics: dict) -> dict[str, float]:
    """A cell's metrics under the table's column names (aliases for the kit's own keys)."""
    out = {}
    for column in table.columns:
        key = column if column in metrics else COLUMN_ALIASES.get(column)
        if key in metrics:
            out[column] = metrics[key]
    return out


def collect(table_name: str, table: Table, cells: list[Cell]) -> dict[str, dict[int, dict]]:
    """{row label: {seed: column values}} from the cells' result files (+ derived columns)."""
    per_row: dict[str, dict[int, dict]] = {r.label: {} for r in table.run_rows()}
    for cell in cells:
        if not cell_done(cell):
            continue
        metrics = json.loads(Path(cell.result_path).read_text())["metrics"]
        for tname, label in cell.rows:
            if tname == table_name:
                per_row[label][cell.params["seed"]] = cell_values(table, metrics)
    return with_derived(table, per_row)


def with_derived(table: Table, per_row: dict[str, dict[int, dict]]) -> dict[str, dict[int, dict]]:
    """{row label: {seed: columns}} + the table's derived columns, computed per seed."""
    seeds = sorted({s for runs in per_row.values() for s in runs})
    for column, derive in table.derived.items():
        for seed in seeds:
            view = {label: runs[seed] for label, runs in per_row.items() if seed in runs}
            try:
                values = derive(view)
            except KeyError:
                continue
            for label, value in values.items():
                per_row[label][seed][column] = value
    return {label: dict(sorted(runs.items())) for label, runs in per_row.items()}


def _fmt(value: float, digits: int = 2) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def baseline_effects(table: Table, per_seed: dict) -> dict[str, dict[str, Stat]]:
    """Each run row's paired effect over its baseline row (``Table.baselines``) per column:
    {label: {column: Stat}} (mean and standard error of the per-seed differences, over the seeds
    both rows ran)."""
    out = {}
    for label, base_label in table.baselines().items():
        runs, base = per_seed.get(label), per_seed.get(base_label)
        if label == base_label or not isinstance(runs, dict) or not isinstance(base, dict):
            continue
        out[label] = {}
        for column in table.columns:
            diffs = [runs[s][column] - base[s][column] for s in sorted(set(runs) & set(base))
                     if column in runs[s] and column in base[s]]
            diffs = [d for d in diffs if math.isfinite(d)]
            if diffs:
                se = float(np.std(diffs, ddof=1) / math.sqrt(len(diffs))) if len(diffs) > 1 else math.nan
                out[label][column] = Stat(float(np.mean(diffs)), se, len(diffs))
    return out


def assemble_table(table: Table, per_seed: dict, relative: bool = False):
    """Long numeric DataFrame (row, column, kit_mean, kit_std, seeds, paper, diff, effect, effect_se,
    paper_effect) + markdown. ``relative`` (SynthPose profiles, where absolute numbers are not
    comparable with the papers'): each run row shows its paired effect over ``table.baseline``
    beside the paper's effect, instead of a difference from the paper's absolute number."""
    import pandas as pd
    stats = aggregate(per_seed)
    effects = baseline_effects(table, per_seed)
    baselines = table.baselines()
    papers = {r.label: r.paper for r in table.rows}
    records, lines = [], []
    lines.append("| Row | " + " | ".join(table.columns) + " |")
    lines.append("|---|" + "---|" * len(table.columns))
    for row in table.rows:
        cells = []
        for column in table.columns:
            paper = row.paper.get(column)
            stat = stats.get(row.label, {}).get(column) if row.kind == "run" else None
            kit = stat.mean if stat else math.nan
            diff = kit - paper if (stat and paper is not None) else math.nan
            effect = effects.get(row.label, {}).get(column)
            is_baseline = baselines.get(row.label) == row.label
            paper_base = papers.get(baselines.get(row.label), {}).get(column)
            paper_effect = (paper - paper_base if paper is not None and paper_base is not None
                            and not is_baseline else math.nan)
            records.append(dict(row=row.label, kind=row.kind, column=column, kit_mean=kit,
                                kit_std=stat.std if stat else math.nan, seeds=stat.n if stat else 0,
                                paper=paper if paper is not None else math.nan, diff=diff,
                                effect=effect.mean if effect else math.nan,
                                effect_se=effect.std if effect else math.nan, paper_effect=paper_effect))
            if row.kind == "quoted":
                cells.append(f"{_fmt(paper)} (quoted)" if paper is not None else "–")
            elif stat is None:
                cells.append(f"not run (paper {_fmt(paper)})" if paper is not None else "not run")
            elif relative:
                cells.append(_relative_cell(stat, effect, paper, paper_effect, is_baseline))
            else:
                spread = f" ± {_fmt(stat.std)}" if stat.n > 1 else ""
                ref = f" (paper {_fmt(paper)}, Δ {diff:+.2f})" if paper is not None else ""
                cells.append(f"{_fmt(kit)}{spread}{ref}")
        label = f"{row.label} *(quoted)*" if row.kind == "quoted" else row.label
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return pd.DataFrame.from_records(records), "\n".join(lines)


def _relative_cell(stat: Stat, effect: Stat | None, paper: float | None, paper_effect: float,
                   is_baseline: bool) -> str:
    """A SynthPose cell: the kit's value, and its paired effect over the baseline beside the
    paper's effect (the paper's absolute number only where the table has no baseline)."""
    spread = f" ± {_fmt(stat.std)}" if stat.n > 1 else ""
    if is_baseline:
        return f"{_fmt(stat.mean)}{spread} (baseline)"
    if effect is None:
        return f"{_fmt(stat.mean)}{spread}" + (f" (paper {_fmt(paper)})" if paper is not None else "")
    se = f" ± {_fmt(effect.std)}" if effect.n > 1 else ""
    ref = f"; paper {paper_effect:+.2f}" if math.isfinite(paper_effect) else ""
    return f"{_fmt(stat.mean)}{spread} (effect {effect.mean:+.2f}{se}{ref})"


# ----------------------------------------------------------------------------- driver
def load_tables(module_name: str | None) -> tuple[dict[str, Table], str | None]:
    if module_name is None:
        return {}, None
    module = importlib.import_module(module_name)
    return module.TABLES, getattr(module, "HEADLINE", None)


def results_dir(profile: str, root: Path | None = None) -> Path:
    return Path(root or os.environ.get("KDLIB_RESULTS", REPO_ROOT / "results")) / profile


def reproduce(paper: str, profile: str = "quick", tables: list[str] | None = None,
              seeds: int | None = None, jobs: int = 1, executor: str = "local",
              cluster: str | None = None, results_root: Path | None = None,
              notebook: Path | None = None, tables_module: str | None = None,
              timeout: int | None = None, slurm: dict | None = None, headline_only: bool = False,
              show_progress: bool = True) -> dict:
    """Run one paper's cells and assemble its tables; returns (and stores) the paper summary.

    ``notebook`` / ``tables_module`` override ``PAPERS[paper]`` (tests use a toy pair).
    ``seeds``: the first N seeds (default: the profile's ``seeds``).
    """
    from kdlib.profiles import get_profile
    default_nb, default_module = PAPERS.get(paper, (None, None))
    notebook = Path(notebook or NOTEBOOKS_DIR / default_nb)
    all_tables, headline = load_tables(tables_module or default_module)
    names = tables or ([headline] if headline_only and headline else list(all_tables))
    unknown = [n for n in names if n not in all_tables]
    if unknown:
        raise KeyError(f"{paper}: unknown table(s) {unknown}; available: {sorted(all_tables)}")
    if seeds is not None and (not isinstance(seeds, int) or seeds < 1):
        raise ValueError(f"seeds must be a positive integer (the first N seeds) or None, got {seeds!r}")
    seed_list = list(range(seeds)) if seeds else list(get_profile(profile)["seeds"])
    synthetic = get_profile(profile).get("synthpose") is not None      # SynthPose: effects, not absolutes
    out_dir = results_dir(profile, results_root) / paper
    chosen = {n: all_tables[n] for n in names}
    if chosen:
        cells = plan_cells(paper, notebook, chosen, profile, seed_list, out_dir)
    else:                                   # a table-less notebook (00): one cell
        result_path = out_dir / "cells" / "notebook_s0.json"
        cells = [Cell(paper, str(notebook), {"profile": profile, "seed": seed_list[0],
                                             "result_path": str(result_path)},
                      str(out_dir / "cells" / "notebook_s0.ipynb"), str(result_path))]
    outcomes = run_cells(cells, jobs, executor, cluster, out_dir / "submitit", timeout, slurm,
                         show_progress)
    summary = {"paper": paper, "profile": profile, "seeds": seed_list, "notebook": str(notebook),
               "cells": [dict(params=c.params, rows=c.rows, **o) for c, o in zip(cells, outcomes)],
               "tables": {}, "failed_now": [o["notebook"] for o in outcomes if o["status"] == "failed"]}
    for name, table in chosen.items():
        per_seed = collect(name, table, cells)
        frame, markdown = assemble_table(table, per_seed, relative=synthetic)
        frame.to_csv(out_dir / f"{name}.csv", index=False)
        atomic_write_text(out_dir / f"{name}.md", f"### {table.title}\n\n{markdown}\n")
        summary["tables"][name] = {"title": table.title, "markdown": markdown,
                                   "claims": [evaluate_claim(c, per_seed) for c in table.claims]}
    _merge_previous(out_dir / "summary.json", summary)
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=1, default=str))
    write_report(profile, results_root)
    for o in outcomes:
        if o["status"] == "failed":
            print(f"FAILED cell: {o['error']}\n  executed notebook: {o['notebook']}")
    return summary


def _merge_previous(path: Path, summary: dict) -> None:
    """Keep tables and cells of earlier invocations that this one did not touch."""
    if not path.is_file():
        return
    previous = json.loads(path.read_text())
    for name, table in previous.get("tables", {}).items():
        summary["tables"].setdefault(name, table)
    seen = {c["result_path"] for c in summary["cells"]}
    summary["cells"] += [c for c in previous.get("cells", []) if c["result_path"] not in seen]


def _paper_order(path: Path) -> tuple:
    names = list(PAPERS)
    name = path.parent.name
    return (names.index(name) if name in names else len(names), name)


def write_report(profile: str, results_root: Path | None = None) -> Path:
    """``results/<profile>/REPORT.md`` from every paper summary present."""
    root = results_dir(profile, results_root)
    lines = [f"# kdlib reproduction report — profile `{profile}`", "",
             "Kit numbers are mean ± std over seeds (no ± with one seed). Rows marked *(quoted)* "
             "are the paper's literature numbers, not run by the kit. On SynthPose profiles the "
             "absolute numbers are not comparable with the papers': a row shows its paired effect "
             "over its table's baseline (mean ± standard error of the per-seed differences) beside "
             "the paper's effect. On real data Δ = kit − paper. Claims are judged on paired seeds "
             "(a one-sided t-test of the per-seed effects at alpha 0.05); an inconclusive claim "
             "states the smallest effect its seeds could have detected.", ""]
    for summary_path in sorted(root.glob("*/summary.json"), key=_paper_order):
        summary = json.loads(summary_path.read_text())
        paper_dir = summary_path.parent
        lines += [f"## {summary['paper']}", "",
                  f"Notebook `{Path(summary['notebook']).name}`, seeds {summary['seeds']}.", ""]
        lines += _cells_section(summary, root)
        for name, table in summary["tables"].items():
            lines += [f"### {table['title']}", "", table["markdown"], ""]
            if table["claims"]:
                lines += ["| Claim | Verdict | Detail |", "|---|---|---|"]
                lines += [f"| {c['claim']} | **{c['status']}** | {c['detail']} |" for c in table["claims"]]
                lines.append("")
        figures = sorted(p for ext in ("png", "svg", "pdf") for p in paper_dir.rglob(f"*.{ext}"))
        if figures:
            lines += ["Figures: " + ", ".join(f"[{p.name}]({p.relative_to(root)})" for p in figures), ""]
    path = root / "REPORT.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def _cells_section(summary: dict, root: Path) -> list[str]:
    counts = {}
    for cell in summary["cells"]:
        counts[cell["status"]] = counts.get(cell["status"], 0) + 1
    lines = ["Cells: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + "."]
    for cell in summary["cells"]:
        if cell["status"] == "failed":
            nb = Path(cell["notebook"])
            link = nb.relative_to(root) if nb.is_relative_to(root) else nb
            lines.append(f"- FAILED {cell['rows'] or cell['params']}: {cell['error']} "
                         f"([executed notebook]({link}))")
    return lines + [""]


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (``--seeds 0`` used to mean 'the default' silently)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer (>= 1), got {value}")
    return value


def main(argv=None) -> None:
    """Exit status 1 when any cell failed (after every paper has run and the report is written)."""
    parser = argparse.ArgumentParser(description="Reproduce a paper's tables by running its notebook.")
    parser.add_argument("paper", choices=[*PAPERS, "all"])
    parser.add_argument("--table", action="append", help="table name (repeatable; default: all, "
                        "or the HEADLINE table with 'all --profile quick')")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--seeds", type=_positive_int, default=None,
                        help="first N seeds, N >= 1 (default: the profile's)")
    parser.add_argument("--jobs", type=_positive_int, default=1, help="cells in parallel")
    parser.add_argument("--executor", choices=["local", "submitit"], default="local")
    parser.add_argument("--cluster", default=None, help="submitit cluster: slurm | local | debug")
    parser.add_argument("--slurm-partition", default=None)
    parser.add_argument("--gpus-per-node", type=int, default=None)
    parser.add_argument("--timeout", type=int, default=None, help="seconds per notebook cell")
    args = parser.parse_args(argv)
    slurm = {k: v for k, v in (("slurm_partition", args.slurm_partition),
                                ("gpus_per_node", args.gpus_per_node)) if v is not None}
    papers = list(PAPERS) if args.paper == "all" else [args.paper]
    headline_only = args.paper == "all" and args.profile == "quick" and not args.table
    failed = 0
    for paper in papers:
        summary = reproduce(paper, args.profile, args.table, args.seeds, args.jobs, args.executor,
                            args.cluster, timeout=args.timeout, slurm=slurm, headline_only=headline_only)
        failed += len(summary["failed_now"])      # this invocation's cells only
    print(f"report: {results_dir(args.profile) / 'REPORT.md'}")
    if failed:
        print(f"{failed} cell(s) failed: see the FAILED lines above")
        sys.exit(1)



if __name__ == "__main__":
    main()
