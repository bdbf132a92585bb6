"""COCO 2017 keypoints: GT-box or detection-box person records.

Layout (real data under data/coco/, SynthPose under data/synthpose/<profile>/coco/):
    annotations/person_keypoints_{train,val}2017.json
    images/{train,val}2017/*.jpg
    person_detection_results/COCO_val2017_detections_AP_H_56_person.json

`boxes='det'` follows HRNet lib/dataset/coco.py `_load_coco_person_detection_results`: keep
category_id == 1 entries whose score >= `score_threshold` (HRNet's TEST.IMAGE_THRE, 0.0 in its
COCO configs); the box is used as given (xywh); joints are zeros (unknown). The evaluation still
covers every GT image (HRNet's COCOeval keeps its default imgIds): `info['images_without_records']`
lists the GT images without any kept detection, whose labelled people count as misses.
A detection with a non-finite box or score is an error naming its index in the file; one with
zero width or height (nothing to crop) is skipped with a warning naming it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kdlib.data.formats.cocolike import images_without_records, load_cocolike
from kdlib.data.formats.errors import malformed, read_json, require_keys
from kdlib.data.formats.validate import check_finite, warn_skipped
from kdlib.skeletons import SKELETONS

DET_FILE = 'person_detection_results/COCO_val2017_detections_AP_H_56_person.json'
SPLITS = ('train', 'val')


def coco_paths(root, split: str) -> tuple[Path, Path]:
    """(annotation file, image folder) of a split."""
    if split not in SPLITS:
        raise ValueError(f'COCO split must be one of {SPLITS}, got {split!r}')
    root = Path(root)
    return (root / 'annotations' / f'person_keypoints_{split}2017.json',
            root / 'images' / f'{split}2017')


def load_coco(root, split: str = 'train', boxes: str = 'gt', det_file=None,
              score_threshold: float = 0.0) -> tuple[list[dict], dict]:
    """Records of COCO `split`; info = dict(ann_file, skeleton, image_dir, ...).

    boxes: 'gt' (annotated boxes; annotations without keypoints skipped, as HRNet) or
           'det' (person detector boxes from `det_file`, default root/DET_FILE).
    """
    if boxes not in ('gt', 'det'):
        raise ValueError(f"boxes must be 'gt' or 'det', got {boxes!r}")
    ann_file, image_dir = coco_paths(root, split)
    records, info = load_cocolike('coco', ann_file, SKELETONS['coco'], image_dir)
    info['boxes'] = boxes
    if boxes == 'det':
        det_file = Path(det_file) if det_file else Path(root) / DET_FILE
        records = load_detections(det_file, info['images'], image_dir, score_threshold)
        info['det_file'] = str(det_file.resolve())
        info['images_without_records'] = images_without_records(info['images'], records)
    return records, info


def load_detections(det_file: Path, images: dict, image_dir: Path,
                    score_threshold: float = 0.0) -> list[dict]:
    """Person boxes of a detection-results JSON: a list of {image_id, category_id, bbox, score}."""
    dets = read_json('coco', det_file)
    if not isinstance(dets, list):
        raise malformed('coco', det_file, 'detection results should be a JSON list of '
                        '{image_id, category_id, bbox, score}')
    num_joints = SKELETONS['coco'].num_joints
    records, skipped = [], []
    for i, det in enumerate(dets):
        require_keys('coco', det_file, det, ('image_id', 'category_id', 'bbox', 'score'),
                     f'detection #{i}')
        check_finite('coco', det_file, det['score'], 'score', f'detection #{i}')
        if det['category_id'] != 1 or det['score'] < score_threshold:
            continue
        img = images.get(det['image_id'])
        name = img['file_name'] if img else f'{int(det["image_id"]):012d}.jpg'   # HRNet's naming
        if not isinstance(det['bbox'], list) or len(det['bbox']) != 4:
            raise malformed('coco', det_file, f'detection #{i} bbox should be [x, y, w, h], '
                            f'got {det["bbox"]!r}')
        check_finite('coco', det_file, det['bbox'], 'bbox', f'detection #{i}')
        x, y, w, h = (float(v) for v in det['bbox'])
        if w <= 0 or h <= 0:
            skipped.append((i, f'bbox {det["bbox"]} has no area'))
            continue
        records.append(dict(
            image_file=str((Path(image_dir) / name).resolve()), image_id=int(det['image_id']),
            ann_id=i, dataset='coco', bbox=np.array([x, y, w, h], dtype=np.float32),
            joints=np.zeros((num_joints, 3), dtype=np.float32), score=float(det['score']),
            area=w * h))
    warn_skipped('coco', det_file, skipped, 'detection', key='#')
    return records
