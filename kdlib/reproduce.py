"""Batch reproduction: a paper's notebook x its table cells -> the paper table with the kit's numbers.

    python -m kdlib.reproduce sdp --table table4 --profile classroom --seeds 3 --jobs 2
    python -m kdlib.reproduce all --profile quick          # README main job: every HEADLINE table
    python -m kdlib.reproduce all --profile classroom --headline --jobs 2
    python -m kdlib.reproduce all --profile classroom --publish docs/results   # commit what ran
    python -m kdlib.reproduce sdp --executor submitit --cluster slurm --slurm-partition gpu

Every run-row of a table, once per seed, is one *cell*: the paper's notebook executed by papermill
with parameters ``profile``, ``seed``, ``result_path`` and the row's ``params``. The notebook trains
(through ``kdlib.experiment.run_experiment``, cached, so rows sharing a run train it once) and
ends with ``save_cell_result(result_path, metrics)`` (``kdlib.cells``: the notebook side of the contract). Cells run in parallel local processes
(``--jobs``) or as submitit jobs; each executed notebook and its result JSON are kept under
``results/<profile>/<paper>/cells/``. A cell whose result exists is skipped on re-run; a failed
cell is reported with the path of its executed notebook and does not stop the others. Inside a
cell, several visible GPUs make ``run_experiment`` train with DDP via torchrun (kdlib/train/ddp.py);
with ``--jobs`` > 1 on a multi-GPU node give each job its GPUs with ``CUDA_VISIBLE_DEVICES``.

The driver then writes, per paper, ``<table>.csv`` / ``<table>.md`` (``kdlib.paper_tables.assemble``:
the kit's mean +- std over seeds beside the paper's number, or on SynthPose each row's paired
effect beside the paper's; quoted rows marked) and ``summary.json`` with the claims
ledger, and (re)writes ``results/<profile>/REPORT.md`` over all papers run so far.

Bad input. A cell whose parameters the notebook's ``parameters`` cell does not declare fails
before it runs (papermill itself only warns and runs the defaults); the notebooks reject one too,
in their cell after the injected parameters (``check_parameters``), for papermill run by hand. A
cell past ``--timeout`` fails naming its notebook cell and the limit. A corrupt cell result is
recomputed; a corrupt ``summary.json`` is named and set aside
(``kdlib.train.checkpoint.quarantine``), and the report goes on with the other papers. Runs whose
loss diverged (``kdlib.train.trainer.divergence``) are listed in the report under their paper.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from kdlib.cells import (NOTEBOOKS_DIR, REPO_ROOT, Cell, check_cell_parameters, cell_done, plan_cells,
                         results_dir)
from kdlib.paper_tables import PAPERS, Table, evaluate_claim
from kdlib.paper_tables.assemble import assemble_table, cell_values, with_derived
from kdlib.train.checkpoint import (CorruptFileError, atomic_write_text, read_json,
                                    read_json_or_isolate)


def run_cell(cell: Cell, threads: int | None = None, timeout: int | None = None) -> dict:
    """Execute one cell with papermill; never raises (the outcome says what happened).

    Its parameters are checked against the notebook's declared ones first (``ParameterError``:
    nothing runs); ``timeout``: seconds per notebook cell (the error names the cell and the limit).
    """
    import papermill
    from nbclient.exceptions import CellTimeoutError
    if threads:   # one thread count for every runtime (a mismatch oversubscribes the cores)
        count = os.environ.get("OMP_NUM_THREADS", str(threads))
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = count
    Path(cell.output_notebook).parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        check_cell_parameters(cell)
        papermill.execute_notebook(cell.notebook, cell.output_notebook, parameters=cell.params,
                                   cwd=str(Path(cell.notebook).parent), progress_bar=False,
                                   execution_timeout=timeout)
        status, error = ("ok", "") if cell_done(cell) else \
            ("failed", "the notebook finished without writing result_path (save_cell_result)")
    except CellTimeoutError:
        status, error = "failed", _timeout_message(cell.output_notebook, timeout)
    except Exception as exc:  # noqa: BLE001 -- a failing cell must not stop the others
        lines = str(exc).strip().splitlines() or [""]
        status, error = "failed", f"{type(exc).__name__}: {lines[-1][:300]}"
    return {"status": status, "error": error, "notebook": cell.output_notebook,
            "result_path": cell.result_path, "seconds": time.perf_counter() - start}


def _timeout_message(output_notebook: str, timeout: int | None) -> str:
    """'CellTimeoutError: cell 7 (In [6]: `result = run_experiment(cfg)`) ran past ...': the last
    cell papermill started in the executed notebook (its index counts the injected cell)."""
    where = "a cell"
    try:
        cells = json.loads(Path(output_notebook).read_text())["cells"]
        started = [(i, c) for i, c in enumerate(cells)
                   if c.get("metadata", {}).get("papermill", {}).get("start_time")]
        if started:
            index, cell = started[-1]
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            first = next((line.strip() for line in source.splitlines()
                          if line.strip() and not line.strip().startswith("#")), "")
            where = f"cell {index} (In [{cell.get('execution_count')}]: `{first[:80]}`)"
    except (OSError, ValueError, KeyError):
        pass
    return (f"CellTimeoutError: {where} of {Path(output_notebook).name} ran past the per-cell time "
            f"limit of {timeout} s (--timeout {timeout}); raise --timeout, or run the row on a "
            "faster device or smaller profile")


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



# ----------------------------------------------------------------------------- driver
def provenance(wall_s: float, jobs: int, command: str | None = None) -> dict:
    """Where a summary's numbers come from: commit (``-dirty`` with uncommitted changes), the
    command, the machine, the wall time of the cells that ran and how many ran at once."""
    import platform

    import torch

    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                                  timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "--untracked-files=no", "--", "kdlib", "notebooks"):
        commit += "-dirty"
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    machine = (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, {device}, "
               f"Python {platform.python_version()}, torch {torch.__version__}")
    main_spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if command is None:
        command = "python -m kdlib.reproduce " + " ".join(sys.argv[1:]) \
            if main_spec is not None and main_spec.name == "kdlib.reproduce" else "kdlib.reproduce.reproduce(...)"
    return {"commit": commit, "command": command, "machine": machine, "wall_s": round(wall_s, 1),
            "jobs": jobs, "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def load_tables(module_name: str | None) -> tuple[dict[str, Table], str | None]:
    if module_name is None:
        return {}, None
    module = importlib.import_module(module_name)
    return module.TABLES, getattr(module, "HEADLINE", None)


def reproduce(paper: str, profile: str = "quick", tables: list[str] | None = None,
              seeds: int | None = None, jobs: int = 1, executor: str = "local",
              cluster: str | None = None, results_root: Path | None = None,
              notebook: Path | None = None, tables_module: str | None = None,
              timeout: int | None = None, slurm: dict | None = None, headline_only: bool = False,
              show_progress: bool = True, assemble_only: bool = False) -> dict:
    """Run one paper's cells and assemble its tables; returns (and stores) the paper summary.

    ``notebook`` / ``tables_module`` override ``PAPERS[paper]`` (tests use a toy pair).
    ``seeds``: the first N seeds (default: the profile's ``seeds``). ``assemble_only``: run no
    cell; assemble the tables from the result files present (``reassemble``).
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
    start = time.perf_counter()
    if assemble_only:
        outcomes = [{"status": "skipped" if cell_done(c) else "not run", "error": "", "seconds": 0.0,
                     "notebook": c.output_notebook, "result_path": c.result_path} for c in cells]
    else:
        outcomes = run_cells(cells, jobs, executor, cluster, out_dir / "submitit", timeout, slurm,
                             show_progress)
    ran = [o for o in outcomes if o["status"] not in ("skipped", "not run")]
    resolved = notebook.resolve()                  # stored repository-relative: no machine paths
    shown = resolved.relative_to(REPO_ROOT) if resolved.is_relative_to(REPO_ROOT) else notebook
    summary = {"paper": paper, "profile": profile, "seeds": seed_list, "notebook": str(shown),
               "tables_module": tables_module or default_module,
               "cells": [dict(params=c.params, rows=c.rows, **o) for c, o in zip(cells, outcomes)],
               "tables": {}, "failed_now": [o["notebook"] for o in outcomes if o["status"] == "failed"]}
    prov = provenance(time.perf_counter() - start, jobs) if ran else None
    if ran:       # a re-assembly that ran nothing keeps the provenance of the run that trained
        summary["provenance"] = prov
        summary["diverged"] = diverged_runs(profile).get(paper, [])
    for name, table in chosen.items():
        per_seed = collect(name, table, cells)
        frame, markdown = assemble_table(table, per_seed, relative=synthetic)
        atomic_write_text(out_dir / f"{name}.csv", frame.to_csv(index=False))
        atomic_write_text(out_dir / f"{name}.md", f"### {table.title}\n\n{markdown}\n")
        summary["tables"][name] = {"title": table.title, "markdown": markdown,
                                   "claims": [evaluate_claim(c, per_seed, paper=table.paper_values())
                                              for c in table.claims]}
        if prov:
            summary["tables"][name]["provenance"] = prov
    _merge_previous(out_dir / "summary.json", summary)
    order = list(all_tables)                   # the paper's order, whichever table ran last
    summary["tables"] = dict(sorted(summary["tables"].items(),
                                    key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=1, default=str))
    write_report(profile, results_root, run_cache=not assemble_only)
    for o in outcomes:
        if o["status"] == "failed":
            print(f"FAILED cell: {o['error']}\n  executed notebook: {o['notebook']}")
    return summary


SUMMARY_KEYS = ("paper", "notebook", "seeds", "cells", "tables")


def _summary_problem(value) -> str | None:
    missing = [k for k in SUMMARY_KEYS if k not in value] if isinstance(value, dict) else SUMMARY_KEYS
    return f"not a paper summary (missing {', '.join(missing)})" if missing else None


def read_summary(path: Path) -> dict | None:
    """A paper's ``summary.json`` (None when absent); ``CorruptFileError`` names a file that is
    truncated, not JSON or not a summary, and says how to rebuild it."""
    paper, profile = Path(path).parent.name, Path(path).parent.parent.name
    return read_json(path, _summary_problem, f"Re-run `python -m kdlib.reproduce {paper} --profile "
                     f"{profile}` to rebuild it (finished cells are kept, not re-run)")


def _merge_previous(path: Path, summary: dict) -> None:
    """Keep tables and cells of earlier invocations that this one did not touch. Each table keeps
    the provenance of the invocation that ran its cells (a table of an older summary, which had
    one provenance per paper, gets that one). A corrupt summary is moved aside (``quarantine``,
    with a warning naming it); its other tables come back when they are run again (their
    finished cells are collected, not re-run)."""
    previous = read_json_or_isolate(path, _summary_problem)
    if previous is None:
        return
    for name, table in previous.get("tables", {}).items():
        earlier = table.get("provenance", previous.get("provenance"))
        current = summary["tables"].setdefault(name, table)
        if earlier and "provenance" not in current:
            current["provenance"] = earlier
    for key in ("provenance", "diverged"):
        if key not in summary and key in previous:
            summary[key] = previous[key]
    before = {Path(c["result_path"]).name: c for c in previous.get("cells", [])}
    for cell in summary["cells"]:      # a cell found done keeps the record of the run that made it
        earlier = before.get(Path(cell["result_path"]).name)
        if cell["status"] == "skipped" and earlier and _cell_seconds(earlier) is not None:
            cell["ran_s"] = _cell_seconds(earlier)
        elif cell["status"] == "not run" and earlier:           # assemble_only: as it was left
            cell.update({k: earlier[k] for k in ("status", "error", "seconds") if k in earlier})
    seen = {Path(c["result_path"]).name for c in summary["cells"]}
    summary["cells"] += [c for name, c in before.items() if name not in seen]


def _paper_order(path: Path) -> tuple:
    names = list(PAPERS)
    name = path.parent.name
    return (names.index(name) if name in names else len(names), name)


def reassemble(profile: str, results_root: Path | None = None) -> Path:
    """Re-assemble every paper summary of ``results/<profile>/`` and ``REPORT.md`` from the cell
    result files alone (nothing runs): a committed report can be checked against its cells."""
    root = results_dir(profile, results_root)
    for path in sorted(root.glob("*/summary.json"), key=_paper_order):
        summary = read_summary(path)
        seeds = summary["seeds"]
        if seeds != list(range(len(seeds))):
            raise ValueError(f"{path}: seeds {seeds} are not the first {len(seeds)}; cannot re-assemble")
        default_nb = PAPERS.get(summary["paper"], (None, None))[0]     # this checkout's notebook
        notebook = NOTEBOOKS_DIR / default_nb if default_nb else REPO_ROOT / summary["notebook"]
        reproduce(summary["paper"], profile, tables=list(summary["tables"]), seeds=len(seeds),
                  results_root=results_root, notebook=notebook,
                  tables_module=summary.get("tables_module"), assemble_only=True, show_progress=False)
    return write_report(profile, results_root, run_cache=False)


PUBLISHED = (".json", ".md", ".csv", ".png", ".svg", ".pdf")   # executed notebooks stay behind


def publish(profile: str, dest_root: Path, results_root: Path | None = None,
            papers: list[str] | None = None) -> Path:
    """Copy the results of ``papers`` (default: every paper) in ``results/<profile>/`` (summaries,
    cell result files, tables, figures; not the executed notebooks) to ``dest_root/<profile>/`` and
    re-assemble its REPORT.md there from those files alone: ``docs/results/`` is published this
    way and a test re-assembles it (``tests/test_published_results.py``)."""
    import shutil
    source, dest = results_dir(profile, results_root), results_dir(profile, dest_root)
    paper_dirs = [p.parent for p in source.glob("*/summary.json") if papers is None or p.parent.name in papers]
    if not paper_dirs:
        raise FileNotFoundError(f"nothing to publish: no <paper>/summary.json under {source} "
                                f"(run `python -m kdlib.reproduce <paper> --profile {profile}` first)")
    for paper_dir in paper_dirs:
        shutil.rmtree(dest / paper_dir.name, ignore_errors=True)     # no stale cells of an older run
        for path in sorted(paper_dir.rglob("*")):
            if path.is_file() and path.suffix in PUBLISHED:
                target = dest / path.relative_to(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
    return reassemble(profile, dest_root)


def write_report(profile: str, results_root: Path | None = None, run_cache: bool = True) -> Path:
    """``results/<profile>/REPORT.md`` from every paper summary present; ``run_cache``: also list
    the diverged runs of the run cache that no summary recorded (a re-assembly reads only the
    results folder, so that a committed report re-assembles the same on any machine)."""
    root = results_dir(profile, results_root)
    lines = [f"# kdlib reproduction report — profile `{profile}`", "",
             "Kit numbers are mean ± std over seeds (no ± with one seed, or where every seed gives "
             "the same value); '–' is a number the kit has not run. Rows marked *(quoted)* are the "
             "paper's literature numbers (in italics), not run by the kit. On SynthPose profiles "
             "the absolute numbers are not comparable "
             "with the papers': each column C has the kit's value, `Δ C`, the row's paired effect "
             "over its table's baseline (mean ± standard error of the per-seed differences; `base` "
             "on the baseline) and `Δ C (paper)`, the paper's effect between the same rows. On real "
             "data each column C has the kit's value and `C (paper)`. Claims are judged on paired seeds "
             "(a one-sided t-test of the per-seed effects at alpha 0.05); an inconclusive claim "
             "states the smallest effect its seeds could have detected and, where the paper gives "
             "the effect, how many seeds would resolve the paper's effect at the spread measured.", ""]
    diverged = diverged_runs(profile) if run_cache else {}
    for summary_path in sorted(root.glob("*/summary.json"), key=_paper_order):
        paper_dir = summary_path.parent
        try:
            summary = read_summary(summary_path)
        except CorruptFileError as exc:     # one bad file must not hide every other paper
            lines += [f"## {paper_dir.name}", "", f"**Summary unreadable**: {exc}.", ""]
            continue
        lines += [f"## {summary['paper']}", "",
                  f"Notebook `{Path(summary['notebook']).name}`, seeds {summary['seeds']}.", ""]
        made_by = [t.get("provenance", summary.get("provenance")) for t in summary["tables"].values()]
        one_provenance = all(p == made_by[0] for p in made_by)      # else each table says its own
        if one_provenance:
            lines += _provenance_section(made_by[0] if made_by else summary.get("provenance"))
        lines += _cells_section(summary, root)
        cached = diverged.pop(summary["paper"], [])
        lines += _diverged_section(summary["diverged"] if "diverged" in summary else cached)
        for table, prov in zip(summary["tables"].values(), made_by):
            lines += [f"### {table['title']}", ""]
            if not one_provenance:
                lines += _provenance_section(prov)
            lines += [table["markdown"], ""]
            if table["claims"]:
                lines += ["| Claim | Verdict | Detail |", "|---|---|---|"]
                lines += [f"| {c['claim']} | **{c['status']}** | {c['detail']} |" for c in table["claims"]]
                lines.append("")
        figures = sorted(p for ext in ("png", "svg", "pdf") for p in paper_dir.rglob(f"*.{ext}"))
        if figures:
            lines += ["Figures: " + ", ".join(f"[{p.name}]({p.relative_to(root)})" for p in figures), ""]
    for paper, runs in sorted(diverged.items()):        # runs of papers without a summary here
        lines += [f"## Runs labelled `{paper or '(no paper)'}`", ""] + _diverged_section(runs)
    path = root / "REPORT.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def _provenance_section(prov: dict | None) -> list[str]:
    if not prov:
        return []
    return [f"Produced by `{prov['command']}` at commit `{prov['commit']}` on {prov['machine']}; "
            f"{prov['jobs']} cell(s) at a time, wall time {prov['wall_s'] / 60:.1f} min "
            f"(finished {prov['finished']}).", ""]


def _cell_seconds(cell: dict) -> float | None:
    """Wall time of the run that produced a cell's result (kept when a later call skips it)."""
    return cell["seconds"] if cell["status"] == "ok" else cell.get("ran_s")


def _cells_section(summary: dict, root: Path) -> list[str]:
    counts = {}
    for cell in summary["cells"]:
        status = "done" if cell["status"] in ("ok", "skipped") else cell["status"]
        counts[status] = counts.get(status, 0) + 1
    seconds = [t for t in map(_cell_seconds, summary["cells"]) if t is not None]
    lines = ["Cells: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + "."]
    if seconds:
        lines[0] += (f" Cell wall times ({len(seconds)} timed): median {np.median(seconds) / 60:.1f} "
                     f"min, longest {max(seconds) / 60:.1f} min, sum {sum(seconds) / 60:.1f} min.")
    for cell in summary["cells"]:
        if cell["status"] == "failed":
            nb = Path(cell["notebook"])
            link = nb.relative_to(root) if nb.is_relative_to(root) else nb
            lines.append(f"- FAILED {cell['rows'] or cell['params']}: {cell['error']} "
                         f"([executed notebook]({link}))")
    return lines + [""]


def diverged_runs(profile: str) -> dict[str, list[dict]]:
    """{paper label: [{run_dir, config, reason}]}: the runs of ``profile`` in the run cache whose
    training history has an epoch flagged ``diverged`` (``kdlib.train.trainer.divergence``);
    finished or not, read from each run's ``metrics.json`` and ``config.json``."""
    from kdlib.experiment import runs_root
    out: dict[str, list[dict]] = {}
    for metrics_path in sorted((runs_root() / profile).glob("*/metrics.json")):
        try:
            history = json.loads(metrics_path.read_text())
            reason = next((r["diverged"] for r in history if r.get("diverged")), None)
            if reason is None:
                continue
            config = json.loads((metrics_path.parent / "config.json").read_text())
        except (OSError, ValueError, TypeError, AttributeError):
            continue                        # unreadable logs: not this report's business
        out.setdefault(config.get("paper", ""), []).append(
            {"run_dir": str(metrics_path.parent), "config": config, "reason": reason})
    return out


def _diverged_section(runs: list[dict]) -> list[str]:
    lines = []
    for run in runs:
        c = run["config"]
        what = " ".join(str(v) for v in (c.get("model"), c.get("method"), c.get("method_params")) if v)
        lines.append(f"- **DIVERGED** run `{Path(run['run_dir']).name}` ({what}, seed {c.get('seed')}): "
                     f"{run['reason']}. Its metrics are not a result; see {run['run_dir']}/metrics.csv")
    return lines + [""] if lines else []


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
    parser.add_argument("--headline", action="store_true", help="each paper's HEADLINE table only "
                        "(the default of 'all --profile quick'; e.g. 'all --profile classroom --headline')")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--seeds", type=_positive_int, default=None,
                        help="first N seeds, N >= 1 (default: the profile's)")
    parser.add_argument("--jobs", type=_positive_int, default=1, help="cells in parallel")
    parser.add_argument("--executor", choices=["local", "submitit"], default="local")
    parser.add_argument("--cluster", default=None, help="submitit cluster: slurm | local | debug")
    parser.add_argument("--slurm-partition", default=None)
    parser.add_argument("--gpus-per-node", type=int, default=None)
    parser.add_argument("--timeout", type=int, default=None, help="seconds per notebook cell")
    parser.add_argument("--plan", action="store_true", help="print the runs the cells need, their "
                        "measured step times and planned device-hours; run nothing")
    parser.add_argument("--status", action="store_true", help="the --plan table without timing "
                        "anything: which runs are done, which resume at which epoch, minutes trained")
    parser.add_argument("--publish", type=Path, metavar="DIR", default=None, help="run nothing: copy "
                        "the profile's paper results (no executed notebooks) to DIR/<profile>/ and "
                        "re-assemble REPORT.md there (how docs/results/ is made)")
    args = parser.parse_args(argv)
    if args.publish is not None:
        chosen = None if args.paper == "all" else [args.paper]
        print(f"report: {publish(args.profile, args.publish, papers=chosen)}")
        return
    slurm = {k: v for k, v in (("slurm_partition", args.slurm_partition),
                                ("gpus_per_node", args.gpus_per_node)) if v is not None}
    papers = list(PAPERS) if args.paper == "all" else [args.paper]
    if args.headline and args.table:
        parser.error("--headline and --table choose tables two ways: give one of them")
    headline_only = args.headline or (args.paper == "all" and args.profile == "quick" and not args.table)
    if args.plan or args.status:
        from kdlib.plan import describe, plan
        from kdlib.profiles import get_profile
        seeds = list(range(args.seeds)) if args.seeds else None
        for paper in papers:
            if PAPERS[paper][1] is None:
                continue
            tables = args.table or (None if headline_only else list(load_tables(PAPERS[paper][1])[0]))
            print(f"## {paper}, profile {args.profile}")
            print(describe(plan(paper, args.profile, tables, seeds, measure=not args.status),
                           get_profile(args.profile)["device"]))
        return
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
