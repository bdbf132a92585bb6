"""The unified 21-point skeleton of COCO-17 and MPII-16 and the joint COCO+MPII dataset
(Khan et al., BMVC 2024, Eq. 1-5; the method is in `kdlib.methods.unified`).

    K_overlap      = K_COCO & K_MPII      12 limb points (shoulders, elbows, wrists, hips, knees, ankles)
    K_unique^COCO  = K_COCO - K_overlap    5 face points (nose, eyes, ears)
    K_unique^MPII  = K_MPII - K_overlap    4 points (pelvis, thorax, upper neck, head top)
    K_student      = union                 21 points                                   (Eq. 1-5)

Order of the 21 outputs (the paper gives none): COCO's 17 in COCO order, then pelvis, thorax,
upper_neck, head_top -- so the first 17 outputs *are* a COCO model. Flip pairs come from the names
(`kdlib.skeletons.make_skeleton`), the limbs are the union of COCO's and MPII's.

OKS sigmas of the 21 points (`UNIFIED.sigmas`), by name from `kdlib.skeletons`:
  * the 17 COCO points: pycocotools' COCO sigmas (COCO's own order; not shifted);
  * head_top .026, upper_neck .026, pelvis .066: Halpe-26's sigmas for its Head, Neck, Hip points
    (mmpose configs/_base_/datasets/halpe26.py, citing Halpe's cocoeval);
  * thorax: no benchmark defines one; the kit uses the shoulders' .079, since the paper evaluates
    thorax on Halpe as the shoulders' midpoint (Section 5) -- a documented choice.

Input sizes (paper profile: COCO 256x192, MPII 256x256). The joint loader crops *every* sample at
the student's input size: an MPII record's box goes through the same aspect-ratio fix as COCO's
(the box is widened/heightened to W/H, HRNet's `_box2cs`), i.e. MPII crops are resized to the
student's frame, and one batch mixes both sources. A teacher trained at a different size sees the
student's crop padded symmetrically to its own width (`teacher_view`); its SimCC x bins are then
the student's bins shifted by the padding (`kdlib.methods.unified.crop_teacher_bins`). Heights must
agree (256 in the paper).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from kdlib.data.topdown import IMAGENET_MEAN, IMAGENET_STD
from kdlib.skeletons import (COCO_LIMBS, COCO_JOINTS, MPII_LIMBS, SKELETONS, _SIGMA, index_map,
                             make_skeleton)

UNIFIED_JOINTS = COCO_JOINTS + ('pelvis', 'thorax', 'upper_neck', 'head_top')
UNIFIED = make_skeleton('unified', UNIFIED_JOINTS, COCO_LIMBS + MPII_LIMBS, _SIGMA)
SHARED_JOINTS = tuple(n for n in COCO_JOINTS if n in SKELETONS['mpii'].joint_names)   # Eq. (2)
_JOINT_KEYS = ('heatmap', 'simcc_x', 'simcc_y', 'target_weight', 'joints')
_BLACK = torch.as_tensor(-IMAGENET_MEAN / IMAGENET_STD).view(1, 3, 1, 1)   # a black pixel, normalised


def to_unified(array: np.ndarray, skeleton) -> np.ndarray:
    """(K_src, ...) per-joint array of `skeleton` -> (21, ...), zeros where the source lacks a point."""
    m = index_map(skeleton, UNIFIED)                                          # (21,)
    out = np.zeros((UNIFIED.num_joints,) + array.shape[1:], dtype=array.dtype)
    out[m >= 0] = array[m[m >= 0]]
    return out


def from_unified(array: np.ndarray, skeleton) -> np.ndarray:
    """(..., 21, C) -> (..., K_dst, C) for `skeleton`; points the unified skeleton lacks -> 0."""
    m = index_map(UNIFIED, skeleton)                                          # (K_dst,)
    out = array[..., np.maximum(m, 0), :].copy()
    out[..., m < 0, :] = 0
    return out


def halpe_thorax(joints: np.ndarray) -> np.ndarray:
    """Halpe (..., 26, 3) -> (..., 3) thorax as the shoulders' midpoint (paper, Section 5).

    Labelled (visibility = min of the two) only when both shoulders are labelled.
    """
    halpe = SKELETONS['halpe']
    left, right = joints[..., halpe.index('left_shoulder'), :], joints[..., halpe.index('right_shoulder'), :]
    both = (left[..., 2] > 0) & (right[..., 2] > 0)
    thorax = np.zeros_like(left)
    thorax[..., :2] = np.where(both[..., None], (left[..., :2] + right[..., :2]) / 2, 0)
    thorax[..., 2] = np.where(both, np.minimum(left[..., 2], right[..., 2]), 0)
    return thorax


def halpe_to_unified(joints: np.ndarray) -> np.ndarray:
    """Halpe-26 (K=26, 3) -> unified (21, 3): 20 points by name + the approximated thorax."""
    out = to_unified(joints, SKELETONS['halpe'])                              # thorax still 0
    out[UNIFIED.index('thorax')] = halpe_thorax(joints)
    return out


def teacher_view(images: torch.Tensor, student_size, teacher_size) -> torch.Tensor:
    """Pad (B, 3, H, W) student crops symmetrically to a teacher's (H, W_t) input with black."""
    (h, w), (ht, wt) = tuple(student_size), tuple(teacher_size)
    if (h, w) == (ht, wt):
        return images
    if h != ht or wt < w or (wt - w) % 2:
        raise ValueError(f'teacher input {teacher_size} must have the student height {h} and a '
                         f'width >= {w} differing by an even number of pixels')
    pad = (wt - w) // 2
    out = F.pad(images, (pad, pad, 0, 0))                                     # (B, 3, H, W_t)
    out[..., :pad] = _BLACK.to(images)
    out[..., wt - pad:] = _BLACK.to(images)
    return out


