"""A paper table from the kit's per-seed values: the numbers beside the paper's, and each run row's
paired effect over its baseline (SynthPose profiles). Used by the driver's report and by the
notebooks' table view (``kdlib.figures.common.table_items``)."""
from __future__ import annotations

import math

import numpy as np

from kdlib.paper_tables import Stat, Table, aggregate

# result keys a notebook may save under the kit's own names, read for these table columns
COLUMN_ALIASES = {"GFLOPs": "gflops_paper", "Params": "params_M", "Params (M)": "params_M",
                  "#Params": "params_M", "Training Time (h)": "train_time_h"}


def cell_values(table: Table, metrics: dict) -> dict[str, float]:
    """A cell's metrics under the table's column names (aliases for the kit's own keys)."""
    out = {}
    for column in table.columns:
        key = column if column in metrics else COLUMN_ALIASES.get(column)
        if key in metrics:
            out[column] = metrics[key]
    return out


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
    paper_effect) + markdown with the kit and the paper in separate, compact columns.

    Absolute (real data): per column ``C`` the kit's mean ± std over seeds and ``C (paper)``.
    ``relative`` (SynthPose profiles, where absolute numbers are not comparable with the papers'):
    per column ``C`` the kit's value, ``Δ C`` its paired effect over the row's baseline
    (``table.baselines()``, ± its standard error; ``base`` on the baseline row) and ``Δ C (paper)``
    the paper's effect between the same rows. A table without a baseline stays absolute. Quoted
    literature rows show the paper's numbers in italics; '–' is a number the kit has not run."""
    import pandas as pd
    stats = aggregate(per_seed)
    effects = baseline_effects(table, per_seed)
    baselines = table.baselines()
    relative = relative and bool(baselines)
    papers = {r.label: r.paper for r in table.rows}
    records = []
    headers = [h for c in table.columns for h in ((c, f"Δ {c}", f"Δ {c} (paper)") if relative
                                                  else (c, f"{c} (paper)"))]
    lines = ["| Row | " + " | ".join(headers) + " |", "|---|" + "---|" * len(headers)]
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
                value = f"*{_fmt(paper)}*" if paper is not None else "–"
            else:
                value = _mean_spread(stat.mean, stat.std, stat.n) if stat else "–"
            if not relative:
                cells += [value, "–" if row.kind == "quoted" or paper is None else _fmt(paper)]
                continue
            if is_baseline:
                kit_effect = "base" if stat else "–"
            else:
                kit_effect = _mean_spread(effect.mean, effect.std, effect.n, signed=True) if effect else "–"
            cells += [value, kit_effect, f"{paper_effect:+.2f}" if math.isfinite(paper_effect) else "–"]
        label = f"{row.label} *(quoted)*" if row.kind == "quoted" else row.label
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return pd.DataFrame.from_records(records), "\n".join(lines)


def _mean_spread(mean: float, spread: float, n: int, signed: bool = False) -> str:
    """'12.34 ± 0.56' (the spread only with more than one seed that differ: a parameter count is
    the same on every seed and reads '0.06', not '0.06 ± 0.00'); ``signed``: '+1.20 ± 0.30'."""
    text = f"{mean:+.2f}" if signed else _fmt(mean)
    return text + (f" ± {_fmt(spread)}" if n > 1 and math.isfinite(spread) and spread > 0 else "")
