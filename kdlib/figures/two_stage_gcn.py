"""Figures of the TwoStage-GCN notebook (``notebooks/02_two_stage_gcn.ipynb``): what the IGP-GCN
does to the frozen student's pose.

    data = collect_refinements(refiner, val_set, teacher)   # one pass, no flip test
    plot_refinement(data, val_set, i)                       # P_init -> P_1 -> P_2 -> P_3 on a crop
    errors = joint_errors(data, val_set.skeleton)           # per joint, before/after, vis/occluded
    plot_joint_errors(errors)
    plot_graph(val_set.skeleton, data)                      # adjacency A and the graph on a pose
    plot_feature_levels(refiner, val_set, i)                # F_1..F_3 with the sampled positions
    refinement_browser(data, val_set)                       # ipywidgets, sorted by GCN movement

All coordinates are input-crop pixels; errors are measured against the ground-truth joints.
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from torch.utils.data import DataLoader, Subset

from kdlib.figures.common import denormalize, draw_pose, figure_browser, grid
from kdlib.models.igp_gcn import simcc_argmax, skeleton_adjacency

OCCLUDED, VISIBLE = 1, 2                       # COCO visibility flags


@torch.no_grad()
def collect_refinements(refiner, dataset, teacher=None, batch_size: int = 32,
                        max_samples: int | None = None, device: str | None = None) -> dict:
    """Run the refiner (and teacher) over `dataset`; numpy arrays in input pixels.

    Returns index (N,), joints (N, K, 3) GT with visibility, target_weight (N, K), init (N, K, 2),
    refined (N, 3, K, 2), teacher (N, K, 2) or None, moved (N,) = mean |P_3 - P_init| per person.
    """
    device = device or next(refiner.parameters()).device
    subset = dataset if max_samples is None else Subset(dataset, range(min(max_samples, len(dataset))))
    refiner.eval()
    keep = {k: [] for k in ('index', 'joints', 'target_weight', 'init', 'refined', 'teacher')}
    for batch in DataLoader(subset, batch_size=batch_size, shuffle=False):
        images = batch['image'].to(device)
        out = refiner(images)
        keep['init'].append(out['init_coords'].cpu())
        keep['refined'].append(torch.stack(out['refined'], 1).cpu())              # (B, 3, K, 2)
        if teacher is not None:
            t = teacher.eval()(images)
            k = t['simcc_x'].shape[-1] / images.shape[-1]
            keep['teacher'].append(simcc_argmax(t['simcc_x'], t['simcc_y'], k)[0].cpu())
        for key in ('index', 'joints', 'target_weight'):
            keep[key].append(batch[key])
    data = {k: torch.cat(v).numpy() if v else None for k, v in keep.items()}
    data['moved'] = np.linalg.norm(data['refined'][:, -1] - data['init'], axis=-1).mean(-1)
    data['position'] = np.arange(len(data['index']))                              # row in the arrays
    return data


def _highlight_occluded(ax, joints: np.ndarray) -> None:
    occ = joints[:, 2] == OCCLUDED
    ax.scatter(joints[occ, 0], joints[occ, 1], s=110, facecolors='none', edgecolors='red',
               linewidths=1.5, zorder=4, label='occluded (GT)')


def plot_refinement(data: dict, dataset, row: int, axes=None, show_teacher: bool = True):
    """One person: P_init, then P_1..P_3 with arrows from P_init, occluded joints ringed red,
    the teacher's pose dashed (if collected). `row` indexes the arrays of `data`."""
    sample = dataset[int(data['index'][row])]
    skeleton = dataset.skeleton
    image = denormalize(sample['image'])
    joints = data['joints'][row]
    labelled = data['target_weight'][row] > 0
    poses = [data['init'][row]] + list(data['refined'][row])
    titles = ['P_init (stage-1 student)'] + [f'P_{i} (block {i + 1}, F_{i})' for i in range(1, 4)]
    if axes is None:
        _, axes = grid(1, 4, size=3.2)
    for ax, pose, title in zip(axes, poses, titles):
        draw_pose(image, np.c_[pose, np.ones(len(pose))], skeleton, ax=ax, title=title)
        if pose is not poses[0]:
            start = poses[0]
            for j in np.flatnonzero(np.linalg.norm(pose - start, axis=1) > 0.25):
                ax.annotate('', xy=pose[j], xytext=start[j],
                            arrowprops=dict(arrowstyle='->', color='magenta', lw=1.2))
        if show_teacher and data['teacher'] is not None:
            t = data['teacher'][row]
            ax.scatter(t[:, 0], t[:, 1], marker='x', c='white', s=22, linewidths=1.2, zorder=5,
                       label='teacher')
        _highlight_occluded(ax, joints)
        err = np.linalg.norm(pose - joints[:, :2], axis=1)[labelled].mean() if labelled.any() else np.nan
        ax.set_xlabel(f'mean error {err:.2f} px', fontsize=8)
    axes[0].legend(loc='lower left', fontsize=6, framealpha=0.6)
    return axes


def joint_errors(data: dict, skeleton) -> pd.DataFrame:
    """Long table: one row per labelled joint and stage ('before' = P_init, 'after' = P_3)."""
    joints, labelled = data['joints'], data['target_weight'] > 0
    frames = []
    for stage, pose in (('before', data['init']), ('after', data['refined'][:, -1])):
        err = np.linalg.norm(pose - joints[..., :2], axis=-1)                     # (N, K)
        n, k = np.nonzero(labelled)
        frames.append(pd.DataFrame({
            'joint': np.array(skeleton.joint_names)[k], 'error_px': err[n, k], 'stage': stage,
            'visibility': np.where(joints[n, k, 2] == OCCLUDED, 'occluded', 'visible'),
            'position': n}))
    return pd.concat(frames, ignore_index=True)


