"""Figures and tables of the unified-skeleton notebook (``notebooks/04_unified_skeleton.ipynb``;
Khan et al., BMVC 2024).

- ``joint_table`` / ``plot_index_maps``: the 21 unified points, their index in COCO, MPII and Halpe
  (``kdlib.skeletons.index_map``), OKS sigma and its source (Eq. 1-5).
- ``plot_joint_samples`` / ``plot_teacher_view``: the joint COCO + MPII training set, and what a
  teacher with a wider input sees of a student crop (``kdlib.data.unified.teacher_view``).
- ``run_summary``: the teachers' and this row's metrics and cost, one line per run.
- ``plot_fig2``: Fig. 2, the unified student's 21 points on crops of each source, the points that
  source never labels ringed.
- ``keypoint_oks`` / ``plot_keypoint_oks``: the per-point OKS similarity on the Halpe-style split
  (``kdlib.data.unified.keypoint_similarity``: COCOeval's per-keypoint term), the points a domain
  never labelled among them.
- ``plot_teacher_distributions``: the student's and each teacher's SimCC x distribution of a shared,
  a COCO-only and an MPII-only point (the teachers' bins mapped into the student's frame,
  ``kdlib.methods.unified.crop_teacher_bins``).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from torch.utils.data import Subset

from kdlib.data.unified import SHARED_JOINTS, UNIFIED, keypoint_similarity, teacher_view
from kdlib.figures.common import denormalize, draw_pose
from kdlib.methods.unified import UnifiedMultiTeacher, crop_teacher_bins
from kdlib.skeletons import SKELETONS, index_map
from kdlib.train.trainer import predict_dataset

GROUP_COLOURS = {'shared': 'tab:green', 'COCO only': 'tab:blue', 'MPII only': 'tab:red'}
# where each unified point's OKS sigma comes from (kdlib/data/unified.py docstring)
SIGMA_SOURCE = {'head_top': 'Halpe head', 'upper_neck': 'Halpe neck', 'pelvis': 'Halpe hip',
                'thorax': "shoulders' (kit choice)"}


def joint_group(name: str) -> str:
    """'shared' (Eq. 2), 'COCO only' (Eq. 3) or 'MPII only' (Eq. 4)."""
    return 'shared' if name in SHARED_JOINTS else \
        'COCO only' if name in SKELETONS['coco'].joint_names else 'MPII only'


def joint_table() -> pd.DataFrame:
    """One row per unified point: group, index in COCO / MPII / Halpe ('-' where absent), OKS sigma
    and its source, the point it flips to."""
    maps = {name: index_map(SKELETONS[name], UNIFIED) for name in ('coco', 'mpii', 'halpe')}
    table = pd.DataFrame({
        'group': [joint_group(n) for n in UNIFIED.joint_names],
        'COCO idx': maps['coco'], 'MPII idx': maps['mpii'], 'Halpe idx': maps['halpe'],
        'OKS sigma': UNIFIED.sigmas.round(3),
        'sigma from': [SIGMA_SOURCE.get(n, 'COCO (pycocotools)') for n in UNIFIED.joint_names],
        'flips to': [UNIFIED.joint_names[j] for j in UNIFIED.flip_index]},
        index=pd.Index(UNIFIED.joint_names, name='unified point'))
    return table.replace(-1, '-')


def plot_index_maps():
    """Each dataset's joints (COCO left, MPII right) linked to the unified 21 (middle)."""
    fig, ax = plt.subplots(figsize=(9, 7))
    for j, name in enumerate(UNIFIED.joint_names):
        colour = GROUP_COLOURS[joint_group(name)]
        ax.text(0.5, -j, f'{j:2d} {name}', ha='center', va='center', color=colour, fontsize=9,
                bbox=dict(boxstyle='round', fc='white', ec=colour))
    for x, skel, side in ((0.0, SKELETONS['coco'], 'right'), (1.0, SKELETONS['mpii'], 'left')):
        m = index_map(skel, UNIFIED)
        for k, name in enumerate(skel.joint_names):
            y = -k * (UNIFIED.num_joints - 1) / (skel.num_joints - 1)
            ax.text(x, y, f'{skel.name.upper()} {k:2d} {name}', ha=side, va='center', fontsize=8)
            target = int(np.flatnonzero(m == k)[0])
            ax.plot([x + (0.01 if side == 'right' else -0.01), 0.5 + (-0.12 if x == 0 else 0.12)],
                    [y, -target], color='grey', lw=0.6)
    ax.set_xlim(-0.45, 1.45)
    ax.axis('off')
    ax.set_title('COCO-17 -> unified-21 <- MPII-16 (green shared, blue COCO only, red MPII only)')
    return fig


def plot_joint_samples(joint, per_source: int = 4):
    """The first ``per_source`` training crops of each source of a ``UnifiedDataset``, only the
    points their dataset labels drawn."""
    fig, axes = plt.subplots(len(joint.names), per_source, figsize=(3 * per_source, 3.25 * len(joint.names)),
                             squeeze=False)
    for row, (src, ax_row) in enumerate(zip(joint.names, axes)):
        for col, ax in enumerate(ax_row):
            sample = joint[int(joint.offsets[row]) + col]
            labelled = sample['joints'].copy()                               # (21, 3)
            labelled[:, 2] *= sample['keypoint_mask']
            draw_pose(sample['image'], labelled, UNIFIED, ax=ax, min_visibility=0)
            ax.set_title(f"{src}-style: {int(sample['keypoint_mask'].sum())} of 21 labelled", fontsize=9)
            ax.axis('off')
    fig.tight_layout()
    return fig


