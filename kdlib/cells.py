"""The contract between a paper notebook and the driver: what a cell is, how its parameters are
checked, where its result goes.

A *cell* is one run-row of a paper table at one seed: the paper's notebook executed by papermill
with ``profile``, ``seed``, ``result_path`` and the row's ``params`` (``plan_cells``). The notebook
checks its parameters right after they are injected (``check_parameters``) and ends with
``save_cell_result(result_path, metrics)``; the driver (``kdlib.reproduce``) checks a cell's
parameters before it runs (``check_cell_parameters``) and reads what it saved (``cell_done``).
Notebooks import this module, never the driver.
"""
from __future__ import annotations

import ast
import difflib
import hashlib
import inspect
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from kdlib.paper_tables import Table
from kdlib.train.checkpoint import atomic_write_text

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"


# ----------------------------------------------------------------------------- parameters

class ParameterError(ValueError):
    """A papermill parameter that the notebook's ``parameters`` cell does not declare."""


def declared_parameters(notebook: str | os.PathLike) -> list[str]:
    """The names assigned at the top level of ``notebook``'s ``parameters`` cell, read with ``ast``
    (``papermill.inspect_notebook`` skips a line holding a second ``=``, e.g. in its comment).
    Private names (``_declared``, the snapshot ``check_parameters`` reads) are not parameters."""
    cells = json.loads(Path(notebook).read_text())["cells"]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not tagged:
        raise ParameterError(f"{notebook}: no cell tagged 'parameters' (papermill needs one)")
    source = tagged[0]["source"]
    names = set()
    for node in ast.parse(source if isinstance(source, str) else "".join(source)).body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else []
        names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return sorted(n for n in names if not n.startswith("_"))


def _unknown_message(unknown, declared, where: str) -> str:
    """'<where>: unknown parameter 'netwrok' (did you mean 'network'?); declared: ...'."""
    named = []
    for name in sorted(unknown):
        close = difflib.get_close_matches(name, declared, n=1)
        named.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return (f"{where}: unknown parameter{'s' if len(named) > 1 else ''} {', '.join(named)}; "
            f"the parameters cell declares {', '.join(sorted(declared))}")


def check_cell_parameters(cell: "Cell") -> None:
    """Raise ``ParameterError`` when ``cell.params`` holds a name its notebook does not declare."""
    declared = declared_parameters(cell.notebook)
    unknown = set(cell.params) - set(declared)
    if unknown:
        raise ParameterError(_unknown_message(unknown, declared, f"notebook {Path(cell.notebook).name}"))


_IPYTHON_HISTORY = re.compile(r"_{1,3}|_i{1,3}|_i?\d+|_[iod]h")   # _, __, _i, _ii, _i7, _7, _ih...


def _is_value(value) -> bool:
    """Papermill injects literals only: a module, function or class is an import, not a parameter."""
    return not (inspect.ismodule(value) or callable(value))


def check_parameters(namespace: dict, declared) -> None:
    """A notebook's first cell after its (injected) parameters:
    ``check_parameters(globals(), _declared)``, where the parameters cell ends with
    ``_declared = set(globals())``. Raises ``ParameterError`` naming every name bound since the
    snapshot (papermill injects a misspelt ``-p netwrok ...`` with only a warning, and the run
    would go on with the defaults) and listing the declared ones. IPython's own names (history
    ``_i3``, ``_7``, ``user_ns_hidden``) and imports (modules, functions, classes) are ignored."""
    try:
        from IPython import get_ipython
        hidden = set(getattr(get_ipython(), "user_ns_hidden", None) or ())
    except ImportError:
        hidden = set()
    snapshot, declared = declared, set(declared)

    def ignored(name):
        return name in hidden or _IPYTHON_HISTORY.fullmatch(name) is not None

    unknown = [n for n, v in namespace.items() if n not in declared and not ignored(n)
               and _is_value(v) and v is not snapshot]
    if unknown:
        known = [n for n in declared if n in namespace and not n.startswith("_") and not ignored(n)
                 and _is_value(namespace[n])]
        raise ParameterError(_unknown_message(unknown, known, "this notebook") +
                             ". Fix the name (papermill -p NAME VALUE) or declare it there (run "
                             "interactively: re-run the parameters cell before this one).")


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
    """Its result file holds metrics. A missing, truncated or corrupt one is not done: re-run."""
    try:
        result = json.loads(Path(cell.result_path).read_text())
    except (OSError, ValueError):          # missing, unreadable, not UTF-8, not JSON
        return False
    return isinstance(result, dict) and isinstance(result.get("metrics"), dict)


def results_dir(profile: str, root: Path | None = None) -> Path:
    """Where a profile's results go: ``results/<profile>/`` (``KDLIB_RESULTS`` or ``root`` moves
    the root)."""
    return Path(root or os.environ.get("KDLIB_RESULTS", REPO_ROOT / "results")) / profile
