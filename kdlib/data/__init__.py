"""Datasets: format loaders -> records -> `TopDownDataset` (see docs/CONTRACTS.md).

    ds = build_dataset('coco', 'val', 'data/synthpose/smoke/coco', PipelineConfig())
    sample = ds[0]                      # dict: image, heatmap, target_weight, joints, ...
    ds.evaluate(coords, scores, idx)    # AP ... (COCO-style) or PCKh (MPII), in percent

`root` is the dataset's own folder (the one holding annotations/ or annot/ or json/), real
(data/coco) or SynthPose (data/synthpose/<profile>/coco).
"""
from __future__ import annotations

from kdlib.data.formats import load_coco, load_crowdpose, load_halpe, load_mpii
from kdlib.data.topdown import (PipelineConfig, TopDownDataset, check_image_files,
                                paper_pipeline)

DATASETS = {
    'coco': load_coco,
    'mpii': load_mpii,
    'crowdpose': load_crowdpose,
    'halpe': load_halpe,
}

__all__ = ['DATASETS', 'build_dataset', 'PipelineConfig', 'TopDownDataset', 'paper_pipeline']


def build_dataset(name: str, split: str, root, cfg: PipelineConfig, max_records: int | None = None,
                  **loader_kw) -> TopDownDataset:
    """TopDownDataset of `name`'s `split` under `root`; loader_kw e.g. boxes='det' for COCO.

    max_records keeps the first N records (smoke runs); evaluation then covers their images only.
    Validated here, before any training: the annotation file (by the loader: ids, categories,
    finite values, croppable boxes) and every record's image (present, JPEG not truncated).
    """
    if name not in DATASETS:
        raise KeyError(f'unknown dataset {name!r}; known: {sorted(DATASETS)}')
    records, info = DATASETS[name](root, split, **loader_kw)
    if max_records is not None:
        records = records[:max_records]
    check_image_files(records)
    return TopDownDataset(records, info['skeleton'], cfg, info)
