"""Checks the loaders run on an annotation file before any record reaches training.

What pycocotools and the pipeline would otherwise meet late and unnamed (kdlib issue 15):
* non-finite numbers (JSON `NaN`, `Infinity`, `null` -> NaN) in keypoints, boxes, areas, MPII
  centres/scales and head boxes: a NaN joint would be weighted 1 with an all-zero heatmap in
  training and would inflate COCOeval's AP -> `DatasetFormatError` naming the file, the
  annotation id and the joint;
* duplicate annotation or image ids (pycocotools indexes by id: AP becomes nan) and a COCO-style
  file without the person category (COCOeval's loadRes raises KeyError after the first epoch)
  -> `DatasetFormatError`;
* a box that clips to a single point (e.g. 1x1 px: HRNet's clean box is then 0 x 0, and the crop
  divides by zero) -> the annotation is skipped, as HRNet skips empty boxes, with one
  `DatasetWarning` per file naming the skipped annotation ids; `info['skipped']` lists them.
"""
from __future__ import annotations

import math
import warnings
from collections import Counter

import numpy as np

from kdlib.data.formats.errors import DatasetWarning, malformed

PERSON_CATEGORY = 1
SHOW = 10          # ids printed in one message


def check_joints_finite(dataset, path, joints: np.ndarray, joint_names, where: str) -> None:
    """(K, 3) x, y, v: every value a finite number, else an error naming the joint."""
    if np.isfinite(joints).all():
        return
    k, c = divmod(int(np.flatnonzero(~np.isfinite(joints))[0]), 3)
    raise malformed(dataset, path, f'{where} has a non-finite keypoint value: joint {k} '
                    f'({joint_names[k]}) {"xyv"[c]}={joints[k, c]}; every x, y, v must be a '
                    f'number (JSON null, NaN and Infinity are not)')


def check_finite(dataset, path, values, what: str, where: str) -> None:
    """An error naming `what` of `where` unless `values` (a number or a list) are finite numbers."""
    try:
        ok = all(math.isfinite(v) for v in (values if isinstance(values, list) else [values]))
    except TypeError:                     # null, a string, a nested list
        ok = False
    if not ok:
        raise malformed(dataset, path, f'{where} has a non-finite {what}: {values!r}; expected '
                        f'finite numbers (JSON null, NaN and Infinity are not)')


def check_unique_ids(dataset, path, entries, what: str) -> None:
    """Every entry's 'id' once; pycocotools keys its index by id and would mix duplicates."""
    counts = Counter(e.get('id') for e in entries if isinstance(e, dict))
    dup = [i for i, n in counts.items() if n > 1]
    if dup:
        shown = ', '.join(f'id={i} ({counts[i]}x)' for i in dup[:SHOW])
        raise malformed(dataset, path, f'{len(dup)} duplicate {what} id(s): {shown}'
                        f'{" ..." if len(dup) > SHOW else ""}; {what} ids must be unique '
                        f'(pycocotools indexes {what}s by id, COCOeval would mix them up)')


def check_categories(dataset, path, data: dict) -> None:
    """A COCO-style file carries the person category (id 1) that COCOeval's results refer to."""
    cats = data.get('categories')
    if not isinstance(cats, list) or not any(
            isinstance(c, dict) and c.get('id') == PERSON_CATEGORY for c in cats):
        got = 'no "categories" key' if cats is None else f'"categories" = {str(cats)[:120]}'
        raise malformed(dataset, path, f'{got}; expected "categories": [{{"id": 1, "name": '
                        f'"person", ...}}] (pycocotools\' COCOeval copies it into the results and '
                        f'evaluates category 1)')


def is_point_box(box: np.ndarray) -> bool:
    """A clean (x, y, w, h) box with zero width and height: its crop would have size 0."""
    return box[2] <= 0 and box[3] <= 0


def warn_skipped(dataset, path, skipped: list[tuple[int, str]], what: str = 'annotation',
                 key: str = 'id=') -> None:
    """One warning naming the skipped entries of a file (`key` + id, and the reason)."""
    if not skipped:
        return
    shown = '; '.join(f'{key}{i}: {why}' for i, why in skipped[:SHOW])
    warnings.warn(f'{dataset} file {path}: skipped {len(skipped)} {what}(s) that cannot be '
                  f'cropped -- {shown}{" ..." if len(skipped) > SHOW else ""}', DatasetWarning,
                  stacklevel=3)
