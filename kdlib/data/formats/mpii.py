"""MPII Human Pose in HRNet's JSON conversion, with head boxes from gt_valid.mat.

Layout: data/mpii/annot/{train,valid}.json, data/mpii/annot/gt_valid.mat, data/mpii/images/*.jpg.
JSON entries: {image, center (1-based), scale (person height / 200), joints (16 x 2, 1-based),
joints_vis (16, 1 = labelled)}. gt_valid.mat: headboxes_src (2, 2, N), jnt_missing (16, N),
pos_gt_src (16, 2, N), dataset_joints (1, 16); its N persons are valid.json's, in order.

Record box. HRNet lib/dataset/mpii.py crops around c' = (c - 1) + (0, 15 s) with side 200 * 1.25 s
(s *= 1.25; MPII uses a square 256x256 input). The kit's pipeline turns a box into a crop by
padding it 1.25x, so the record box is the square of side 200 * s centred on c': padding it gives
HRNet's crop exactly. Joints and head boxes are converted to 0-based pixels (minus 1), as HRNet.
MPII only says labelled/unlabelled: labelled joints get visibility 2, unlabelled 0.
Validated at load (formats/validate.py): every joint, centre and scale is a finite number, the
scale is positive, and every head box of gt_valid.mat is finite with a positive diagonal.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kdlib.data.formats.errors import malformed, read_json, read_mat, require_keys
from kdlib.data.formats.validate import check_finite, check_joints_finite
from kdlib.skeletons import SKELETONS

SPLITS = ('train', 'valid')
PIXEL_STD = 200.0       # HRNet: scale is in units of 200 px
CENTER_SHIFT = 15.0     # HRNet: c[1] += 15 * s
MAT_FIELDS = ('headboxes_src', 'jnt_missing', 'pos_gt_src', 'dataset_joints')


def mpii_paths(root, split: str) -> tuple[Path, Path]:
    split = 'valid' if split == 'val' else split
    if split not in SPLITS:
        raise ValueError(f"MPII split must be one of {SPLITS} (or 'val'), got {split!r}")
    root = Path(root)
    return root / 'annot' / f'{split}.json', root / 'images'


def square_box(center, scale: float) -> np.ndarray:
    """HRNet-equivalent xywh box from MPII's 1-based centre and scale (see module docstring)."""
    cx = float(center[0]) - 1.0
    cy = float(center[1]) + CENTER_SHIFT * scale - 1.0
    side = PIXEL_STD * scale
    return np.array([cx - side / 2, cy - side / 2, side, side], dtype=np.float32)


def load_mpii(root, split: str = 'train') -> tuple[list[dict], dict]:
    """Records of MPII `split` ('train' | 'valid'); valid records carry `head_box` (x1, y1, x2, y2)."""
    ann_file, image_dir = mpii_paths(root, split)
    entries = read_json('mpii', ann_file)
    if not isinstance(entries, list):
        raise malformed('mpii', ann_file, 'expected a JSON list of person entries')
    image_ids: dict[str, int] = {}               # MPII has no image ids: number images in order
    records = [_record(ann_file, i, e, image_dir, image_ids) for i, e in enumerate(entries)]
    info = dict(dataset='mpii', ann_file=str(ann_file.resolve()), skeleton=SKELETONS['mpii'],
                image_dir=str(image_dir.resolve()))
    if ann_file.stem == 'valid':
        gt_file = ann_file.parent / 'gt_valid.mat'
        head_boxes = load_head_boxes(gt_file, len(records))
        for rec, box in zip(records, head_boxes):
            rec['head_box'] = box
        info['gt_file'] = str(gt_file.resolve())
    return records, info


def _record(path, i, entry, image_dir, image_ids: dict) -> dict:
    require_keys('mpii', path, entry, ('image', 'center', 'scale', 'joints', 'joints_vis'),
                 f'entry #{i}')
    num_joints = SKELETONS['mpii'].num_joints
    try:
        xy = np.asarray(entry['joints'], dtype=np.float32)
        vis = np.asarray(entry['joints_vis'], dtype=np.float32)
        center = np.asarray(entry['center'], dtype=np.float32)
        scale = float(entry['scale'])
    except (TypeError, ValueError):
        raise malformed('mpii', path, f'entry #{i} has non-numeric joints/center/scale') from None
    if xy.shape != (num_joints, 2) or vis.shape != (num_joints,) or center.shape != (2,):
        raise malformed('mpii', path, f'entry #{i}: joints {xy.shape}, joints_vis {vis.shape}, '
                        f'center {center.shape}; expected ({num_joints}, 2), ({num_joints},), (2,)')
    where = f'entry #{i} (image {entry["image"]})'
    check_joints_finite('mpii', path, np.c_[xy, vis], SKELETONS['mpii'].joint_names, where)
    check_finite('mpii', path, entry['center'], 'center', where)
    if not (np.isfinite(scale) and scale > 0):
        raise malformed('mpii', path, f'{where} has scale {scale}; expected a positive number '
                        f'(person height / {PIXEL_STD:.0f} px)')
    joints = np.zeros((num_joints, 3), dtype=np.float32)
    joints[:, :2] = xy - 1.0                      # 1-based (MATLAB) -> 0-based
    joints[:, 2] = np.where(vis > 0, 2.0, 0.0)
    joints[vis <= 0, :2] = 0.0
    box = square_box(center, scale)
    image_id = image_ids.setdefault(str(entry['image']), len(image_ids))
    return dict(image_file=str((Path(image_dir) / entry['image']).resolve()), image_id=image_id,
                ann_id=i, dataset='mpii', bbox=box, joints=joints, score=1.0,
                area=float(box[2] * box[3]))


def load_head_boxes(gt_file: Path, num_records: int) -> np.ndarray:
    """(N, 4) 0-based head boxes x1, y1, x2, y2 from gt_valid.mat's headboxes_src (2, 2, N)."""
    mat = read_mat('mpii', gt_file, MAT_FIELDS)
    boxes = np.asarray(mat['headboxes_src'], dtype=np.float32)
    if boxes.ndim != 3 or boxes.shape[:2] != (2, 2) or boxes.shape[2] != num_records:
        raise malformed('mpii', gt_file, f'headboxes_src has shape {boxes.shape}; expected '
                        f'(2, 2, {num_records}) to match the {num_records} entries of valid.json')
    boxes = boxes.transpose(2, 0, 1).reshape(num_records, 4) - 1.0   # rows: (x1, y1), (x2, y2)
    bad = ~np.isfinite(boxes).all(axis=1) | (np.abs(boxes[:, 2:] - boxes[:, :2]).sum(axis=1) <= 0)
    if bad.any():
        n = int(np.flatnonzero(bad)[0])
        raise malformed('mpii', gt_file, f'headboxes_src of person {n} (entry #{n} of valid.json) '
                        f'is {(boxes[n] + 1).tolist()}; expected finite corners of a head box of '
                        f'positive size (PCKh divides by its diagonal); {int(bad.sum())} such')
    return boxes
