"""Evaluation of top-down predictions: COCO-style AP (pycocotools) and MPII PCKh.

`evaluate_predictions(dataset, coords, scores, indices)` is what `TopDownDataset.evaluate` calls:
coords (N, K, 2) in original-image pixels, scores (N, K), indices (N,) into `dataset.records`.
`metrics_table` turns the metric dict into a DataFrame with the papers' column order.
All values are percentages, as printed in the papers.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from kdlib.data.transforms import box_to_center_scale
from kdlib.evaluation.coco import (COCO_KEYS, IN_VIS_THRE, SIMCC_IN_VIS_THRE, evaluate_coco,
                                   keypoint_score_threshold, oks_nms, rescore)
from kdlib.evaluation.pckh import COLUMNS as PCKH_COLUMNS
from kdlib.evaluation.pckh import evaluate_pckh, pckh_per_joint

TABLE_COLUMNS = {
    'coco': ('AP', 'AP50', 'AP75', 'APM', 'APL', 'AR'),
    'halpe': ('AP', 'AP50', 'AP75', 'APM', 'APL', 'AR'),
    'crowdpose': ('AP', 'AP50', 'AP75', 'APE', 'APM', 'APH'),
    'mpii': PCKH_COLUMNS,
}
__all__ = ['evaluate_predictions', 'metrics_table', 'evaluate_coco', 'evaluate_pckh', 'oks_nms',
           'rescore', 'keypoint_score_threshold', 'evaluation_image_ids', 'pckh_per_joint',
           'COCO_KEYS', 'IN_VIS_THRE', 'SIMCC_IN_VIS_THRE', 'TABLE_COLUMNS']


def crop_areas(records, cfg) -> np.ndarray:
    """(N,) area of each record's padded, aspect-fixed crop (HRNet's OKS-NMS area, prod(s * 200))."""
    return np.array([np.prod(box_to_center_scale(r['bbox'], cfg.aspect_ratio, cfg.padding)[1])
                     for r in records], dtype=np.float64)


def evaluation_image_ids(records, info: dict) -> list[int]:
    """Images COCOeval covers: those of the records plus the GT images that got none (e.g. no
    detection box there; `info['images_without_records']` from the loader) -- every GT image of the
    split, as HRNet's COCOeval (default imgIds); a truncated record list keeps its own images."""
    return sorted({int(r['image_id']) for r in records} | set(info.get('images_without_records', ())))


def _check(coords, scores, indices, n_records, num_joints):
    coords, scores, indices = np.asarray(coords), np.asarray(scores), np.asarray(indices)
    if coords.ndim != 3 or coords.shape[1:] != (num_joints, 2):
        raise ValueError(f'coords should be (N, {num_joints}, 2) in image pixels, got {coords.shape}')
    if scores.shape != coords.shape[:2] or indices.shape != coords.shape[:1]:
        raise ValueError(f'scores {scores.shape} / indices {indices.shape} do not match coords '
                         f'{coords.shape}: expected (N, K) and (N,)')
    if indices.size and (indices.min() < 0 or indices.max() >= n_records):
        raise ValueError(f'indices must index the dataset records (0..{n_records - 1})')
    return coords, scores, indices


def evaluate_predictions(dataset, coords, scores, indices, **kw) -> dict[str, float]:
    """Metrics dict of a TopDownDataset's predictions (PCKh for MPII, else COCO-style AP).

    kw go to `evaluate_coco`, e.g. in_vis_thre (`keypoint_score_threshold` of the head that made
    the scores; `kdlib.train.trainer.predict_dataset` returns it in 'evaluate_kw').
    """
    sk = dataset.skeleton
    coords, scores, indices = _check(coords, scores, indices, len(dataset.records), sk.num_joints)
    if sk.name == 'mpii':
        return evaluate_pckh(dataset.records, sk, coords, indices)
    ann_file = dataset.info.get('ann_file')
    if ann_file is None or sk.sigmas is None:
        raise ValueError(f'COCO-style evaluation of {sk.name!r} needs info["ann_file"] (the GT '
                         f'JSON) and skeleton sigmas; got info keys {sorted(dataset.info)}')
    crowd = dataset.info.get('crowd_index') if sk.name == 'crowdpose' else None
    kw.setdefault('img_ids', evaluation_image_ids(dataset.records, dataset.info))
    return evaluate_coco(dataset.records, ann_file, sk, coords, scores, indices,
                         crop_areas(dataset.records, dataset.cfg), crowd_index=crowd, **kw)


def metrics_table(metrics: dict | list[dict], dataset: str, index=None) -> pd.DataFrame:
    """DataFrame with one row per metrics dict and the papers' columns of `dataset`."""
    rows = [metrics] if isinstance(metrics, dict) else list(metrics)
    cols = [c for c in TABLE_COLUMNS.get(dataset, COCO_KEYS) if any(c in r for r in rows)]
    return pd.DataFrame([{c: r.get(c, np.nan) for c in cols} for r in rows], index=index).round(1)
