"""CrowdPose: COCO-style JSON with 14 keypoints and a per-image `crowdIndex`.

Layout: data/crowdpose/json/crowdpose_{train,val,test}.json, data/crowdpose/images/*.jpg.
The official annotations carry no 'area'; crowdposetools (Jeff-sjtu/CrowdPose cocoeval.py,
computeOks/evaluateImg) uses 0.53 * bbox w * h instead, and so does the record's `area`.
"""
from __future__ import annotations

from pathlib import Path

from kdlib.data.formats.cocolike import load_cocolike
from kdlib.skeletons import SKELETONS

SPLITS = ('train', 'val', 'test', 'trainval')
CROWD_AREA_FACTOR = 0.53   # crowdposetools cocoeval.py


def crowdpose_paths(root, split: str) -> tuple[Path, Path]:
    if split not in SPLITS:
        raise ValueError(f'CrowdPose split must be one of {SPLITS}, got {split!r}')
    root = Path(root)
    return root / 'json' / f'crowdpose_{split}.json', root / 'images'


def load_crowdpose(root, split: str = 'train') -> tuple[list[dict], dict]:
    """Records of CrowdPose `split`; info also maps image_id -> crowdIndex ('crowd_index')."""
    ann_file, image_dir = crowdpose_paths(root, split)
    records, info = load_cocolike('crowdpose', ann_file, SKELETONS['crowdpose'], image_dir,
                                  area_fn=lambda ann, w, h: CROWD_AREA_FACTOR * w * h)
    info['crowd_index'] = {i: float(img.get('crowdIndex', 0.0)) for i, img in info['images'].items()}
    return records, info
