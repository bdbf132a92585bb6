"""What every paper notebook draws and shows: poses, heatmap overlays, SimCC labels, the runs of a
training cell, and a paper's tables with their claims ledger.

    fig, axes = grid(2, 3)
    draw_pose(image, joints, SKELETONS['coco'], ax=axes[0])
    overlay_heatmaps(sample_image, sample['heatmap'], ax=axes[1])
    plot_simcc(sample['simcc_x'], sample['simcc_y'], joint=9, ax=axes[2])
    results = run_all({'Baseline': cfg_a, 'SDP': cfg_b})        # one bar, one line per run
    runs = paper.row_runs(profile, seed, **row)                 # a table row: its runs ('row' last)
    metrics = paper.row_metrics(run_all(runs), **row)           # ... and its table columns
    show_tables(table_items('sdp', profile))                   # the paper's tables and claims

Images are ImageNet-normalised (3, H, W) samples (``kdlib.data.topdown``) or (H, W, 3) uint8;
joints are (K, 2) or (K, 3) input-crop pixels (x, y, visibility or score). Colours follow the
skeleton's sides: left blue, right orange, centre green.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import cv2
import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from matplotlib.ticker import AutoLocator
from tqdm.auto import tqdm

from kdlib.data.topdown import IMAGENET_MEAN, IMAGENET_STD
from kdlib.experiment import cached_result, run_experiment
from kdlib.models.pretrained import CheckpointRef
from kdlib.paper_tables import (PAPERS, cached_row_results, evaluate_claim, paper_module, row_metrics,
                                with_dependencies)
from kdlib.plan import describe_run
from kdlib.profiles import get_profile
from kdlib.cells import NOTEBOOKS_DIR, cell_done, plan_cells, results_dir
from kdlib.paper_tables.assemble import assemble_table, cell_values, with_derived

SIDE_COLOURS = {'left': '#1f77b4', 'right': '#ff7f0e', 'centre': '#2ca02c'}

__all__ = ['grid', 'to_numpy', 'denormalize', 'draw_pose', 'draw_box', 'overlay_heatmaps',
           'plot_simcc', 'markdown_safe', 'claims_markdown', 'is_synthpose', 'run_all',
           'figure_browser', 'describe_runs', 'train_tables', 'table_items', 'show_tables']


# ----------------------------------------------------------------------------- drawing

def grid(nrows: int, ncols: int, size: float = 3.0):
    """(fig, flat list of axes) with image-friendly defaults (no ticks)."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows * 1.1), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, list(axes.flat)


def to_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, 'detach') else np.asarray(x)


def denormalize(image) -> np.ndarray:
    """(3, H, W) ImageNet-normalised float (numpy or torch) -> (H, W, 3) uint8 RGB."""
    rgb = to_numpy(image).transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN
    return np.clip(rgb * 255, 0, 255).astype(np.uint8)


def _side(name: str) -> str:
    return 'left' if name.startswith('left_') else 'right' if name.startswith('right_') else 'centre'


def _as_image(image) -> np.ndarray:
    img = to_numpy(image)
    return denormalize(img) if img.ndim == 3 and img.shape[0] == 3 else img


