"""Shared parser for COCO-style keypoint JSON (COCO, CrowdPose, Halpe).

Follows HRNet lib/dataset/coco.py `_load_coco_keypoint_annotation_kernal`: crowd annotations are
skipped, boxes are clipped to the image ("clean_bbox": x1 = max(0, x), x2 = min(W - 1, x1 +
max(0, w - 1)), same for y), annotations with zero area, an empty clean box or no labelled
keypoint are skipped. Fixing the aspect ratio and the 1.25 padding is the pipeline's job.
info['images_without_records'] lists the images that got no record: COCOeval still evaluates them
(HRNet keeps its default imgIds, every GT image), so a labelled person there counts as a miss.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kdlib.data.formats.errors import malformed, read_json, require_keys
from kdlib.skeletons import Skeleton


def load_cocolike(dataset: str, ann_file: Path, skeleton: Skeleton, image_dir: Path,
                  keep_first: bool = False, area_fn=None) -> tuple[list[dict], dict]:
    """Parse one COCO-style keypoint file into GT-box records.

    keep_first: accept annotations with more than K keypoints and keep the first K (Halpe's 136).
    area_fn:    (ann, w, h) -> area when the file has no 'area' (CrowdPose).
    """
    data = read_json(dataset, ann_file)
    require_keys(dataset, ann_file, data, ('images', 'annotations'), 'the top-level object')
    images = {}
    for img in data['images']:
        require_keys(dataset, ann_file, img, ('id', 'file_name', 'width', 'height'), 'an image entry')
        images[img['id']] = img
    records = []
    for ann in data['annotations']:
        rec = _parse_annotation(dataset, ann_file, ann, images, skeleton, image_dir,
                                keep_first, area_fn)
        if rec is not None:
            records.append(rec)
    info = dict(dataset=skeleton.name, ann_file=str(Path(ann_file).resolve()), skeleton=skeleton,
                image_dir=str(Path(image_dir).resolve()), num_images=len(images), images=images,
                images_without_records=images_without_records(images, records))
    return records, info


def images_without_records(images: dict, records: list[dict]) -> list[int]:
    """Sorted ids of the `images` (id -> entry) that none of `records` comes from."""
    return sorted(set(images) - {int(r['image_id']) for r in records})


def parse_keypoints(dataset, path, ann, num_joints: int, keep_first: bool) -> np.ndarray:
    """(K, 3) float32 from the flat 'keypoints' list, checking its length."""
    kpts = ann.get('keypoints')
    n = len(kpts) if isinstance(kpts, list) else -1
    ok = n == 3 * num_joints or (keep_first and n > 3 * num_joints and n % 3 == 0)
    if not ok:
        raise malformed(dataset, path, f'annotation id={ann.get("id")} has {n} keypoint values; '
                        f'expected {3 * num_joints} ({num_joints} joints x (x, y, v))')
    try:
        return np.asarray(kpts[:3 * num_joints], dtype=np.float32).reshape(num_joints, 3)
    except (TypeError, ValueError):
        raise malformed(dataset, path, f'annotation id={ann.get("id")} has non-numeric keypoints') from None


def clean_box(bbox, width: float, height: float) -> np.ndarray | None:
    """HRNet's box sanitising; None when the clipped box is empty."""
    x, y, w, h = (float(v) for v in bbox)
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(width - 1.0, x1 + max(0.0, w - 1.0))
    y2 = min(height - 1.0, y1 + max(0.0, h - 1.0))
    if x2 < x1 or y2 < y1:
        return None
    return np.array([x1, y1, x2 - x1, y2 - y1], dtype=np.float32)


def _parse_annotation(dataset, path, ann, images, skeleton, image_dir, keep_first, area_fn):
    require_keys(dataset, path, ann, ('id', 'image_id', 'bbox', 'keypoints'), 'an annotation')
    joints = parse_keypoints(dataset, path, ann, skeleton.num_joints, keep_first)
    if ann.get('iscrowd', 0) or ann.get('category_id', 1) != 1:
        return None
    img = images.get(ann['image_id'])
    if img is None:
        raise malformed(dataset, path, f'annotation id={ann["id"]} refers to image_id='
                        f'{ann["image_id"]}, which is not in "images"')
    if len(ann['bbox']) != 4:
        raise malformed(dataset, path, f'annotation id={ann["id"]} bbox should be [x, y, w, h]')
    box = clean_box(ann['bbox'], img['width'], img['height'])
    w, h = float(ann['bbox'][2]), float(ann['bbox'][3])
    area = float(ann['area']) if 'area' in ann else (area_fn(ann, w, h) if area_fn else w * h)
    if box is None or area <= 0 or joints[:, 2].max() <= 0:
        return None
    return dict(image_file=str((Path(image_dir) / img['file_name']).resolve()),
                image_id=int(ann['image_id']), ann_id=int(ann['id']), dataset=skeleton.name,
                bbox=box, joints=joints, score=1.0, area=area)

