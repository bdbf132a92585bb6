"""COCO-style keypoint AP through pycocotools' COCOeval (COCO, CrowdPose, Halpe-26).

Procedure of HRNet lib/dataset/coco.py `evaluate` (github.com/leoxiaobin/deep-high-resolution-net.pytorch):
1. rescoring -- instance score = box score x mean confidence of the joints above TEST.IN_VIS_THRE
   (0 when none is). The threshold belongs to the head that made the scores
   (`keypoint_score_threshold`): 0.2 for heatmap maxima (HRNet's COCO configs); for SimCC's
   softmax probabilities, which peak near 0.1 on a fitted model, SimCC's own configs use 0.01
   (leeyegy/SimCC experiments/coco/hrnet/sa_simdr/w48_256x192_adam_lr1e-3_split2_sigma4.yaml and
   simdr/nmt_w48_256x192_adam_lr1e-3.yaml; 0.005 in its split-1.5 and sigma-6 configs) -- with 0.2
   every SimCC person would score 0 and the ranking would be input order; RTMPose's logit maxima
   (mmpose, label type 'rtmpose') keep mmpose CocoMetric's keypoint_score_thr 0.2;
2. OKS-NMS per image at OKS_THRE 0.9 (lib/nms/nms.py `oks_nms`, re-implemented here, vectorised),
   with the padded crop area as the OKS area;
3. the results are passed on unrounded (HRNet `_write_coco_keypoint_results` json-dumps the float
   keypoints as they are); COCOeval(iouType='keypoints') with the skeleton's OKS sigmas
   (`params.kpt_oks_sigmas`) on every image of the split (HRNet leaves COCOeval's default
   imgIds, all GT images): a labelled person whose image has no detection box is a miss.
   `evaluation_image_ids` (kdlib.evaluation) gives that set; `img_ids=None` falls back to the
   images of the records.

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

from kdlib.data.formats.errors import DatasetFormatError

COCO_KEYS = ('AP', 'AP50', 'AP75', 'APM', 'APL', 'AR', 'AR50', 'AR75', 'ARM', 'ARL')  # stats order
IN_VIS_THRE = 0.2     # HRNet TEST.IN_VIS_THRE (heatmap maxima); mmpose CocoMetric keypoint_score_thr
SIMCC_IN_VIS_THRE = {'gaussian': 0.01, 'onehot': 0.01,   # SimCC TEST.IN_VIS_THRE, COCO 256x192 k=2
                     'rtmpose': 0.2}                      # mmpose CocoMetric keypoint_score_thr
OKS_THRE = 0.9        # HRNet TEST.OKS_THRE
CROWD_AREA_FACTOR = 0.53
CROWD_THRESHOLDS = (0.2, 0.8)


def keypoint_score_threshold(scores: str = 'heatmaps', simcc_label: str = 'gaussian') -> float:
    """Rescoring threshold (IN_VIS_THRE) of the reference code of the head whose scores these are.

    scores: 'heatmaps' (heatmap maxima: HRNet, 0.2) or 'simcc', read per `simcc_label`: SimCC's
    softmax maxima for 'gaussian' (SA-SimDR) and 'onehot' (SimDR) labels, 0.01 in SimCC's configs;
    mmpose's logit maxima for 'rtmpose', 0.2 (CocoMetric). `kdlib.decode.predict(..., info=...)`
    says which scores it returned.
    """
    if scores == 'heatmaps':
        return IN_VIS_THRE
    if scores == 'simcc' and simcc_label in SIMCC_IN_VIS_THRE:
        return SIMCC_IN_VIS_THRE[simcc_label]
    raise ValueError(f"scores must be 'heatmaps' or 'simcc' and simcc_label one of "
                     f"{sorted(SIMCC_IN_VIS_THRE)}; got {scores!r}, {simcc_label!r}")


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
    missing = [key for key in ('images', 'annotations', 'categories') if key not in data]
    if missing:                 # the loaders check this first; a file evaluated without one, too
        raise DatasetFormatError(f'{ann_file}: a COCO-style keypoint GT file needs the keys '
                                 f"'images', 'annotations' and 'categories'; missing {missing}")
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
    """pycocotools result dicts after HRNet's rescoring and per-image OKS-NMS (keypoints unrounded)."""
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
                                keypoints=kpts[j].reshape(-1).tolist()))
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
                  in_vis_thre: float = IN_VIS_THRE, oks_thre: float = OKS_THRE,
                  img_ids=None) -> dict[str, float]:
    """COCO metrics (COCO_KEYS) or, with `crowd_index`, CrowdPose's AP/AP50/AP75/AR.../APE/APM/APH.

    img_ids: the images evaluated (None: those of `records`); in_vis_thre: the scores' head's
    rescoring threshold (`keypoint_score_threshold`).
    """
    crowd = crowd_index is not None
    coco_gt = load_gt(ann_file, skeleton.num_joints, crowdpose=crowd)
    img_ids = sorted({int(r['image_id']) for r in records} if img_ids is None
                     else {int(i) for i in img_ids})
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