def plot_joint_errors(errors: pd.DataFrame):
    """Seaborn bars: error per joint type before/after refinement, visible vs occluded panels."""
    order = list(dict.fromkeys(errors['joint']))
    kinds = [v for v in ('visible', 'occluded') if (errors['visibility'] == v).any()]
    g = sns.catplot(data=errors, x='joint', y='error_px', hue='stage', col='visibility',
                    col_order=kinds, order=order, kind='bar', errorbar=None, height=3.2, aspect=1.8,
                    palette={'before': '#9ecae1', 'after': '#08519c'})
    g.set_xticklabels(rotation=70, fontsize=7)
    g.set_axis_labels('', 'error to GT (input px)')
    return g


def error_summary(errors: pd.DataFrame) -> pd.DataFrame:
    """Mean error before / after and the change, per visibility class."""
    table = errors.pivot_table(index='visibility', columns='stage', values='error_px', aggfunc='mean')
    table['change'] = table['after'] - table['before']
    table['joints'] = errors[errors['stage'] == 'after'].groupby('visibility').size()
    return table


def _mean_gt_pose(data: dict) -> np.ndarray:
    """(K, 2) mean of the labelled ground-truth joints (P_init where a joint is never labelled)."""
    w = (data['target_weight'] > 0)[..., None]                                   # (N, K, 1)
    gt = (data['joints'][..., :2] * w).sum(0) / np.maximum(w.sum(0), 1)
    return np.where(w.sum(0) > 0, gt, data['init'].mean(0))


def plot_graph(skeleton, data: dict | None = None, adjacency=None):
    """The GCN's graph: its adjacency matrix A (with self loops) and the edges drawn on the mean
    labelled pose (or on a circle when `data` is None)."""
    adj = skeleton_adjacency(skeleton.limbs, skeleton.num_joints).numpy() if adjacency is None \
        else np.asarray(adjacency)
    fig, (ax_a, ax_g) = plt.subplots(1, 2, figsize=(10, 4.5))
    ax_a.imshow(adj, cmap='Greys', vmin=0, vmax=1)
    names = [n.replace('left_', 'L ').replace('right_', 'R ') for n in skeleton.joint_names]
    ax_a.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
    ax_a.set_yticks(range(len(names)), names, fontsize=6)
    ax_a.set_title(f'adjacency A ({len(skeleton.limbs)} limbs + self loops)', fontsize=9)
    pose = _mean_gt_pose(data) if data is not None else \
        np.c_[np.cos(np.linspace(0, 2 * np.pi, skeleton.num_joints, endpoint=False)),
              np.sin(np.linspace(0, 2 * np.pi, skeleton.num_joints, endpoint=False))]
    draw_pose(None, np.c_[pose, np.ones(len(pose))], skeleton, ax=ax_g, marker_size=40)
    for j, name in enumerate(names):
        ax_g.annotate(name, pose[j], fontsize=6, xytext=(3, 3), textcoords='offset points')
    ax_g.invert_yaxis()
    ax_g.set_aspect('equal')
    ax_g.set_title('graph G = (V, E) on the mean labelled pose', fontsize=9)
    fig.tight_layout()
    return fig


@torch.no_grad()
def plot_feature_levels(refiner, dataset, index: int):
    """The three maps F_1..F_3 (coarse -> fine) the blocks sample, as the channel-wise L2 norm,
    with the joint positions each block samples at (P_init, P_1, P_2 for sample_at='current')."""
    sample = dataset[index]
    device = next(refiner.parameters()).device
    out = refiner.eval()(torch.as_tensor(sample['image'])[None].to(device))
    gcn = refiner.gcn
    positions = [out['init_coords']] + out['refined'][:-1] if gcn.sample_at == 'current' \
        else [out['init_coords']] * 3
    fig, axes = grid(1, 4, size=3.0)
    axes[0].imshow(denormalize(sample['image']))
    axes[0].set_title('input crop', fontsize=9)
    h, w = refiner.input_size
    for i, (ax, level, pos) in enumerate(zip(axes[1:], refiner.feature_levels, positions), start=1):
        fmap = out['multiscale'][level][0].float().norm(dim=0).cpu().numpy()   # (h_i, w_i)
        ax.imshow(fmap, cmap='viridis', extent=(-0.5, w - 0.5, h - 0.5, -0.5))
        p = pos[0].cpu().numpy()
        ax.scatter(p[:, 0], p[:, 1], s=14, c='red', edgecolors='white', linewidths=0.5)
        ax.set_title(f'F_{i}: {fmap.shape[0]}x{fmap.shape[1]} (1/{h // fmap.shape[0]}), '
                     f'{out["multiscale"][level].shape[1]} ch', fontsize=8)
    return fig


def refinement_browser(data: dict, dataset):
    """ipywidgets: validation people sorted by how far the GCN moved them (largest first)."""
    order = np.argsort(-data['moved'])

    def draw(rank: int, teacher: bool):
        row = int(order[rank])
        fig, axes = grid(1, 4, size=3.2)
        plot_refinement(data, dataset, row, axes=axes, show_teacher=teacher)
        fig.suptitle(f'rank {rank}: record {int(data["index"][row])}, '
                     f'GCN moved the joints {data["moved"][row]:.2f} px on average', fontsize=9)
        return fig
    return figure_browser({'rank': widgets.IntSlider(0, 0, len(order) - 1, description='rank',
                                                     continuous_update=False),
                           'teacher': widgets.Checkbox(value=data['teacher'] is not None,
                                                       description='teacher pose')}, draw)
