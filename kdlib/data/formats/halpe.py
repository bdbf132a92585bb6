"""Halpe-FullBody, body part: the first 26 of its 136 keypoints.

Layout: data/halpe/annotations/halpe_{train,val}_v1.json, data/halpe/images/{train,val}/*.jpg.
Each real annotation holds 136 keypoints (26 body, 68 face, 42 hands); the loader keeps the
first 26 (joint order: kdlib.skeletons.HALPE_JOINTS), and also accepts files with exactly 26.
"""
from __future__ import annotations

from pathlib import Path

from kdlib.data.formats.cocolike import load_cocolike
from kdlib.skeletons import SKELETONS

SPLITS = ('train', 'val')
NUM_FULLBODY = 136


def halpe_paths(root, split: str) -> tuple[Path, Path]:
    if split not in SPLITS:
        raise ValueError(f'Halpe split must be one of {SPLITS}, got {split!r}')
    root = Path(root)
    return root / 'annotations' / f'halpe_{split}_v1.json', root / 'images' / split


def load_halpe(root, split: str = 'train') -> tuple[list[dict], dict]:
    ann_file, image_dir = halpe_paths(root, split)
    return load_cocolike('halpe', ann_file, SKELETONS['halpe'], image_dir, keep_first=True)
