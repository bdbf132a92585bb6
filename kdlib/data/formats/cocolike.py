"""Shared parser for COCO-style keypoint JSON (COCO, CrowdPose, Halpe).

Follows HRNet lib/dataset/coco.py `_load_coco_keypoint_annotation_kernal`: crowd annotations are
skipped, boxes are clipped to the image ("clean_bbox": x1 = max(0, x), x2 = min(W - 1, x1 +
max(0, w - 1)), same for y), annotations with zero area, an empty clean box or no labelled
keypoint are skipped. Fixing the aspect ratio and the 1.25 padding is the pipeline's job.
Before any of that, the file is validated (formats/validate.py): unique image and annotation ids,
the person category, finite keypoints/boxes/areas in every annotation (crowd ones included:
COCOeval reads them all); a box that clips to a point is skipped with a warning naming it.
info['images_without_records'] lists the images that got no record: COCOeval still evaluates them
(HRNet keeps its default imgIds, every GT image), so a labelled person there counts as a miss.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kdlib.data.formats.errors import malformed, read_json, require_keys
from kdlib.data.formats.validate import (check_categories, check_finite, check_joints_finite,
                                         check_unique_ids, is_point_box, warn_skipped)
from kdlib.skeletons import Skeleton


def load_cocolike(dataset: str, ann_file: Path, skeleton: Skeleton, image_dir: Path,
                  keep_first: bool = False, area_fn=None) -> tuple[list[dict], dict]:
    """Parse one COCO-style keypoint file into GT-box records.

    keep_first: accept annotations with more than K keypoints and keep the first K (Halpe's 136).
    area_fn:    (ann, w, h) -> area when the file has no 'area' (CrowdPose).
    """
    data = read_json(dataset, ann_file)
    require_keys(dataset, ann_file, data, ('images', 'annotations'), 'the top-level object')
    check_categories(dataset, ann_file, data)
    check_unique_ids(dataset, ann_file, data['images'], 'image')
    check_unique_ids(dataset, ann_file, data['annotations'], 'annotation')
    images = {}
    for img in data['images']:
        require_keys(dataset, ann_file, img, ('id', 'file_name', 'width', 'height'), 'an image entry')
        size = [img['width'], img['height']]
        check_finite(dataset, ann_file, size, 'width/height', f'image id={img["id"]}')
        if min(size) <= 0:
            raise malformed(dataset, ann_file, f'image id={img["id"]} has width/height {size}; '
                            f'expected positive numbers of pixels')
        images[img['id']] = img
    records, skipped = [], []
    for ann in data['annotations']:
        rec = _parse_annotation(dataset, ann_file, ann, images, skeleton, image_dir,
                                keep_first, area_fn)
        if isinstance(rec, str):
            skipped.append((ann['id'], rec))
        elif rec is not None:
            records.append(rec)
    warn_skipped(dataset, ann_file, skipped)
    info = dict(dataset=skeleton.name, ann_file=str(Path(ann_file).resolve()), skeleton=skeleton,
                image_dir=str(Path(image_dir).resolve()), num_images=len(images), images=images,
                images_without_records=images_without_records(images, records), skipped=skipped)
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
    """A record, None (skipped as HRNet: crowd, empty box, no labelled joint) or the reason an
    annotation that cannot be cropped is skipped (str)."""
    require_keys(dataset, path, ann, ('id', 'image_id', 'bbox', 'keypoints'), 'an annotation')
    where = f'annotation id={ann["id"]}'
    joints = parse_keypoints(dataset, path, ann, skeleton.num_joints, keep_first)
    check_joints_finite(dataset, path, joints, skeleton.joint_names, where)
    if not isinstance(ann['bbox'], list) or len(ann['bbox']) != 4:
        raise malformed(dataset, path, f'{where} bbox should be [x, y, w, h], got {ann["bbox"]!r}')
    check_finite(dataset, path, ann['bbox'], 'bbox', where)
    if 'area' in ann:
        check_finite(dataset, path, ann['area'], 'area', where)
    if ann.get('iscrowd', 0) or ann.get('category_id', 1) != 1:
        return None
    img = images.get(ann['image_id'])
    if img is None:
        raise malformed(dataset, path, f'{where} refers to image_id='
                        f'{ann["image_id"]}, which is not in "images"')
    box = clean_box(ann['bbox'], img['width'], img['height'])
    w, h = float(ann['bbox'][2]), float(ann['bbox'][3])
    area = float(ann['area']) if 'area' in ann else (area_fn(ann, w, h) if area_fn else w * h)
    if box is None or area <= 0 or joints[:, 2].max() <= 0:
        return None
    if is_point_box(box):
        return f'bbox {ann["bbox"]} clips to a point (0 x 0 px)'
    return dict(image_file=str((Path(image_dir) / img['file_name']).resolve()),
                image_id=int(ann['image_id']), ann_id=int(ann['id']), dataset=skeleton.name,
                bbox=box, joints=joints, score=1.0, area=area)