def plot_teacher_view(image, student_size, teacher_size):
    """A student crop (3, H, W) and the same crop padded to a teacher's input width."""
    image = torch.as_tensor(image)[None]                                     # (1, 3, H, W)
    view = teacher_view(image, tuple(student_size), tuple(teacher_size))
    fig, axes = plt.subplots(1, 2, figsize=(6, 3.5))
    for ax, img, title in zip(axes, (image[0], view[0]), (f'student {tuple(student_size)}',
                                                          f'MPII teacher {tuple(teacher_size)}')):
        ax.imshow(denormalize(img))
        ax.set_title(title, fontsize=9)
        ax.axis('off')
    return fig


def run_summary(runs: dict[str, dict], configs: dict, this: str, metrics: dict) -> pd.DataFrame:
    """One line per run: dataset trained on, MPII PCKh, COCO AP, keypoints, cost. The row ``this``
    reads its table metrics (``paper_tables.unified.row_metrics``: both datasets evaluated)."""
    summary = {}
    for name, r in runs.items():
        m = {'Mean': metrics['PCK'], 'AP': metrics['AP']} if name == this else r['metrics']
        summary[name] = {'trained on': configs[name].dataset, 'MPII PCKh': m.get('Mean', np.nan),
                         'COCO AP': m.get('AP', np.nan), 'keypoints': r['num_joints'],
                         'Params (M)': r['params_M'], 'GFLOPs': r['gflops_paper'],
                         'train s': r['train_time_s']}
    return pd.DataFrame(summary).T


def plot_fig2(model, val_parts: dict, device: str = 'cpu', per_source: int = 4):
    """Fig. 2: predicted 21-point skeletons on MPII-style and COCO-style validation crops, the
    points that source never labels ringed red."""
    fig, axes = plt.subplots(2, per_source, figsize=(3 * per_source, 6.5), squeeze=False)
    for ax_row, src in zip(axes, ('mpii', 'coco')):
        val, own = val_parts[src], SKELETONS[src].joint_names
        new = [UNIFIED.index(n) for n in UNIFIED.joint_names if n not in own]
        pred = predict_dataset(model, Subset(val, range(per_source)), UNIFIED.flip_index, device=device)
        for i, ax in enumerate(ax_row):
            xy = np.concatenate([pred['coords_input'][i], np.ones((UNIFIED.num_joints, 1))], 1)  # (21, 3)
            draw_pose(val[i]['image'], xy, UNIFIED, ax=ax)
            ax.scatter(xy[new, 0], xy[new, 1], s=70, facecolors='none', edgecolors='red', linewidths=1.5)
            ax.set_title(f'{src}-style: red = never labelled here', fontsize=9)
            ax.axis('off')
    fig.tight_layout()
    return fig


def keypoint_oks(model, halpe_val, device: str = 'cpu') -> pd.DataFrame:
    """Per unified point: its group and the mean OKS similarity of the model's predictions on the
    Halpe-style validation split (``keypoint_similarity``, labelled joints only)."""
    pred = predict_dataset(model, halpe_val, UNIFIED.flip_index, device=device)
    return pd.DataFrame({'keypoint': UNIFIED.joint_names,
                         'group': [joint_group(n) for n in UNIFIED.joint_names],
                         'mean OKS similarity': keypoint_similarity(halpe_val.records, pred['coords'],
                                                                    pred['indices'])})


def plot_keypoint_oks(per_kpt: pd.DataFrame, title: str):
    """Seaborn bars of ``keypoint_oks``, coloured by group."""
    fig, ax = plt.subplots(figsize=(11, 3.5))
    sns.barplot(per_kpt, x='keypoint', y='mean OKS similarity', hue='group', dodge=False,
                palette=GROUP_COLOURS, ax=ax)
    ax.tick_params(axis='x', rotation=60)
    plt.setp(ax.get_xticklabels(), ha='right')
    ax.set_title(title)
    fig.tight_layout()
    return fig


@torch.no_grad()
def plot_teacher_distributions(student, teachers: dict, sample: dict, student_size, teacher_sizes: dict,
                               split_ratio: float, points=('left_wrist', 'nose', 'head_top'),
                               device: str = 'cpu'):
    """For one crop: the student's softmax x distribution of each point in ``points``, and each
    teacher's that knows the point (its bins cropped to the student's frame)."""
    image = torch.as_tensor(sample['image'])[None].to(device)                # (1, 3, H, W)
    s_out = student(image)
    t_out = {d: t(teacher_view(image, tuple(student_size), tuple(teacher_sizes[d])))
             for d, t in teachers.items()}
    offsets = UnifiedMultiTeacher({d: d for d in teachers}, tuple(student_size),
                                  {d: tuple(teacher_sizes[d]) for d in teachers}, split_ratio=split_ratio)
    bins = s_out['simcc_x'].shape[-1]
    fig, axes = plt.subplots(1, len(points), figsize=(13, 3.2), squeeze=False)
    for ax, name in zip(axes[0], points):
        ax.plot(s_out['simcc_x'][0, UNIFIED.index(name)].softmax(-1).cpu(), label='student', lw=2)
        for d, out in t_out.items():
            skel = SKELETONS[d]
            if name in skel.joint_names:
                x = crop_teacher_bins(out['simcc_x'], offsets.x_offset(d), bins)   # (1, K_d, bins)
                ax.plot(x[0, skel.index(name)].softmax(-1).cpu(), '--', label=f'{d} teacher')
        ax.set_title(name)
        ax.set_xlabel('x bin')
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
