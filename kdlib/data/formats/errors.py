"""Clear errors for missing or malformed dataset files, and the JSON/MAT readers that raise them."""
from __future__ import annotations

import json
from pathlib import Path

SYNTH_HINT = ('No real data? `python -m kdlib.data.synthpose --profile classroom` writes the '
              'procedural SynthPose dataset in this very layout under data/synthpose/classroom/.')

LAYOUTS = {
    'coco': ('data/coco/\n'
             '  annotations/person_keypoints_{train,val}2017.json\n'
             '  images/{train,val}2017/*.jpg\n'
             '  person_detection_results/COCO_val2017_detections_AP_H_56_person.json',
             'COCO 2017 Train/Val images and annotations from https://cocodataset.org/#download; '
             'the person detection results from the HRNet repository '
             '(github.com/leoxiaobin/deep-high-resolution-net.pytorch, "Data preparation").'),
    'mpii': ('data/mpii/\n'
             '  annot/{train,valid}.json   annot/gt_valid.mat\n'
             '  images/*.jpg',
             'MPII Human Pose images from http://human-pose.mpi-inf.mpg.de/ ; the JSON annotations '
             'and gt_valid.mat converted by HRNet '
             '(github.com/leoxiaobin/deep-high-resolution-net.pytorch, "Data preparation").'),
    'crowdpose': ('data/crowdpose/\n'
                  '  json/crowdpose_{train,val,test}.json\n'
                  '  images/*.jpg',
                  'CrowdPose from https://github.com/Jeff-sjtu/CrowdPose (images + json annotations).'),
    'halpe': ('data/halpe/\n'
              '  annotations/halpe_{train,val}_v1.json\n'
              '  images/{train,val}/*.jpg   (train: HICO-DET train2015, val: COCO val2017)',
              'Halpe-FullBody from https://github.com/Fang-Haoshu/Halpe-FullBody '
              '(annotations; images from HICO-DET and COCO val2017).'),
}


class DatasetError(Exception):
    """A dataset file is missing or does not have the expected structure."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    pass


class DatasetFormatError(DatasetError, ValueError):
    pass


class DatasetWarning(UserWarning):
    """Annotations or detections a loader skipped, named (see formats/validate.py)."""


def _help(dataset: str) -> str:
    layout, source = LAYOUTS[dataset]
    return f'\nExpected layout:\n{layout}\nObtain it: {source}\n{SYNTH_HINT}'


def missing(dataset: str, path, what: str = 'annotation file') -> DatasetNotFoundError:
    return DatasetNotFoundError(f'{dataset} {what} not found: {path}{_help(dataset)}')


def malformed(dataset: str, path, problem: str) -> DatasetFormatError:
    return DatasetFormatError(f'{dataset} file {path} is malformed: {problem}{_help(dataset)}')


def read_json(dataset: str, path: Path):
    """json.load with DatasetError instead of OSError / JSONDecodeError."""
    path = Path(path)
    if not path.is_file():
        raise missing(dataset, path)
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise malformed(dataset, path, f'not valid JSON ({e})') from None
    except (OSError, UnicodeDecodeError) as e:
        raise malformed(dataset, path, f'cannot be read ({e})') from None


def read_mat(dataset: str, path: Path, fields) -> dict:
    """scipy.io.loadmat with DatasetError on a missing file, bad file or missing field."""
    from scipy.io import loadmat
    path = Path(path)
    if not path.is_file():
        raise missing(dataset, path)
    try:
        mat = loadmat(str(path))
    except Exception as e:   # scipy raises several unrelated types for a bad file
        raise malformed(dataset, path, f'not a readable .mat file ({type(e).__name__}: {e})') from None
    absent = [f for f in fields if f not in mat]
    if absent:
        raise malformed(dataset, path, f'missing field(s) {absent}; expected {list(fields)}')
    return mat


def require_keys(dataset: str, path, obj, keys, where: str) -> None:
    if not isinstance(obj, dict):
        raise malformed(dataset, path, f'{where} should be a JSON object, got {type(obj).__name__}')
    absent = [k for k in keys if k not in obj]
    if absent:
        raise malformed(dataset, path, f'{where} lacks key(s) {absent} (has {sorted(obj)[:12]})')
