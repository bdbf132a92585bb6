"""Paper tables: the papers' numbers, transcribed, beside the kit's; and the claims ledger.

Each ``kdlib/paper_tables/<paper>.py`` defines ``TABLES = {name: Table(...)}`` and ``HEADLINE``
(the table the quick profile runs). A ``Row`` is either the paper's own run (``kind='run'``: its
``params`` are the notebook's papermill parameters that reproduce it) or a literature row quoted
from the paper (``kind='quoted'``: shown, marked as quoted, never run). ``Table.baseline`` names
the row the table's effects are measured against, or maps each row to its own baseline (on
SynthPose the report shows each row's effect over it beside the paper's effect). A ``Claim`` is a sentence of the paper with an ``effect(r) ->
float`` over the kit's results ``r[row label][column]``: positive when the claim holds, in the
column's units (e.g. ``gain('SDP', 'Baseline', 'Mean')`` = SDP's PCKh minus the baseline's).

Claim verdicts (``evaluate_claim``) are judged on **paired seeds**. Every run row at seed s shares
with its baseline row at seed s the student's initialisation and the data order, so the effect is
computed per seed, from that seed's rows only, and the ledger tests the per-seed effects:
- ``reproduced``: their mean is > 0 by a one-sided t-test at alpha = 0.05 (``scipy.stats.t``;
  ``ALPHA``);
- ``contradicted``: their mean is < 0 by the same test;
- ``inconclusive``: neither, or fewer than two seeds; the detail gives the **minimum detectable
  effect** of those seeds (one-sided alpha 0.05, power 0.8: ``(t_0.95 + t_0.8) * sd / sqrt(n)``),
  the smallest effect such a run would have resolved, and, where the paper's own numbers give the
  claim's effect, how many paired seeds would resolve an effect that size at the spread observed
  (``seeds_needed``), or that the run's seeds would have resolved it (then it is not there);
- ``not run``: a row or column the claim reads has no kit result at any seed.
A claim reads only its own rows, so a row run with one seed leaves the claims that do not read it
untouched. A legacy claim with a boolean ``check`` only (no effect) is judged unpaired: it holds at
the seed means and at every probe inside the seed spread (mean +- std), or it is inconclusive.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy import stats as scipy_stats

ALPHA = 0.05                                  # one-sided significance of a claim's paired test
POWER = 0.8                                   # power at which the minimum detectable effect is given

ROW_KINDS = ("run", "quoted")

# The papers (short name -> (notebook, paper module or None for a table-less notebook)): adding a
# sixth paper is one module here and one notebook (docs/CONTRACTS.md, "The papers interface").
PAPERS = {
    "data": ("00_data_and_metrics.ipynb", None),
    "sdp": ("01_sdp.ipynb", "kdlib.paper_tables.sdp"),
    "two_stage_gcn": ("02_two_stage_gcn.ipynb", "kdlib.paper_tables.two_stage_gcn"),
    "ekr": ("03_enhanced_knowledge_review.ipynb", "kdlib.paper_tables.ekr"),
    "unified": ("04_unified_skeleton.ipynb", "kdlib.paper_tables.unified"),
    "elpn_mapd": ("05_elpn_mapd.ipynb", "kdlib.paper_tables.elpn_mapd"),
}


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


@dataclass(frozen=True)
class Effect:
    """A claim's effect: ``fn(r) -> float``, > 0 when the claim holds (``unit``: how it reads)."""
    fn: Callable[[dict], float]
    unit: str = "points"

    def __call__(self, r: dict) -> float:
        return float(self.fn(r))


@dataclass
class Claim:
    text: str
    check: Callable[[dict], bool] | Effect | None = None   # legacy: r -> holds? (judged unpaired)
    effect: Effect | None = None                           # r -> float, > 0 when the claim holds

    def __post_init__(self):
        if isinstance(self.check, Effect):                 # Claim(text, gain(...))
            self.effect, self.check = self.check, None
        if self.effect is None and self.check is None:
            raise ValueError(f"Claim {self.text!r} needs an effect (or a legacy check)")
        if self.check is None:
            effect = self.effect
            self.check = lambda r: effect(r) > 0


def gain(better: str, worse: str, column: str, margin: float = 0.0) -> Effect:
    """``better`` beats ``worse`` on ``column`` (by more than ``margin``)."""
    return Effect(lambda r: r[better][column] - r[worse][column] - margin)


def gains(pairs, column: str) -> Effect:
    """Every (better, worse) pair holds: the smallest of the gains."""
    pairs = list(pairs)
    return Effect(lambda r: min(r[a][column] - r[b][column] for a, b in pairs))