class UnifiedDataset(Dataset):
    """Concatenation of per-dataset `TopDownDataset`s, each sample re-indexed to the 21 points.

    Every sample keeps its `source` (index into `self.names`) and `keypoint_mask` (21,): the points
    its dataset labels. `target_weight` is zero outside them (Eq. 6's K_i).
    """

    def __init__(self, parts: dict, teacher_input_sizes: dict | None = None):
        sizes = {name: part.cfg.input_size for name, part in parts.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f'UnifiedDataset parts must share one input size (the student\'s); got {sizes}')
        self.parts, self.names = dict(parts), list(parts)
        self.cfg = next(iter(parts.values())).cfg
        self.skeleton = UNIFIED
        self.flip_index = UNIFIED.flip_index
        self.teacher_input_sizes = dict(teacher_input_sizes or {})
        self.offsets = np.cumsum([0] + [len(p) for p in parts.values()])
        self.masks = {n: (index_map(p.skeleton, UNIFIED) >= 0).astype(np.float32)
                      for n, p in parts.items()}

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def locate(self, idx: int) -> tuple[int, int]:
        """Global index -> (source index, index inside that part)."""
        src = int(np.searchsorted(self.offsets, idx, side='right') - 1)
        return src, int(idx - self.offsets[src])

    def __getitem__(self, idx: int) -> dict:
        src, local = self.locate(idx)
        name = self.names[src]
        part = self.parts[name]
        sample = part[local]
        for key in _JOINT_KEYS:
            if key in sample:
                sample[key] = to_unified(np.asarray(sample[key]), part.skeleton)
        sample['keypoint_mask'] = self.masks[name]
        sample['source'] = np.int64(src)
        sample['index'] = np.int64(idx)
        return sample

    def evaluate(self, coords, scores, indices, **kw) -> dict[str, float]:
        """Each source on its own skeleton: '<name>/<metric>', plus 'Avg' = (COCO AP + MPII PCKh) / 2."""
        coords, scores, indices = np.asarray(coords), np.asarray(scores), np.asarray(indices)
        metrics = {}
        for src, name in enumerate(self.names):
            part = self.parts[name]
            sel = (indices >= self.offsets[src]) & (indices < self.offsets[src + 1])
            if not sel.any():
                continue
            c = from_unified(coords[sel], part.skeleton)                      # (n, K, 2)
            s = from_unified(scores[sel][..., None], part.skeleton)[..., 0]   # (n, K)
            res = part.evaluate(c, s, indices[sel] - self.offsets[src], **kw)
            metrics.update({f'{name}/{k}': v for k, v in res.items()})
        if 'coco/AP' in metrics and 'mpii/Mean' in metrics:
            metrics['Avg'] = (metrics['coco/AP'] + metrics['mpii/Mean']) / 2      # Table 1 'Avg'
        return metrics


