"""Figures and tables of the SDP notebook (``notebooks/01_sdp.ipynb``): computed here, shown there.
The runs behind a table row and its numbers: ``kdlib.paper_tables.sdp`` (``row_runs`` /
``row_metrics``, the papers interface); the tables: ``kdlib.figures.common.table_items``.

- Fig. 4 of the SDP paper: the refined target (GT and soft heatmaps averaged with weight alpha,
  ``kdlib.methods.sdp.refined_target``) per keypoint on chosen samples, and the paper's observation
  (Section 4.6) that occluded keypoints get lower peaks and wider activation than visible ones --
  measured here over a whole validation set (``soft_target_table`` / ``visibility_summary``; the
  claim's columns: ``visibility_metrics`` / ``fig4_measurement``).
- How the soft target of one training sample evolves over epochs (snapshots the SDP method stores,
  ``SDP(track_index=...)``), with an ipywidgets slider.
- L_sd over training with and without stepping, the learning rate on a second axis: the mechanism
  behind Eq. (4) (a lower lr makes consecutive models, hence teacher and student, more alike).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from kdlib.experiment import ExperimentConfig, build_datasets, load_trained
from kdlib.figures.common import denormalize, figure_browser
from kdlib.methods.sdp import ALPHA, DISTANCE, buffer_bytes, refined_target
from kdlib.train.checkpoint import load_checkpoint

VISIBILITY = {2: 'visible', 1: 'occluded'}      # COCO flags (records contract)


# ----------------------------------------------------------------------------- training logs

def sd_balance_by_epoch(history: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """The balance SDP actually trained with, per epoch, from the per-step log: mean L_gt (both
    columns, Eq. 2), mean alpha * L_sd (Eq. 3, 5) over the steps with a backup column, the ratio
    alpha * L_sd / L_gt and the distance s in use."""
    active = history[history['distance_used'] > 0]
    table = active.groupby('epoch').agg(l_gt=('l_gt', 'mean'), l_sd=('l_sd', 'mean'),
                                        s=('distance_used', 'max'), steps=('step', 'size'))
    table['alpha_l_sd'] = alpha * table.pop('l_sd')
    table['ratio'] = table['alpha_l_sd'] / table['l_gt']
    table.index = table.index.astype(int) + 1   # epochs counted from 1, as the progress bars do
    return table[['steps', 's', 'l_gt', 'alpha_l_sd', 'ratio']]


def buffer_report(result: dict, history: pd.DataFrame | None = None) -> pd.DataFrame:
    """Memory the SDP ring buffer held in a run (float32 estimate: crops, GT, soft targets,
    weights) at each distance it reached."""
    cfg = ExperimentConfig.from_dict(result['config'])
    batch_size = cfg.resolved_profile()['batch_size']
    distances = sorted(set(history['distance'].astype(int))) if history is not None \
        else [int(cfg.method_params.get('distance', DISTANCE))]
    size, compact = tuple(result['input_size']), bool(cfg.method_params.get('compact_buffer'))
    return pd.DataFrame([dict(s=d, batch_size=batch_size, input_size=f'{size[0]}x{size[1]}',
                              compact=compact,
                              MiB=buffer_bytes(batch_size, size, result['num_joints'], d,
                                               compact=compact) / 2**20)
                         for d in distances]).round(2)


# ----------------------------------------------------------------------------- Fig. 4

def peak_and_spread(heatmaps: Tensor) -> tuple[Tensor, Tensor]:
    """Per-keypoint maximum and spread of (B, K, h, w) heatmaps -> two (B, K) tensors.

    Spread = area (in heatmap pixels) where the map is at least half its peak -- the "activation
    area" the paper's Section 4.6 speaks of; 0 where the peak is not positive.
    """
    peak = heatmaps.flatten(2).amax(-1)                                       # (B, K)
    half = (heatmaps >= 0.5 * peak[..., None, None]).flatten(2).sum(-1)      # (B, K)
    return peak, torch.where(peak > 0, half, torch.zeros_like(half)).float()


@torch.no_grad()
def soft_target_table(model, dataset, alpha: float = ALPHA, batch_size: int = 32,
                      device: str = 'cpu', max_samples: int | None = None) -> pd.DataFrame:
    """One row per labelled keypoint of ``dataset``: the model's soft heatmap and the refined
    target (Eq. 5's alpha-weighted average with the GT), peak and spread of each.

    Columns: index, joint, name, visibility ('visible' | 'occluded'), peak_soft, spread_soft,
    peak_refined, spread_refined. Needs samples with 'heatmap', 'joints', 'target_weight'.
    """
    model.eval().to(device)
    names = dataset.skeleton.joint_names
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    frames, seen = [], 0
    for batch in loader:
        soft = model(batch['image'].to(device))['heatmaps'].float().cpu()     # (B, K, h, w)
        refined = refined_target(batch['heatmap'], soft, alpha)               # (B, K, h, w)
        frames.append(_keypoint_rows(batch, soft, refined, names))
        seen += len(soft)
        if max_samples is not None and seen >= max_samples:
            break
    return pd.concat(frames, ignore_index=True)


def _keypoint_rows(batch: dict, soft: Tensor, refined: Tensor, names) -> pd.DataFrame:
    peak_s, spread_s = peak_and_spread(soft)
    peak_r, spread_r = peak_and_spread(refined)
    vis = batch['joints'][..., 2].round().long()                              # (B, K)
    keep = (batch['target_weight'] > 0) & (vis > 0)
    b, k = keep.nonzero(as_tuple=True)
    return pd.DataFrame(dict(
        index=batch['index'][b].numpy(), joint=k.numpy(), name=[names[j] for j in k.tolist()],
        visibility=[VISIBILITY.get(v, 'visible') for v in vis[b, k].tolist()],
        peak_soft=peak_s[b, k].numpy(), spread_soft=spread_s[b, k].numpy(),
        peak_refined=peak_r[b, k].numpy(), spread_refined=spread_r[b, k].numpy()))


def visibility_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean / median peak and spread of soft and refined targets, occluded vs visible."""
    cols = ['peak_soft', 'spread_soft', 'peak_refined', 'spread_refined']
    summary = table.groupby('visibility')[cols].agg(['mean', 'median'])
    summary.insert(0, ('keypoints', 'count'), table.groupby('visibility').size())
    return summary.round(3)


def visibility_metrics(table: pd.DataFrame) -> dict[str, float]:
    """Fig. 4's measured columns (``TABLES['fig4']``): mean peak and mean half-maximum width of the
    refined target over visible / occluded keypoints. Width = 2 sqrt(area / pi), the diameter of a
    disc of the half-maximum area (the FWHM of a round blob: 4.7 px for the sigma-2 GT Gaussian)."""
    width = 2 * np.sqrt(table['spread_refined'] / np.pi)
    out = {}
    for vis in ('visible', 'occluded'):
        chosen = table['visibility'] == vis
        out[f'Peak ({vis})'] = float(table.loc[chosen, 'peak_refined'].mean())
        out[f'Width ({vis})'] = float(width[chosen].mean())
    return out


def gt_box_val_set(cfg):
    """The val split of ``cfg`` cropped from the GT boxes (detector boxes carry no keypoint labels,
    hence no visibility), with the run's own pipeline."""
    gt_cfg = replace(cfg, val_dataset_params={})
    return build_datasets(gt_cfg, gt_cfg.resolved_profile())[1]


def fig4_measurement(cfg, result: dict, alpha: float = ALPHA, val_set=None) -> tuple[pd.DataFrame, dict]:
    """(keypoint table, ``visibility_metrics``) of a finished run on ``gt_box_val_set(cfg)``."""
    val_set = gt_box_val_set(cfg) if val_set is None else val_set
    device = cfg.resolved_profile()['device']
    keypoints = soft_target_table(load_trained(result), val_set, alpha, device=device)
    return keypoints, visibility_metrics(keypoints)


def plot_visibility(table: pd.DataFrame):
    """Seaborn violins: refined-target peak and spread, occluded vs visible keypoints."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    order = [v for v in ('visible', 'occluded') if v in set(table['visibility'])]
    for ax, col, label in zip(axes, ('peak_refined', 'spread_refined'),
                              ('max confidence of the refined target', 'area >= half max (px)')):
        sns.violinplot(data=table, x='visibility', y=col, order=order, cut=0, ax=ax)
        ax.set_ylabel(label)
        ax.set_xlabel('')
    fig.tight_layout()
    return fig


@torch.no_grad()
def plot_refined_targets(model, dataset, indices, alpha: float = ALPHA, joints=None,
                         device: str = 'cpu'):
    """Fig. 4: per chosen sample, the crop and the refined target of each chosen keypoint, titled
    with its maximum and visibility."""
    model.eval().to(device)
    names = dataset.skeleton.joint_names
    joints = list(range(len(names)))[:6] if joints is None else list(joints)
    fig, axes = plt.subplots(len(indices), len(joints) + 1,
                             figsize=(1.9 * (len(joints) + 1), 2.1 * len(indices)), squeeze=False)
    for row, index in zip(axes, indices):
        sample = {k: torch.as_tensor(v) for k, v in dataset[index].items()}
        soft = model(sample['image'][None].to(device))['heatmaps'].float().cpu()[0]   # (K, h, w)
        target = refined_target(sample['heatmap'], soft, alpha)                       # (K, h, w)
        row[0].imshow(denormalize(sample['image']))
        row[0].set_title(f'sample {index}', fontsize=8)
        for ax, j in zip(row[1:], joints):
            vis = VISIBILITY.get(int(round(float(sample['joints'][j][2]))), 'unlabelled')
            ax.imshow(target[j].numpy(), cmap='magma', vmin=0, vmax=1)
            ax.set_title(f'{names[j]}\nmax {float(target[j].max()):.2f} ({vis})', fontsize=7)
    for ax in axes.flat:
        ax.axis('off')
    fig.tight_layout()
    return fig


def load_sdp_state(run_dir: str | Path) -> tuple[pd.DataFrame, list[dict]]:
    """(per-step history, per-epoch snapshots) that an SDP run saved in ``run_dir/last.pt``."""
    state = load_checkpoint(Path(run_dir) / 'last.pt')
    extra = state.get('method', {}).get('_extra_state')
    if extra is None:
        raise ValueError(f'{run_dir}/last.pt holds no SDP method state (was it trained with SDP?)')
    history = pd.DataFrame({k: v.numpy() for k, v in extra['history'].items()})
    return history, list(extra['snapshots'])


def plot_sd_history(histories: dict[str, pd.DataFrame], window: int = 5):
    """L_sd (Eq. 3, unweighted; rolling mean over ``window`` steps) per training step for each
    run, learning rate on a second (log) axis, stepping milestones marked."""
    fig, ax = plt.subplots(figsize=(8, 3.4))
    lr_ax = ax.twinx()
    for label, history in histories.items():
        active = history[history['distance_used'] > 0]
        line, = ax.plot(active['step'], active['l_sd'].rolling(window, min_periods=1).mean(),
                        label=f'L_sd, {label}')
        lr_ax.step(history['step'], history['lr'], where='post', ls=':', color=line.get_color(),
                   alpha=0.7)
        for _, row in history[history['distance'].diff() > 0].iterrows():
            ax.axvline(row['step'], color=line.get_color(), lw=0.6, alpha=0.5)
            ax.text(row['step'], ax.get_ylim()[1], f" s={int(row['distance'])}", fontsize=7,
                    va='top', color=line.get_color())
    ax.set_xlabel('training step t')
    ax.set_ylabel('L_sd (Eq. 3)')
    lr_ax.set_ylabel('learning rate (dotted)')
    lr_ax.set_yscale('log')
    ax.legend(loc='upper right', fontsize=8)
    fig.tight_layout()
    return fig


def plot_snapshot(snapshot: dict, joint: int | None = None):
    """One epoch's stored sample: crop, GT heatmaps and the soft target (max over keypoints, or
    one keypoint)."""
    pick = (lambda h: h.amax(0)) if joint is None else (lambda h: h[joint])
    fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.6))
    axes[0].imshow(denormalize(snapshot['image']))
    axes[1].imshow(pick(snapshot['heatmap']).numpy(), cmap='magma', vmin=0, vmax=1)
    axes[2].imshow(pick(snapshot['soft'].float()).numpy(), cmap='magma', vmin=0, vmax=1)
    for ax, title in zip(axes, (f"epoch {snapshot['epoch'] + 1} crop", 'GT target',
                                'soft target (own prediction)')):
        ax.set_title(title, fontsize=8)
        ax.axis('off')
    fig.tight_layout()
    return fig


def snapshot_slider(snapshots: list[dict]):
    """ipywidgets slider over the stored epochs of ``snapshots`` (``plot_snapshot`` for each),
    labelled with the epoch counted from 1 -- the number the figure's title shows."""
    if not snapshots:
        raise ValueError('no snapshots: train SDP with track_index set to a training-set index')

    options = [(str(snap['epoch'] + 1), i) for i, snap in enumerate(snapshots)]
    return figure_browser({'slot': widgets.SelectionSlider(options=options, value=len(options) - 1,
                                                           description='epoch')},
                          lambda slot: plot_snapshot(snapshots[slot]))