def ordered(labels, column: str) -> Effect:
    """``labels`` are in decreasing order of ``column``: the smallest step between neighbours."""
    labels = list(labels)
    return Effect(lambda r: min(r[a][column] - r[b][column] for a, b in zip(labels, labels[1:])))


def best(label: str, others, column: str) -> Effect:
    """``label`` beats every one of ``others``: its lead over the best of them."""
    others = list(others)
    return Effect(lambda r: r[label][column] - max(r[o][column] for o in others))


def lower(smaller: str, larger: str, column: str) -> Effect:
    """``smaller`` has the lower ``column`` (memory, time): how much lower."""
    return Effect(lambda r: r[larger][column] - r[smaller][column])


def share_at_least(part: str, whole: str, column: str, share: float) -> Effect:
    """``part`` keeps at least ``share`` of ``whole``'s ``column``: the excess share (a fraction).
    NaN (that seed left out of the test) where ``whole`` scored 0."""
    def effect(r):
        whole_value = r[whole][column]
        return r[part][column] / whole_value - share if whole_value else math.nan
    return Effect(effect, unit="fraction")


def every(effects, unit: str = "points") -> Effect:
    """A compound claim whose parts share ``unit``: it holds when every part does (the smallest)."""
    effects = list(effects)
    return Effect(lambda r: min(e(r) for e in effects), unit=unit)


def larger_gain(first: tuple[str, str], second: tuple[str, str], column: str) -> Effect:
    """The gain of ``first`` = (better, worse) exceeds that of ``second``: their difference."""
    (a, b), (c, d) = first, second
    return Effect(lambda r: (r[a][column] - r[b][column]) - (r[c][column] - r[d][column]))


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[Row]
    claims: list[Claim] = field(default_factory=list)
    metric_source: str = ""                   # 'coco' | 'mpii' | 'crowdpose' | 'halpe' | ...
    # the run row the table's effects are measured against, or {row label: its own baseline row}
    # (e.g. each network against its undistilled self)
    baseline: str | dict[str, str] | None = None
    # derived columns computed per seed from the other rows: column -> fn(r) -> {label: value}
    derived: dict[str, Callable[[dict], dict]] = field(default_factory=dict)

    def __post_init__(self):
        labels = [r.label for r in self.rows]
        dupes = {x for x in labels if labels.count(x) > 1}
        if dupes:
            raise ValueError(f"Table {self.title!r}: duplicate row labels {sorted(dupes)}")
        runs = {r.label for r in self.run_rows()}
        named = set(self.baselines().items()) if isinstance(self.baseline, dict) else {(None, self.baseline)}
        for row, base in named:
            if base is not None and (base not in runs or (row is not None and row not in runs)):
                raise ValueError(f"Table {self.title!r}: baseline {row!r} -> {base!r} must name run rows")

    def paper_values(self) -> dict[str, dict[str, float]]:
        """{row label: the paper's numbers} for the rows that have them."""
        return {r.label: r.paper for r in self.rows if r.paper}

    def baselines(self) -> dict[str, str]:
        """{run row label: the row its effect is measured against} (the baseline maps to itself)."""
        if isinstance(self.baseline, dict):
            return {**{b: b for b in self.baseline.values()}, **self.baseline}
        if self.baseline is None:
            return {}
        return {r.label: self.baseline for r in self.run_rows()}

    def run_rows(self) -> list[Row]:
        return [r for r in self.rows if r.kind == "run"]


@dataclass
class Stat:
    mean: float
    std: float
    n: int


def aggregate(per_seed: dict[str, list[dict] | dict[int, dict]]) -> dict[str, dict[str, Stat]]:
    """{label: [values per seed]} or {label: {seed: values}} -> {label: {column: Stat(mean, std, n)}}."""
    out = {}
    for label, seeds in per_seed.items():
        seeds = list(seeds.values()) if isinstance(seeds, dict) else seeds
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


def by_seed(results: dict) -> bool:
    """Whether ``results`` is {label: {seed: {column: value}}} (not aggregated ``Stat``s)."""
    return any(isinstance(runs, dict) and runs and all(isinstance(k, int) for k in runs)
               and all(isinstance(v, dict) for v in runs.values()) for runs in results.values())


class _Columns(dict):
    """One row's values; a missing column names itself and its row."""

    def __init__(self, label: str, values: dict):
        super().__init__(values)
        self.label = label

    def __missing__(self, column):
        raise KeyError(f"{column!r} of row {self.label!r}")