def draw_pose(image, joints, skeleton, ax=None, min_visibility: float = 0.0, title: str | None = None,
              linewidth: float = 2.0, marker_size: float = 16.0, alpha: float = 1.0):
    """Image with the skeleton's limbs and joints; joints (K, 2) or (K, 3) (x, y, visibility/score).

    Joints with third column <= min_visibility are not drawn (COCO flag 0 = unlabelled).
    `image` may be (H, W, 3) uint8 or a normalised (3, H, W) sample image.
    """
    ax = ax or plt.gca()
    if image is not None:
        img = _as_image(image)
        ax.imshow(img)
        ax.set_xlim(-0.5, img.shape[1] - 0.5)            # joints outside the crop stay outside
        ax.set_ylim(img.shape[0] - 0.5, -0.5)
    joints = to_numpy(joints)
    shown = joints[:, 2] > min_visibility if joints.shape[1] > 2 else np.ones(len(joints), bool)
    for a, b in skeleton.limbs:
        if shown[a] and shown[b]:
            side = _side(skeleton.joint_names[a]) if _side(skeleton.joint_names[a]) != 'centre' \
                else _side(skeleton.joint_names[b])
            ax.plot(joints[[a, b], 0], joints[[a, b], 1], color=SIDE_COLOURS[side],
                    linewidth=linewidth, alpha=alpha)
    colours = [SIDE_COLOURS[_side(n)] for n in skeleton.joint_names]
    ax.scatter(joints[shown, 0], joints[shown, 1], s=marker_size, alpha=alpha,
               c=[c for c, s in zip(colours, shown) if s], edgecolors='white', linewidths=0.5, zorder=3)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def draw_box(ax, bbox, colour: str = 'yellow', label: str | None = None):
    """An (x, y, w, h) rectangle, optionally labelled."""
    x, y, w, h = (float(v) for v in bbox)
    ax.add_patch(plt.Rectangle((x, y), w, h, fill=False, edgecolor=colour, linewidth=1.2))
    if label:
        ax.text(x, y - 2, label, color=colour, fontsize=7)


