"""COCO-style keypoint AP through pycocotools' COCOeval (COCO, CrowdPose, Halpe-26).

Procedure of HRNet lib/dataset/coco.py `evaluate` (github.com/leoxiaobin/deep-high-resolution-net.pytorch):
1. rescoring -- instance score = box score x mean confidence of the joints above IN_VIS_THRE 0.2
   (0 when none is);
2. OKS-NMS per image at OKS_THRE 0.9 (lib/nms/nms.py `oks_nms`, re-implemented here, vectorised),
   with the padded crop area as the OKS area;
3. COCOeval(iouType='keypoints') with the skeleton's OKS sigmas (`params.kpt_oks_sigmas`), on
   the images that the dataset's records come from.

CrowdPose follows crowdposetools (github.com/Jeff-sjtu/CrowdPose, crowdpose-api/PythonAPI/
crowdposetools/cocoeval.py): OKS area = 0.53 x GT box w x h, maxDets 20, and AP^E / AP^M / AP^H
= AP on the images whose `crowdIndex` is < 0.2, in [0.2, 0.8), >= 0.8. Note: the CrowdPose paper
describes the easy split as crowd index 0-0.1, but the official evaluator that produced every
published number calls `get_type_result(first=0.2, second=0.8)`; the kit follows the evaluator
and exposes the thresholds as `crowd_thresholds`.
All metrics are returned in percent, like the papers' tables.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

COCO_KEYS = ('AP', 'AP50', 'AP75', 'APM', 'APL', 'AR', 'AR50', 'AR75', 'ARM', 'ARL')  # stats order
IN_VIS_THRE = 0.2     # HRNet TEST.IN_VIS_THRE
OKS_THRE = 0.9        # HRNet TEST.OKS_THRE
CROWD_AREA_FACTOR = 0.53
CROWD_THRESHOLDS = (0.2, 0.8)


def rescore(joint_scores: np.ndarray, box_scores: np.ndarray, in_vis_thre: float = IN_VIS_THRE):
    """(N,) box score x mean of the (N, K) joint scores above `in_vis_thre` (HRNet)."""
    keep = joint_scores > in_vis_thre
    n = keep.sum(axis=1)
    mean = np.where(n > 0, (joint_scores * keep).sum(axis=1) / np.maximum(n, 1), 0.0)
    return mean * box_scores


def oks_iou(kpts: np.ndarray, others: np.ndarray, area: float, other_areas: np.ndarray,
            sigmas: np.ndarray) -> np.ndarray:
    """OKS of one (K, 2+) pose against (M, K, 2+) poses, all joints counted (HRNet nms.py)."""
    var = (2 * sigmas) ** 2                                                # (K,)
    d2 = ((others[..., :2] - kpts[None, :, :2]) ** 2).sum(-1)             # (M, K)
    e = d2 / var / ((area + other_areas)[:, None] / 2 + np.spacing(1)) / 2
    return np.exp(-e).mean(axis=1)


def oks_nms(kpts: np.ndarray, scores: np.ndarray, areas: np.ndarray, sigmas: np.ndarray,
            thresh: float = OKS_THRE) -> list[int]:
    """Greedy NMS: keep the best pose, drop the others with OKS > thresh, repeat."""
    order = np.argsort(-scores, kind='stable')
    keep = []
    while order.size > 0:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        ovr = oks_iou(kpts[i], kpts[rest], areas[i], areas[rest], sigmas)
        order = rest[ovr <= thresh]
    return keep


def load_gt(ann_file: str, num_joints: int, crowdpose: bool = False) -> COCO:
    """pycocotools COCO of a GT file, keypoints cut to `num_joints` (Halpe's 136 -> 26),
    'num_keypoints' filled if absent, CrowdPose's OKS area 0.53 w h."""
    with open(ann_file) as f:
        data = json.load(f)
    for ann in data['annotations']:
        ann['keypoints'] = ann['keypoints'][:3 * num_joints]
        ann['num_keypoints'] = int(np.count_nonzero(np.asarray(ann['keypoints'][2::3]) > 0))
        if crowdpose or 'area' not in ann:
            w, h = ann['bbox'][2:]
            ann['area'] = (CROWD_AREA_FACTOR if crowdpose else 1.0) * w * h
        ann.setdefault('iscrowd', 0)
        ann.setdefault('category_id', 1)
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def make_results(records, coords, scores, indices, sigmas, areas, in_vis_thre=IN_VIS_THRE,
                 oks_thre=OKS_THRE) -> list[dict]:
    """pycocotools result dicts after HRNet's rescoring and per-image OKS-NMS."""
    coords, scores = np.asarray(coords, np.float64), np.asarray(scores, np.float64)
    indices = np.asarray(indices)
    box_scores = np.array([records[i]['score'] for i in indices], dtype=np.float64)
    inst_scores = rescore(scores, box_scores, in_vis_thre)
    kpts = np.concatenate([coords, scores[..., None]], axis=-1)            # (N, K, 3)
    image_ids = np.array([records[i]['image_id'] for i in indices])
    results = []
    for img in np.unique(image_ids):
        sel = np.flatnonzero(image_ids == img)
        keep = oks_nms(kpts[sel], inst_scores[sel], areas[indices[sel]], sigmas, oks_thre)
        for j in sel[keep]:
            results.append(dict(image_id=int(img), category_id=1, score=float(inst_scores[j]),
                                keypoints=kpts[j].reshape(-1).round(3).tolist()))
    return results


def run_cocoeval(coco_gt: COCO, results: list[dict], sigmas, img_ids, max_dets=None) -> COCOeval:
    """COCOeval(keypoints) with custom sigmas on `img_ids`; evaluate + accumulate + summarize."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        ev = COCOeval(coco_gt, coco_dt, iouType='keypoints')
        ev.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        ev.params.imgIds = sorted(int(i) for i in img_ids)
        if max_dets is not None:
            ev.params.maxDets = [max_dets]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def _ap(ev: COCOeval) -> float:
    """AP over all IoU thresholds, area 'all', the largest maxDets (as summarize's first stat)."""
    p = ev.eval['precision'][:, :, :, 0, -1]
    return float(np.mean(p[p > -1])) if (p > -1).any() else -1.0


def evaluate_coco(records, ann_file, skeleton, coords, scores, indices, areas,
                  crowd_index: dict | None = None, crowd_thresholds=CROWD_THRESHOLDS,
                  in_vis_thre: float = IN_VIS_THRE, oks_thre: float = OKS_THRE) -> dict[str, float]:
    """COCO metrics (COCO_KEYS) or, with `crowd_index`, CrowdPose's AP/AP50/AP75/AR.../APE/APM/APH."""
    crowd = crowd_index is not None
    coco_gt = load_gt(ann_file, skeleton.num_joints, crowdpose=crowd)
    img_ids = sorted({int(r['image_id']) for r in records})
    results = make_results(records, coords, scores, indices, skeleton.sigmas, areas,
                           in_vis_thre, oks_thre)
    if not results:
        keys = ('AP', 'AP50', 'AP75', 'AR', 'AR50', 'AR75', 'APE', 'APM', 'APH') if crowd else COCO_KEYS
        return {k: 0.0 for k in keys}
    ev = run_cocoeval(coco_gt, results, skeleton.sigmas, img_ids, 20 if crowd else None)
    stats = [100.0 * float(v) if v >= 0 else float('nan') for v in ev.stats]   # -1: no GT there
    if not crowd:
        return dict(zip(COCO_KEYS, stats))
    # pycocotools' keypoint summary with maxDets=[20]: AP, AP50, AP75, APM, APL, AR, AR50, AR75 ...
    out = {k: stats[i] for k, i in
           (('AP', 0), ('AP50', 1), ('AP75', 2), ('AR', 5), ('AR50', 6), ('AR75', 7))}
    lo, hi = crowd_thresholds
    splits = dict(APE=lambda c: c < lo, APM=lambda c: lo <= c < hi, APH=lambda c: c >= hi)
    for key, in_split in splits.items():
        ids = [i for i in img_ids if in_split(crowd_index.get(i, 0.0))]
        ap = _ap(run_cocoeval(coco_gt, results, skeleton.sigmas, ids, 20)) if ids else -1.0
        out[key] = 100.0 * ap if ap >= 0 else float('nan')      # nan: no person in that split
    return out
