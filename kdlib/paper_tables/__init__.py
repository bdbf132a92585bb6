"""Paper tables: the papers' numbers, transcribed, beside the kit's; and the claims ledger.

Each ``kdlib/paper_tables/<paper>.py`` defines ``TABLES = {name: Table(...)}`` and ``HEADLINE``
(the table the quick profile runs). A ``Row`` is either the paper's own run (``kind='run'``: its
``params`` are the notebook's papermill parameters that reproduce it) or a literature row quoted
from the paper (``kind='quoted'``: shown, marked as quoted, never run). A ``Claim`` is a sentence
of the paper with a ``check(r) -> bool`` over the kit's results ``r[row label][column]``.

Claim verdicts (``evaluate_claim``), given per-seed results of the run rows:
- ``reproduced``: the check holds at the seed means, and still holds when every value moves
  anywhere inside its seed spread (mean +- std, probed at random corners of that box);
- ``contradicted``: the check fails at the means and at every probe;
- ``inconclusive``: the verdict flips inside the seed spread, or a single seed gives no spread
  (the detail then says which way the means point);
- ``not run``: a row or column the check reads has no kit result (e.g. a table not run).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

ROW_KINDS = ("run", "quoted")


@dataclass
class Row:
    label: str
    paper: dict[str, float]                   # the paper's numbers, by column ({} if none)
    kind: str = "run"                         # 'run' | 'quoted'
    params: dict = field(default_factory=dict)  # papermill parameters (run rows)
    note: str = ""

    def __post_init__(self):
        if self.kind not in ROW_KINDS:
            raise ValueError(f"Row {self.label!r}: kind must be one of {ROW_KINDS}, got {self.kind!r}")
        if self.kind == "quoted" and self.params:
            raise ValueError(f"Row {self.label!r}: a quoted row has no run parameters")


@dataclass
class Claim:
    text: str
    check: Callable[[dict], bool]             # r[row label][column] -> holds?


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[Row]
    claims: list[Claim] = field(default_factory=list)
    metric_source: str = ""                   # 'coco' | 'mpii' | 'crowdpose' | 'halpe' | ...
    # derived columns computed per seed from the other rows: column -> fn(r) -> {label: value}
    derived: dict[str, Callable[[dict], dict]] = field(default_factory=dict)

    def __post_init__(self):
        labels = [r.label for r in self.rows]
        dupes = {x for x in labels if labels.count(x) > 1}
        if dupes:
            raise ValueError(f"Table {self.title!r}: duplicate row labels {sorted(dupes)}")

    def run_rows(self) -> list[Row]:
        return [r for r in self.rows if r.kind == "run"]


@dataclass
class Stat:
    mean: float
    std: float
    n: int


def aggregate(per_seed: dict[str, list[dict]]) -> dict[str, dict[str, Stat]]:
    """{label: [values of seed 0, seed 1, ...]} -> {label: {column: Stat(mean, std, n)}}."""
    out = {}
    for label, seeds in per_seed.items():
        columns = sorted({c for s in seeds for c in s})
        out[label] = {}
        for column in columns:
            values = np.array([s[column] for s in seeds if column in s and _finite(s[column])], float)
            if len(values):
                std = float(values.std(ddof=1)) if len(values) > 1 else math.nan
                out[label][column] = Stat(float(values.mean()), std, len(values))
    return out


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def evaluate_claim(claim: Claim, stats: dict[str, dict[str, Stat]], probes: int = 512,
                   seed: int = 0) -> dict:
    """Verdict of one claim over aggregated kit results (see the module docstring)."""
    means = {label: {c: s.mean for c, s in cols.items()} for label, cols in stats.items()}
    try:
        holds = bool(claim.check(means))
    except KeyError as missing:
        return {"claim": claim.text, "status": "not run", "detail": f"no kit result for {missing}"}
    single = any(s.n < 2 for cols in stats.values() for s in cols.values())
    direction = "holds" if holds else "fails"
    if single:
        return {"claim": claim.text, "status": "inconclusive",
                "detail": f"single seed: no spread to judge; at the kit's numbers the claim {direction}"}
    rng = np.random.default_rng(seed)
    flips = 0
    for _ in range(probes):
        probe = {label: {c: s.mean + rng.choice((-1.0, 1.0)) * s.std for c, s in cols.items()}
                 for label, cols in stats.items()}
        flips += bool(claim.check(probe)) != holds
    if flips:
        return {"claim": claim.text, "status": "inconclusive",
                "detail": f"at the means the claim {direction}, but {flips}/{probes} probes inside "
                          "the seed spread (mean +- std) flip it"}
    return {"claim": claim.text, "status": "reproduced" if holds else "contradicted",
            "detail": f"the claim {direction} at the means and across the seed spread"}