def overlay_heatmaps(image, heatmaps, ax=None, alpha: float = 0.55, joint: int | None = None,
                     cmap: str = 'jet', title: str | None = None):
    """Heatmaps (K, h, w) -- their max over joints, or one `joint` -- upsampled onto the image."""
    ax = ax or plt.gca()
    img = _as_image(image)
    hm = to_numpy(heatmaps)
    hm = hm[joint] if joint is not None else hm.max(axis=0)                 # (h, w)
    hm = cv2.resize(hm.astype(np.float32), (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
    ax.imshow(img)
    ax.imshow(hm, cmap=cmap, alpha=alpha, vmin=0, vmax=max(float(hm.max()), 1e-6))
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def plot_simcc(simcc_x, simcc_y, joint: int, split_ratio: float = 2.0, ax=None,
               title: str | None = None):
    """The two 1D SimCC labels (or predicted distributions) of one joint, against input pixels."""
    ax = ax or plt.gca()
    sx, sy = to_numpy(simcc_x)[joint], to_numpy(simcc_y)[joint]
    ax.plot(np.arange(len(sx)) / split_ratio, sx, label='x bins')
    ax.plot(np.arange(len(sy)) / split_ratio, sy, label='y bins')
    ax.set_xlabel('input pixel')
    ax.legend(fontsize=8)
    ax.xaxis.set_major_locator(AutoLocator())          # `grid` removed the ticks
    ax.yaxis.set_major_locator(AutoLocator())
    if title:
        ax.set_title(title, fontsize=9)
    return ax


# ----------------------------------------------------------------------------- interaction

def figure_browser(controls: dict, draw) -> widgets.VBox:
    """ipywidgets ``controls`` ({name: widget}) above a figure that ``draw(**values)`` returns,
    redrawn whenever a control changes; displayed, and returned.

    The figure is put into an Output widget by setting its outputs, not by capturing (``with
    output:`` / ``interact``): a notebook executed by papermill (nbclient) can hang for good on
    captured widget output (jupyter/nbclient#312; measured here on notebook 02, 2 of 3 runs)."""
    output = widgets.Output()

    def show(*_):
        fig = draw(**{name: control.value for name, control in controls.items()})
        output.outputs = ()
        output.append_display_data(fig)
        plt.close(fig)
    for control in controls.values():
        control.observe(show, 'value')
    show()
    box = widgets.VBox([widgets.HBox(list(controls.values())), output])
    display(box)
    return box


# ----------------------------------------------------------------------------- runs of a cell

CELL_BAR_FORMAT = '{desc}: {percentage:3.0f}%|{bar}| {n:.2f}/{total:.0f} runs [{elapsed}<{remaining}{postfix}]'


def run_all(configs: dict, metric: str | None = None, desc: str = 'training') -> dict[str, dict]:
    """``run_experiment`` on each {label: ExperimentConfig}, in order; returns {label: result}.

    The cell shows one progress bar: it counts the runs the cell trains (teachers and init runs
    included; a cached run is read at once) and names the run training in its postfix. After
    each run one line says which it was, how long it took and its validation ``metric`` (default:
    'Mean' for PCKh datasets, else 'AP'). A released teacher (``CheckpointRef``) is returned as it is."""
    to_train = [c for c in with_dependencies(configs).values() if cached_result(c) is None]
    bar = tqdm(total=len(to_train), desc=desc, bar_format=CELL_BAR_FORMAT, disable=not to_train)
    results = {}
    for label, cfg in configs.items():
        cached, start = cached_result(cfg) is not None, time.perf_counter()
        results[label] = result = run_experiment(cfg, cell_bar=bar)
        if isinstance(result, CheckpointRef):
            tqdm.write(f'{label}: released weights {result.path}')
            continue
        metrics = result['metrics']
        name = metric or ('Mean' if 'Mean' in metrics else 'AP')
        how = 'cached' if cached else f'trained in {time.perf_counter() - start:.0f} s'
        tqdm.write(f"{label}: {cfg.model} / {cfg.method}, seed {cfg.seed}: {name} "
                   f"{metrics.get(name, float('nan')):.2f} ({how})")
    bar.close()
    return results


def describe_runs(runs: dict) -> pd.DataFrame:
    """The runs of a cell ({name: ExperimentConfig}), one row each: network, head, method and its
    parameters, builder, dataset, teachers, resolved epochs, batch, input size, learning rate
    (``kdlib.plan.describe_run``)."""
    return pd.DataFrame([{'run': name, **describe_run(cfg)} for name, cfg in runs.items()]).set_index('run')


def train_tables(paper: str, profile: str, names, seeds) -> dict[str, dict]:
    """Train (or read from the cache) every run row of ``paper``'s tables ``names`` at ``seeds``,
    rows with the same parameters once, under one bar; returns {'<row label>, seed <s>': result}."""
    module = paper_module(paper)
    rows = {(json.dumps(row.params, sort_keys=True, default=str), seed): row
            for name in names for row in module.TABLES[name].run_rows() for seed in seeds}
    return run_all({f'{row.label}, seed {seed}': module.row_runs(profile, seed, **row.params)['row']
                    for (_, seed), row in rows.items()}, desc=f'{paper} tables')


# ----------------------------------------------------------------------------- tables

_AT_NAME = re.compile(r'(?<![`\w.])(\w+@\d*\.?\d+)')          # PCKh@0.5, Mean@0.1, PCK@0.1


def markdown_safe(text: str) -> str:
    """Names with '@' (``PCKh@0.5``, ``Mean@0.1``) in backticks: Jupyter's markdown renders a bare
    'PCKh@0.5' as a mailto: link. Names already in backticks are left alone."""
    parts = text.split('`')
    parts[::2] = [_AT_NAME.sub(r'`\1`', p) for p in parts[::2]]     # outside code spans only
    return '`'.join(parts)


def claims_markdown(claims: list[dict]) -> str:
    """A claims ledger as a markdown table: claim, verdict, detail, in full (no truncation)."""
    if not len(claims):
        return ''
    lines = ['| Claim | Verdict | Detail |', '|---|---|---|']
    lines += [f"| {c['claim']} | **{c['status']}** | {c['detail']} |" for c in claims]
    return markdown_safe('\n'.join(lines))


def is_synthpose(profile: str) -> bool:
    """Whether ``profile`` trains on SynthPose (tables then show effects, not absolute numbers)."""
    return get_profile(profile)['synthpose'] is not None


def table_items(paper: str, profile: str, names=None, seeds=None, measured: dict | None = None
                ) -> list[dict]:
    """Each table of ``paper`` (``names``, default all) with the kit's numbers beside the paper's
    and its claims ledger judged on paired seeds (``kdlib.paper_tables.evaluate_claim``).

    One rule for every notebook: a table shows every row whose run exists. A row's numbers at a
    seed come from the driver's cell result (``results/<profile>/<paper>/cells``: it also holds
    what the notebook measured beside training, e.g. inference cost), else from the run cache
    (``row_runs`` all finished: ``row_metrics``), else from ``measured`` ({table: {row label:
    numbers}} a notebook measured itself, at the first of ``seeds``); nothing trains here
    (``train_tables`` does). On SynthPose profiles each run row shows its
    paired effect over the table's baseline (``kdlib.paper_tables.assemble.assemble_table(relative=True)``).
    Returns [{name, title, frame, markdown, claims (DataFrame), claims_markdown}]."""
    module = paper_module(paper)
    names = list(names or module.TABLES)
    seeds = [int(s) for s in (seeds if seeds is not None else get_profile(profile)['seeds'])]
    out = []
    for name in names:
        table = module.TABLES[name]
        per_seed = with_derived(table, _kit_values(paper, module, name, table, profile, seeds,
                                                   (measured or {}).get(name, {})))
        frame, markdown = assemble_table(table, per_seed, relative=is_synthpose(profile))
        claims = [evaluate_claim(c, per_seed, paper=table.paper_values()) for c in table.claims]
        found = sum(1 for row in table.run_rows() if per_seed.get(row.label))
        out.append(dict(name=name, title=markdown_safe(f'{table.title} -- kit rows found: {found} of '
                                                       f'{len(table.run_rows())}'),
                        frame=frame, markdown=markdown_safe(markdown), claims=pd.DataFrame(claims),
                        claims_markdown=claims_markdown(claims)))
    return out


def _kit_values(paper: str, module, name: str, table, profile: str, seeds: list[int],
                measured: dict) -> dict[str, dict[int, dict]]:
    """{row label: {seed: column values}}: driver cells, then the run cache, then ``measured``."""
    cells = plan_cells(paper, NOTEBOOKS_DIR / PAPERS[paper][0], {name: table}, profile, seeds,
                       results_dir(profile) / paper)
    driver = {(label, c.params['seed']): c for c in cells for _, label in c.rows if cell_done(c)}
    per_row = {}
    for row in table.run_rows():
        per_row[row.label] = {}
        for seed in seeds:
            if (row.label, seed) in driver:
                metrics = json.loads(Path(driver[row.label, seed].result_path).read_text())['metrics']
            elif row.label in measured and seed == seeds[0]:
                metrics = measured[row.label]
            else:
                results = cached_row_results(module, profile, seed, row.params)
                metrics = results and row_metrics(module, results, row.params, table.columns)
            if metrics:
                per_row[row.label][seed] = cell_values(table, metrics)
    return per_row


def show_tables(items: list[dict]) -> None:
    """Display each table item (``table_items``): its title,
    the markdown table, then its claims ledger in full."""
    for item in items:
        display(Markdown(f"### {item['title']}\n\n{item['markdown']}\n\n{item.get('claims_markdown', '')}"))


def noisy_predictions(records, noise: float, rng):
    """Predictions for notebook 00's metric demo: each person's ground-truth joints plus Gaussian
    noise of standard deviation ``noise`` x the person's size (sqrt of the box area); unlabelled
    joints at the box centre. Returns (coords (N, K, 2), scores (N, K) of ones, indices (N,))."""
    coords = np.stack([r['joints'][:, :2] for r in records]).astype(np.float64)
    size = np.array([np.sqrt(r['bbox'][2] * r['bbox'][3]) for r in records])
    for c, r in zip(coords, records):
        x, y, w, h = r['bbox']
        c[r['joints'][:, 2] <= 0] = (x + w / 2, y + h / 2)
    coords += rng.normal(0, 1, coords.shape) * (noise * size)[:, None, None]
    return coords, np.ones(coords.shape[:2]), np.arange(len(records))
