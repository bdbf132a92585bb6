"""Skeleton definitions of the datasets used by the five papers, and the SynthPose superset.

Every skeleton lists its joints in the real dataset's own order, under canonical names shared
across datasets, so that `index_map` can translate joint arrays from one dataset to another by
name. The canonical names are COCO's plus the extra points of MPII and Halpe-26:

    CrowdPose  'head'  -> 'head_top'      Halpe  'Head' -> 'head_top'
    CrowdPose  'neck'  -> 'upper_neck'    Halpe  'Neck' -> 'upper_neck'
                                          Halpe  'Hip'  -> 'pelvis'

(The annotators of each dataset placed these points a little differently; mapping them to one
name is the usual convention of multi-dataset work and is what the unified-skeleton paper needs.)

Sources of the joint orders and OKS sigmas:
  * COCO-17: person_keypoints_*.json 'categories'; sigmas from pycocotools cocoeval.py.
  * MPII-16: HRNet lib/dataset/mpii.py (0 r_ankle ... 15 l_wrist); no OKS sigmas (PCKh).
  * CrowdPose-14: crowdpose-api/PythonAPI/crowdposetools/cocoeval.py (Jeff-sjtu/CrowdPose),
    computeOks: [.79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89, .79, .79] / 10.
  * Halpe-26: mmpose configs/_base_/datasets/halpe26.py (itself citing Halpe-FullBody
    HalpeCOCOAPI cocoeval.py): COCO's 17, then head .026, neck .026, hip .066, six foot points .079.
Flip pairs are derived from the names (left_* <-> right_*), so they cannot be off by one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COCO_JOINTS = (
    'nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear',
    'left_shoulder', 'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist',
    'left_hip', 'right_hip', 'left_knee', 'right_knee', 'left_ankle', 'right_ankle')
EXTRA_JOINTS = (
    'head_top', 'upper_neck', 'thorax', 'pelvis', 'left_big_toe', 'right_big_toe',
    'left_small_toe', 'right_small_toe', 'left_heel', 'right_heel')
MPII_JOINTS = (
    'right_ankle', 'right_knee', 'right_hip', 'left_hip', 'left_knee', 'left_ankle',
    'pelvis', 'thorax', 'upper_neck', 'head_top',
    'right_wrist', 'right_elbow', 'right_shoulder', 'left_shoulder', 'left_elbow', 'left_wrist')
# Names used inside gt_valid.mat ('dataset_joints'), same order as MPII_JOINTS.
MPII_MAT_NAMES = ('rank', 'rkne', 'rhip', 'lhip', 'lkne', 'lank', 'pelv', 'thor', 'neck', 'head',
                  'rwri', 'relb', 'rsho', 'lsho', 'lelb', 'lwri')
CROWDPOSE_JOINTS = COCO_JOINTS[5:] + ('head_top', 'upper_neck')
HALPE_JOINTS = COCO_JOINTS + (
    'head_top', 'upper_neck', 'pelvis', 'left_big_toe', 'right_big_toe',
    'left_small_toe', 'right_small_toe', 'left_heel', 'right_heel')
SUPERSET_JOINTS = COCO_JOINTS + EXTRA_JOINTS

# OKS sigmas per canonical name. COCO's from pycocotools; head_top/upper_neck/pelvis/feet from
# Halpe-26 (mmpose halpe26.py). CrowdPose's own file gives head/neck .079 (overridden below).
# 'thorax' has no sigma in any COCO-style benchmark: the kit uses the shoulders' .079.
_SIGMA = dict(zip(COCO_JOINTS, np.array(
    [.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89]) / 10))
_SIGMA.update(head_top=.026, upper_neck=.026, pelvis=.066, thorax=.079,
              left_big_toe=.079, right_big_toe=.079, left_small_toe=.079,
              right_small_toe=.079, left_heel=.079, right_heel=.079)
SIGMA_BY_NAME = _SIGMA                                          # public alias
_CROWDPOSE_SIGMA = dict(_SIGMA, head_top=.079, upper_neck=.079)   # crowdposetools computeOks

# Limbs by name. COCO: the 'skeleton' of person_keypoints JSON; the others follow mmpose's
# skeleton_info of the same dataset; the superset is the union of all of them.
_FACE = (('left_eye', 'right_eye'), ('nose', 'left_eye'), ('nose', 'right_eye'),
         ('left_eye', 'left_ear'), ('right_eye', 'right_ear'))
_ARMS = (('left_shoulder', 'left_elbow'), ('left_elbow', 'left_wrist'),
         ('right_shoulder', 'right_elbow'), ('right_elbow', 'right_wrist'))
_LEGS = (('left_hip', 'left_knee'), ('left_knee', 'left_ankle'),
         ('right_hip', 'right_knee'), ('right_knee', 'right_ankle'))
_TORSO = (('left_shoulder', 'right_shoulder'), ('left_hip', 'right_hip'),
          ('left_shoulder', 'left_hip'), ('right_shoulder', 'right_hip'))
_FEET = (('left_ankle', 'left_big_toe'), ('left_ankle', 'left_small_toe'),
         ('left_ankle', 'left_heel'), ('right_ankle', 'right_big_toe'),
         ('right_ankle', 'right_small_toe'), ('right_ankle', 'right_heel'))
COCO_LIMBS = _LEGS + _TORSO + _ARMS + _FACE + (
    ('left_ear', 'left_shoulder'), ('right_ear', 'right_shoulder'))
MPII_LIMBS = _LEGS + _ARMS + (
    ('right_hip', 'pelvis'), ('left_hip', 'pelvis'), ('pelvis', 'thorax'),
    ('thorax', 'upper_neck'), ('upper_neck', 'head_top'),
    ('right_shoulder', 'thorax'), ('left_shoulder', 'thorax'))
CROWDPOSE_LIMBS = _LEGS + _TORSO + _ARMS + (
    ('head_top', 'upper_neck'), ('left_shoulder', 'upper_neck'), ('right_shoulder', 'upper_neck'))
HALPE_LIMBS = _LEGS + _ARMS + _FACE + _FEET + (
    ('left_hip', 'pelvis'), ('right_hip', 'pelvis'), ('head_top', 'upper_neck'),
    ('upper_neck', 'pelvis'), ('upper_neck', 'left_shoulder'), ('upper_neck', 'right_shoulder'),
    ('left_ear', 'left_shoulder'), ('right_ear', 'right_shoulder'))


@dataclass(frozen=True, eq=False)   # eq by identity: sigmas is an array
class Skeleton:
    """A dataset's joints (in the dataset's order), left/right pairs, limbs and OKS sigmas."""
    name: str
    joint_names: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    limbs: tuple[tuple[int, int], ...]
    sigmas: np.ndarray | None

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def flip_index(self) -> np.ndarray:
        """Permutation j -> index of the mirrored joint (identity for centre joints)."""
        index = np.arange(self.num_joints)
        for a, b in self.flip_pairs:
            index[a], index[b] = b, a
        return index

    def index(self, name: str) -> int:
        return self.joint_names.index(name)


def _mirror(name: str) -> str:
    for a, b in (('left_', 'right_'), ('right_', 'left_')):
        if name.startswith(a):
            return b + name[len(a):]
    return name


def make_skeleton(name, joint_names, limbs_by_name, sigma_by_name=None) -> Skeleton:
    """Build a Skeleton from names; flip pairs come from left_/right_ prefixes."""
    joint_names = tuple(joint_names)
    pos = {n: i for i, n in enumerate(joint_names)}
    pairs = tuple(sorted(tuple(sorted((i, pos[_mirror(n)]))) for i, n in enumerate(joint_names)
                         if n.startswith('left_') and _mirror(n) in pos))
    limbs = tuple((pos[a], pos[b]) for a, b in limbs_by_name if a in pos and b in pos)
    sigmas = None
    if sigma_by_name is not None:
        sigmas = np.array([sigma_by_name[n] for n in joint_names], dtype=np.float64)
    return Skeleton(name, joint_names, pairs, limbs, sigmas)


def _union(*limb_sets):
    seen, out = set(), []
    for limbs in limb_sets:
        for a, b in limbs:
            if (a, b) not in seen and (b, a) not in seen:
                seen.add((a, b))
                out.append((a, b))
    return tuple(out)


SKELETONS: dict[str, Skeleton] = {
    'coco': make_skeleton('coco', COCO_JOINTS, COCO_LIMBS, _SIGMA),
    'mpii': make_skeleton('mpii', MPII_JOINTS, MPII_LIMBS, None),
    'crowdpose': make_skeleton('crowdpose', CROWDPOSE_JOINTS, CROWDPOSE_LIMBS, _CROWDPOSE_SIGMA),
    'halpe': make_skeleton('halpe', HALPE_JOINTS, HALPE_LIMBS, _SIGMA),
    'superset': make_skeleton(
        'superset', SUPERSET_JOINTS,
        _union(COCO_LIMBS, MPII_LIMBS, CROWDPOSE_LIMBS, HALPE_LIMBS), _SIGMA),
}


def index_map(src: Skeleton, dst: Skeleton) -> np.ndarray:
    """(K_dst,) index into `src` of each joint of `dst`, matched by name; -1 where src lacks it.

    Use: `dst_joints = np.where((m >= 0)[:, None], src_joints[np.maximum(m, 0)], 0)`.
    """
    pos = {n: i for i, n in enumerate(src.joint_names)}
    return np.array([pos.get(n, -1) for n in dst.joint_names], dtype=np.int64)


def convert_joints(joints: np.ndarray, src: Skeleton, dst: Skeleton) -> np.ndarray:
    """Re-index a (..., K_src, C) joint array to `dst`; joints `src` lacks are all-zero (unlabelled)."""
    m = index_map(src, dst)                                   # (K_dst,)
    out = joints[..., np.maximum(m, 0), :].copy()             # (..., K_dst, C)
    out[..., m < 0, :] = 0
    return out