# ----------------------------------------------------------------------------- cross-dataset evaluation
SHARED = make_skeleton('shared12', SHARED_JOINTS, COCO_LIMBS, _SIGMA)   # Table 1's '*' rows


def _coco_gt_in_frame(ann_file: str, src, frame, convert) -> str:
    """A temporary GT JSON whose keypoints are re-indexed from `src` to `frame` by `convert`."""
    import json
    import tempfile
    with open(ann_file) as f:
        data = json.load(f)
    for ann in data['annotations']:
        kpts = np.asarray(ann['keypoints'], np.float32)[:3 * src.num_joints].reshape(-1, 3)
        ann['keypoints'] = convert(kpts).reshape(-1).tolist()
        ann['num_keypoints'] = int((convert(kpts)[:, 2] > 0).sum())
    data['categories'][0]['keypoints'] = list(frame.joint_names)
    data['categories'][0]['skeleton'] = [[a + 1, b + 1] for a, b in frame.limbs]
    fd, path = tempfile.mkstemp(suffix='.json', prefix=f'kdlib_{frame.name}_gt_')
    with open(fd, 'w') as f:
        json.dump(data, f)
    return path


def evaluate_in_frame(dataset, coords, scores, indices, frame, convert, **kw) -> dict[str, float]:
    """Metrics of predictions (N, K_frame, 2) given in skeleton `frame`, against `dataset`'s GT
    re-indexed to `frame` by `convert` ((K_src, 3) -> (K_frame, 3)): MPII -> PCKh Mean and
    Mean@0.1 over the frame's joints (pelvis/thorax excluded as in the official mean); COCO-style
    -> pycocotools AP/AR with the frame's sigmas (`kw`: `evaluate_coco` keywords, e.g. the scores'
    rescoring threshold `in_vis_thre` that `kdlib.train.trainer.predict_dataset` reports)."""
    import os
    from kdlib.evaluation import crop_areas, evaluate_coco
    from kdlib.evaluation.pckh import EXCLUDED_FROM_MEAN, pckh_per_joint
    records = [dict(r, joints=convert(r['joints'])) for r in dataset.records]
    indices = np.asarray(indices)
    if dataset.skeleton.name == 'mpii':
        gt = np.stack([records[i]['joints'] for i in indices])                    # (N, K, 3)
        boxes = np.stack([records[i]['head_box'] for i in indices]).astype(np.float64)
        keep = np.array([n not in EXCLUDED_FROM_MEAN for n in frame.joint_names])
        out = {}
        for key, thr in (('Mean', 0.5), ('Mean@0.1', 0.1)):
            pck, count = pckh_per_joint(np.asarray(coords, np.float64), gt, gt[..., 2] > 0, boxes, thr)
            use = keep & (count > 0)
            out[key] = float((pck[use] * count[use]).sum() / count[use].sum())
        return out
    path = _coco_gt_in_frame(dataset.info['ann_file'], dataset.skeleton, frame, convert)
    try:
        return evaluate_coco(records, path, frame, coords, scores, indices,
                             crop_areas(dataset.records, dataset.cfg), **kw)
    finally:
        os.unlink(path)


MPII_ONLY_JOINTS = tuple(n for n in UNIFIED_JOINTS if n not in COCO_JOINTS)   # Eq. (4): COCO never labels


def keypoint_similarity(records, coords, indices, to_frame=halpe_to_unified,
                        sigmas=UNIFIED.sigmas) -> np.ndarray:
    """(21,) mean OKS similarity of each predicted point over the persons that label it.

    Per person n and point k: exp(-d^2 / (2 s^2 kappa^2)) with d the pixel distance, s^2 the
    record's area and kappa = 2 sigma_k (COCOeval's per-keypoint term); averaged over the persons
    whose ground truth (`to_frame`: Halpe -> unified, thorax = shoulders' midpoint) labels k; NaN
    where none does. coords: (N, 21, 2) original-image pixels of `records[indices]`.
    """
    gt = np.stack([to_frame(records[i]['joints']) for i in indices])              # (N, 21, 3)
    area = np.array([records[i]['area'] for i in indices], np.float64)[:, None]   # (N, 1)
    d2 = ((np.asarray(coords, np.float64) - gt[..., :2]) ** 2).sum(-1)           # (N, 21)
    oks = np.exp(-d2 / (2 * np.maximum(area, 1) * (2 * np.asarray(sigmas)) ** 2))
    labelled = gt[..., 2] > 0
    count = labelled.sum(0)
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(count > 0, (oks * labelled).sum(0) / count, np.nan)