class _Rows(dict):
    """{row label: values} as a claim reads it; a missing row or column says which it is."""

    def __missing__(self, label):
        raise KeyError(f"row {label!r}")

    def __getitem__(self, label):
        return _Columns(label, super().__getitem__(label))


def _missing(key: KeyError) -> str:
    return str(key.args[0]) if key.args else "its rows"


def paired_effects(claim: Claim, results: dict[str, dict[int, dict]]) -> tuple[dict[int, float], str]:
    """{seed: the claim's effect computed from that seed's rows}, and the last missing row or
    column ("row 'KD'", "'Mean' of row 'FitNet'")."""
    seeds = sorted({s for runs in results.values() for s in runs})
    effects, missing = {}, ""
    for s in seeds:
        view = _Rows({label: runs[s] for label, runs in results.items() if s in runs})
        try:
            value = claim.effect(view)
        except KeyError as key:
            missing = _missing(key)
            continue
        if math.isfinite(value):
            effects[s] = value
    return effects, missing


def paired_test(values) -> dict:
    """One-sided t-tests of the mean of ``values`` (>= 2) against 0, and the minimum detectable
    effect at ``ALPHA`` and ``POWER`` with the observed spread."""
    x = np.asarray(values, float)
    n, mean = len(x), float(x.mean())
    sd = float(x.std(ddof=1))
    se = sd / math.sqrt(n)
    if se == 0:
        p_greater = 0.0 if mean > 0 else 1.0
        p_less = 0.0 if mean < 0 else 1.0
    else:
        t = mean / se
        p_greater, p_less = float(scipy_stats.t.sf(t, n - 1)), float(scipy_stats.t.cdf(t, n - 1))
    mde = (scipy_stats.t.ppf(1 - ALPHA, n - 1) + scipy_stats.t.ppf(POWER, n - 1)) * se
    return dict(n=n, mean=mean, sd=sd, se=se, p_greater=p_greater, p_less=p_less, mde=float(mde))


def seeds_needed(sd: float, effect: float, most: int = 100) -> int | None:
    """The fewest paired seeds whose minimum detectable effect (``paired_test``) at per-seed spread
    ``sd`` is at most ``effect``; None when more than ``most`` would be needed."""
    for n in range(2, most + 1):
        t = scipy_stats.t.ppf(1 - ALPHA, n - 1) + scipy_stats.t.ppf(POWER, n - 1)
        if t * sd / math.sqrt(n) <= effect:
            return n
    return None


def paper_effect(claim: Claim, paper: dict | None) -> float | None:
    """The claim's effect at the paper's own numbers (``Table.paper_values``); None when the
    paper does not give every number it reads."""
    if not paper or claim.effect is None:
        return None
    try:
        value = claim.effect(_Rows(paper))
    except (KeyError, TypeError):
        return None
    return value if math.isfinite(value) else None


def _judge_paired(claim: Claim, results: dict, paper: dict | None = None) -> dict:
    effects, missing = paired_effects(claim, results)
    out = {"claim": claim.text, "seeds": sorted(effects), "unit": claim.effect.unit}
    if not effects:
        return {**out, "status": "not run", "detail": f"no kit result for {missing or 'its rows'}"}
    values = [effects[s] for s in sorted(effects)]
    if len(values) < 2:
        return {**out, "status": "inconclusive", "effect": values[0],
                "detail": f"one seed (effect {values[0]:+.2f} {claim.effect.unit}): paired seeds "
                          "give no spread to test; run >= 3 seeds"}
    t = paired_test(values)
    out.update(effect=t["mean"], se=t["se"], p=t["p_greater"], mde=t["mde"])
    summary = (f"paired over seeds {sorted(effects)}: effect {t['mean']:+.2f} ± {t['se']:.2f} "
               f"{claim.effect.unit} (SE)")
    if t["p_greater"] < ALPHA:
        return {**out, "status": "reproduced", "detail": f"{summary}, one-sided p = {t['p_greater']:.3f}"}
    if t["p_less"] < ALPHA:
        return {**out, "status": "contradicted", "p": t["p_less"],
                "detail": f"{summary}, against the claim: one-sided p = {t['p_less']:.3f}"}
    detail = (f"{summary}, p = {t['p_greater']:.2f}; the smallest effect {t['n']} seeds with this "
              f"spread could detect is {t['mde']:.2f} {claim.effect.unit} (one-sided alpha {ALPHA}, power {POWER})")
    expected = paper_effect(claim, paper)
    if expected is not None and expected > 0 and t["sd"] > 0:
        needed = seeds_needed(t["sd"], expected)
        out.update(paper_effect=expected, seeds_needed=needed)
        if needed is not None and needed <= t["n"]:     # the run had the power: the effect is not there
            detail += (f"; {t['n']} seeds at this spread would have resolved the paper's effect "
                       f"({expected:+.3g}): an effect that size is not seen at this scale")
        else:
            detail += (f"; at this spread the paper's effect ({expected:+.3g}) needs "
                       + (f"{needed} seeds" if needed else "more than 100 seeds"))
    return {**out, "status": "inconclusive", "detail": detail}


