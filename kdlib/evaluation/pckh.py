"""MPII PCKh, per the official protocol as HRNet's lib/dataset/mpii.py `evaluate` implements it.

A joint is correct when its distance to the ground truth is at most `threshold` x head size, with
head size = 0.6 x the diagonal of the annotated head box (SC_BIAS 0.6). Only labelled (visible in
MPII's sense, i.e. not missing) joints count. The table columns are the papers' order: Head (head
top), Sho., Elb., Wri., Hip, Kne., Ank. (left/right averaged), Mean over all joints except pelvis
and thorax weighted by how many of each are labelled, and Mean@0.1 (the same at threshold 0.1;
HRNet reads its @0.1 column at index 11 of a 0.01-step grid, i.e. 0.11 -- the kit uses 0.1).
All values in percent.
"""
from __future__ import annotations

import numpy as np

SC_BIAS = 0.6
COLUMNS = ('Head', 'Sho.', 'Elb.', 'Wri.', 'Hip', 'Kne.', 'Ank.', 'Mean', 'Mean@0.1')
_PARTS = {'Head': ('head_top',), 'Sho.': ('left_shoulder', 'right_shoulder'),
          'Elb.': ('left_elbow', 'right_elbow'), 'Wri.': ('left_wrist', 'right_wrist'),
          'Hip': ('left_hip', 'right_hip'), 'Kne.': ('left_knee', 'right_knee'),
          'Ank.': ('left_ankle', 'right_ankle')}
EXCLUDED_FROM_MEAN = ('pelvis', 'thorax')


def head_sizes(head_boxes: np.ndarray) -> np.ndarray:
    """(N,) 0.6 x diagonal of (N, 4) x1, y1, x2, y2 head boxes."""
    return SC_BIAS * np.linalg.norm(head_boxes[:, 2:4] - head_boxes[:, 0:2], axis=1)


def pckh_per_joint(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, head_boxes: np.ndarray,
                   threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint PCKh in percent (K,) and labelled counts (K,); nan where a joint is never labelled."""
    err = np.linalg.norm(pred[..., :2] - gt[..., :2], axis=-1) / head_sizes(head_boxes)[:, None]
    visible = visible.astype(bool)
    count = visible.sum(axis=0)                                                    # (K,)
    correct = ((err <= threshold) & visible).sum(axis=0)
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(count > 0, 100.0 * correct / count, np.nan), count


def pckh_table(pckh: np.ndarray, count: np.ndarray, joint_names) -> dict[str, float]:
    """Per-joint PCKh -> the papers' columns (without Mean@0.1)."""
    pos = {n: i for i, n in enumerate(joint_names)}
    out = {col: float(np.mean([pckh[pos[n]] for n in names])) for col, names in _PARTS.items()}
    in_mean = np.array([n not in EXCLUDED_FROM_MEAN for n in joint_names]) & (count > 0)
    out['Mean'] = float((pckh[in_mean] * count[in_mean]).sum() / count[in_mean].sum())
    return out


def evaluate_pckh(records, skeleton, coords, indices) -> dict[str, float]:
    """PCKh@0.5 columns + Mean@0.1 of predictions (N, K, 2) for records[indices] (with head_box)."""
    indices = np.asarray(indices)
    missing = [i for i in indices[:5] if 'head_box' not in records[i]]
    if missing:
        raise ValueError(f"PCKh needs records with 'head_box' (MPII loader); record {missing[0]} "
                         f"of dataset {records[missing[0]]['dataset']!r} has none")
    gt = np.stack([records[i]['joints'] for i in indices])                       # (N, K, 3)
    boxes = np.stack([records[i]['head_box'] for i in indices]).astype(np.float64)
    pred = np.asarray(coords, dtype=np.float64)
    pck, count = pckh_per_joint(pred, gt, gt[..., 2] > 0, boxes, 0.5)
    out = pckh_table(pck, count, skeleton.joint_names)
    pck01, _ = pckh_per_joint(pred, gt, gt[..., 2] > 0, boxes, 0.1)
    out['Mean@0.1'] = pckh_table(pck01, count, skeleton.joint_names)['Mean']
    return out