def similarity_metrics(records, coords, indices) -> dict[str, float]:
    """'OKS <point>' for the 21 unified points on Halpe, and 'OKS MPII-only': the mean over the 4
    points COCO never labels (Table 5's kit column; the paper's Fig. 2 claim)."""
    per_point = keypoint_similarity(records, coords, indices)
    out = {f'OKS {n}': float(v) for n, v in zip(UNIFIED.joint_names, per_point)}
    labelled = [out[f'OKS {n}'] for n in MPII_ONLY_JOINTS if np.isfinite(out[f'OKS {n}'])]
    out['OKS MPII-only'] = float(np.mean(labelled)) if labelled else float('nan')
    return out


class CrossEvalDataset(Dataset):
    """`dataset`'s validation samples for a model that predicts `model_skeleton`.

    joints='all': the dataset's full skeleton; points the model cannot predict count as misses
    (placed at the image origin with score 0) -- Table 1's plain rows. joints='shared': only the
    12 points COCO and MPII share -- Table 1's '*' rows. joints='unified': the 21 unified points
    (Halpe: 20 by name + thorax = shoulders' midpoint) -- Table 5, with the per-point OKS
    similarities of `similarity_metrics` besides the AP.
    """

    def __init__(self, dataset, model_skeleton, joints: str = 'all'):
        if joints not in ('all', 'shared', 'unified'):
            raise ValueError(f"joints must be 'all', 'shared' or 'unified', got {joints!r}")
        self.dataset, self.skeleton, self.joints = dataset, model_skeleton, joints
        self.cfg, self.records, self.info = dataset.cfg, dataset.records, dataset.info

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx: int) -> dict:
        return self.dataset[idx]

    def _to_unified(self, array):
        if self.skeleton.name == 'unified':
            return array
        m = index_map(self.skeleton, UNIFIED)
        out = np.zeros(array.shape[:-2] + (UNIFIED.num_joints, array.shape[-1]), array.dtype)
        out[..., m >= 0, :] = array[..., m[m >= 0], :]
        return out

    def evaluate(self, coords, scores, indices, **kw) -> dict[str, float]:
        u_xy = self._to_unified(np.asarray(coords))                              # (N, 21, 2)
        u_s = self._to_unified(np.asarray(scores)[..., None])                    # (N, 21, 1)
        src = self.dataset.skeleton
        if self.joints == 'all':
            return self.dataset.evaluate(from_unified(u_xy, src), from_unified(u_s, src)[..., 0],
                                         indices, **kw)
        frame = SHARED if self.joints == 'shared' else UNIFIED
        if src.name == 'halpe' and frame is UNIFIED:
            def convert(j):
                return halpe_to_unified(j)
        else:
            def convert(j):
                return from_unified(to_unified(j, src)[None], frame)[0]
        xy, s = from_unified(u_xy, frame), from_unified(u_s, frame)[..., 0]
        metrics = evaluate_in_frame(self.dataset, xy, s, indices, frame, convert, **kw)
        if src.name == 'halpe' and frame is UNIFIED:
            metrics.update(similarity_metrics(self.records, u_xy, np.asarray(indices)))
        return metrics


# ----------------------------------------------------------------------------- experiment hooks
def build_unified_dataset(cfg, profile: dict, split: str, pipeline):
    """`kdlib.experiment.DATASET_BUILDERS['unified']`: COCO + MPII of the profile's data root, both
    cropped at the student's input size (`pipeline`); teachers' sizes are the profile's per-dataset
    input sizes."""
    from kdlib.data import build_dataset
    from kdlib.profiles import dataset_root
    sources = cfg.dataset_params.get('sources', ('coco', 'mpii'))
    parts = {name: build_dataset(name, split, dataset_root(profile, name), pipeline)
             for name in sources}
    sizes = profile['input_size']
    return UnifiedDataset(parts, {n: tuple(sizes.get(n, sizes['default'])) for n in sources})