def evaluate_claim(claim: Claim, results: dict, probes: int = 512, seed: int = 0,
                   paper: dict | None = None) -> dict:
    """Verdict of one claim (module docstring). ``results``: per-seed kit results
    {label: {seed: {column: value}}} (paired verdict for claims with an effect), or aggregated
    {label: {column: Stat}} (unpaired: the means and their spread only). ``paper``: the table's
    ``paper_values()``, for the seeds an inconclusive claim would need at the paper's effect."""
    if by_seed(results):
        if claim.effect is not None:
            return _judge_paired(claim, results, paper)
        results = aggregate(results)
    stats = results
    means = _Rows({label: {c: s.mean for c, s in cols.items()} for label, cols in stats.items()})
    try:
        holds = bool(claim.check(means))
    except KeyError as missing:
        return {"claim": claim.text, "status": "not run", "detail": f"no kit result for {_missing(missing)}"}
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


# ----------------------------------------------------------------------------- row -> runs
def call_with(builder: Callable, profile: str, seed: int, params: dict):
    """``builder(profile, seed, **params)`` with the notebook-only parameters a row also carries
    (``fig4``, ``measure_cost``, ``eval_mode``, ...) left out when ``builder`` does not take them."""
    import inspect
    signature = inspect.signature(builder).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.values()):
        return builder(profile, seed, **params)
    return builder(profile, seed, **{k: v for k, v in params.items() if k in signature})


def with_dependencies(runs: dict) -> dict:
    """``runs`` ({name: ExperimentConfig}) and every teacher / ``init_from`` they need, recursively,
    each once (by run hash), dependencies first: what training the row costs, in order."""
    from kdlib.experiment import config_hash
    from kdlib.models.pretrained import CheckpointRef
    out, seen = {}, set()

    def visit(name, cfg):
        if isinstance(cfg, CheckpointRef):        # a released teacher: nothing to train, listed once
            if ("ref", cfg.path) not in seen:
                seen.add(("ref", cfg.path))
                out[name] = cfg
            return
        key = config_hash(cfg)
        if key in seen:
            return
        for teacher_name, teacher in cfg.teachers.items():
            visit(f"{name}/{teacher_name}", teacher)
        if cfg.init_from is not None:
            visit(f"{name}/init", cfg.init_from)
        seen.add(key)
        out[name] = cfg
    for name, cfg in runs.items():
        visit(name, cfg)
    return out


def paper_module(paper: str):
    """The table module of ``paper`` (a short name of ``PAPERS``), imported."""
    import importlib
    if paper not in PAPERS or PAPERS[paper][1] is None:
        with_tables = sorted(name for name, (_, module) in PAPERS.items() if module)
        raise KeyError(f"no paper tables for {paper!r}; papers with tables: {with_tables}")
    return importlib.import_module(PAPERS[paper][1])


def row_metrics(module, results: dict, params: dict, columns=None) -> dict[str, float]:
    """``module.row_metrics(results, **params)``: the row's numbers from its runs' results
    (``row_runs``' names; ``'row'`` is the row's own run). ``columns``, the ones a table needs,
    is passed to a ``row_metrics`` that takes it (to skip a costly measurement no table reads).
    Notebook-only parameters a ``row_metrics`` does not take are left out."""
    import inspect
    signature = inspect.signature(module.row_metrics).parameters
    extra = {"columns": columns} if "columns" in signature else {}
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.values()):
        params = {k: v for k, v in params.items() if k in signature}
    return module.row_metrics(results, **params, **extra)


def cached_row_results(module, profile: str, seed: int, params: dict) -> dict | None:
    """The results of every run ``module.row_runs(profile, seed, **params)`` needs, when the run
    cache holds them all (a released teacher counts as held), else None. Never trains."""
    from kdlib.experiment import cached_result
    results = {}
    for name, cfg in module.row_runs(profile, seed, **params).items():
        results[name] = cached_result(cfg)
        if results[name] is None:
            return None
    return results
