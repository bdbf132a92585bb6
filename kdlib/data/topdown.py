"""Top-down training/evaluation samples: records -> (crop, targets), and the dataset's evaluator.

`TopDownDataset` plays the role of HRNet's JointsDataset (lib/dataset/JointsDataset.py): the format
loaders only parse annotations into records (CONTRACTS.md), this class owns augmentation and
targets, and `evaluate` hands predictions to `kdlib.evaluation` (pycocotools / PCKh).

Paper-profile pipeline values (`paper_pipeline(dataset)`), from HRNet's experiment configs
(experiments/coco/hrnet/w32_256x192_adam_lr1e-3.yaml, experiments/mpii/hrnet/w32_256x256_...yaml):
    COCO  256x192, ROT_FACTOR 45, SCALE_FACTOR 0.35, PROB_HALF_BODY 0.3, NUM_JOINTS_HALF_BODY 8
    MPII  256x256, ROT_FACTOR 30, SCALE_FACTOR 0.25, half body off (PROB_HALF_BODY -1)
    CrowdPose, Halpe: COCO's values (both are COCO-style person crops at 256x192).
Heatmap stride 4, sigma 2 (HRNet MODEL.SIGMA); SimCC split ratio 2 with sigma 4 (COCO) / 6 (MPII)
(SimCC repo experiments/{coco,mpii}/hrnet/sa_simdr/*_split2_sigma{4,6}.yaml).

The sample path (`TopDownDataset.__getitem__`, timed stage by stage by `python -m kdlib.benchmarks
data`): decode the JPEG (OpenCV, BGR) -> ONE warp to the input crop (flip, rotation, scale folded
into one matrix; channels swapped on the crop) -> the `image` -> targets. At 640x480 JPEGs the
decode is ~2/3 of a sample on one core (measured by the bench). `PipelineConfig.image_dtype =
'uint8'` keeps the crop as uint8 until the trainer's `to_device` normalises it on the device
(`normalize_batch`, bit-identical to `normalize_image`): 1/4 of the bytes to collate, pin, copy.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from kdlib.data.formats.errors import DatasetFormatError, DatasetNotFoundError
from kdlib.data.targets import heatmap_targets, sigma_xy, simcc_targets
from kdlib.data.transforms import (affine_points, box_to_center_scale, crop_matrix,
                                   sample_augmentation, upper_body_mask)

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)   # torchvision / HRNet
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
TARGET_KINDS = ('heatmap', 'simcc')
IMAGE_DTYPES = ('float32', 'uint8')


@dataclass(frozen=True)
class PipelineConfig:
    """Sizes, targets and augmentation of the top-down pipeline (defaults: HRNet COCO 256x192)."""
    input_size: tuple[int, int] = (256, 192)    # (H, W)
    heatmap_stride: int = 4                     # HRNet: HEATMAP_SIZE = IMAGE_SIZE / 4
    sigma: float = 2.0                          # HRNet MODEL.SIGMA
    simcc_split_ratio: float = 2.0              # SimCC k (SIMDR_SPLIT_RATIO)
    simcc_sigma: float | tuple = 4.0            # SA-SimDR sigma in bins, or (x, y); 0 = one-hot
    simcc_normalize: bool = True                # divide by sigma sqrt(2 pi) (SimCC code)
    label_smoothing: float = 0.0                # SimCC NMTNORMCritierion label_smoothing
    targets: tuple[str, ...] = ('heatmap',)     # any of 'heatmap', 'simcc'
    train: bool = False                         # augment (training) or plain crop (evaluation)
    flip: bool = True                           # HRNet DATASET.FLIP
    flip_prob: float = 0.5                      # HRNet JointsDataset: random() <= 0.5
    rot_factor: float = 45.0                    # HRNet DATASET.ROT_FACTOR (COCO)
    rot_prob: float = 0.6                       # HRNet JointsDataset: random() <= 0.6
    scale_factor: float = 0.35                  # HRNet DATASET.SCALE_FACTOR (COCO)
    half_body_prob: float = 0.3                 # HRNet DATASET.PROB_HALF_BODY (COCO)
    half_body_min_joints: int = 8               # HRNet DATASET.NUM_JOINTS_HALF_BODY
    padding: float = 1.25                       # HRNet coco.py _box2cs
    image_dtype: str = 'float32'                # 'float32': ImageNet-normalised here; 'uint8': RGB
    #                                             0-255, normalised on the device (`normalize_batch`)

    def __post_init__(self):
        bad = [t for t in self.targets if t not in TARGET_KINDS]
        if bad:
            raise ValueError(f'PipelineConfig.targets: unknown {bad}; expected some of {TARGET_KINDS}')
        if self.image_dtype not in IMAGE_DTYPES:
            raise ValueError(f'PipelineConfig.image_dtype: {self.image_dtype!r}; expected one of '
                             f'{IMAGE_DTYPES}')
        if not np.isscalar(self.simcc_sigma):          # a JSON list from a stored config -> tuple
            object.__setattr__(self, 'simcc_sigma', tuple(float(v) for v in self.simcc_sigma))
        sigma_xy(self.simcc_sigma)
        h, w = self.input_size
        if h % self.heatmap_stride or w % self.heatmap_stride:
            raise ValueError(f'input_size {self.input_size} must be divisible by '
                             f'heatmap_stride {self.heatmap_stride}')

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """(H/s, W/s)."""
        return self.input_size[0] // self.heatmap_stride, self.input_size[1] // self.heatmap_stride

    @property
    def aspect_ratio(self) -> float:
        return self.input_size[1] / self.input_size[0]


_COCO_STYLE = dict(input_size=(256, 192), rot_factor=45.0, scale_factor=0.35, half_body_prob=0.3,
                   simcc_sigma=4.0)
PAPER_PIPELINES = {
    'coco': _COCO_STYLE, 'crowdpose': _COCO_STYLE, 'halpe': _COCO_STYLE,
    'mpii': dict(input_size=(256, 256), rot_factor=30.0, scale_factor=0.25, half_body_prob=0.0,
                 simcc_sigma=6.0),
}


def paper_pipeline(dataset: str, **overrides) -> PipelineConfig:
    """The paper-profile PipelineConfig of `dataset`, with `overrides` applied."""
    if dataset not in PAPER_PIPELINES:
        raise KeyError(f'no paper pipeline for {dataset!r}; known: {sorted(PAPER_PIPELINES)}')
    return replace(PipelineConfig(**PAPER_PIPELINES[dataset]), **overrides)


JPEG_SOI, JPEG_EOI, JPEG_SOS = b'\xff\xd8', b'\xff\xd9', b'\xff\xda'   # start/end of image, scan
IMREAD_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
IMAGE_PROBLEMS = {   # what `image_file_problem` reports -> what to do
    'truncated': ('a JPEG ends with the end-of-image marker FF D9 and this one stops before it (a '
                  'cut-off download or copy: libjpeg would fill the rest with gray); re-download '
                  'or re-extract it'),
    'empty': '0 bytes; re-download or re-extract it',
    'unreadable': 'cannot be opened (permissions? a folder?)',
    'missing': "each record's 'image_file' must point into the dataset's images/ folder",
}


def jpeg_is_complete(data: bytes) -> bool:
    """Whether JPEG bytes reach their end-of-image marker.

    The marker is normally the last two bytes; a file padded or with a trailer after it still
    has one after its last start-of-scan (in scan data an FF byte is followed by 00 or a restart
    marker, so FF D9 there can only be the marker; an EXIF thumbnail's FF D9 comes before).
    """
    return data.endswith(JPEG_EOI) or data.rfind(JPEG_EOI) > data.rfind(JPEG_SOS)


def image_file_problem(path: str) -> str | None:
    """None for a usable image file, else a key of IMAGE_PROBLEMS ('truncated' for JPEG only).

    Reads 4 bytes (the first and last two), the whole file only if the last two are not FF D9.
    """
    try:
        with open(path, 'rb') as f:
            head = f.read(2)
            if not head:
                return 'empty'
            if head != JPEG_SOI:
                return None
            f.seek(-2, 2)
            if f.read(2) == JPEG_EOI:
                return None
            f.seek(0)
            return None if jpeg_is_complete(f.read()) else 'truncated'
    except FileNotFoundError:
        return 'missing'
    except OSError:
        return 'unreadable'


def check_image_files(records, workers: int | None = None) -> None:
    """Raise a DatasetError naming every missing, empty or truncated image of `records`.

    Run at load (`build_dataset`), before training: 4 bytes per image (~8 us each from the page
    cache), on one thread up to 4096 images, else on up to 16 (`workers`): on a network file
    system each open is a round trip. See README 'Real datasets'.
    """
    paths = list(dict.fromkeys(r['image_file'] for r in records))
    workers = workers or min(16, 1 + len(paths) // 4096)
    with ThreadPoolExecutor(workers) as pool:
        parts = pool.map(_problems, [paths[i::workers] for i in range(workers)])
        found = sorted((p, why) for part in parts for p, why in part if why)
    if not found:
        return
    lines = []
    for kind, hint in IMAGE_PROBLEMS.items():
        bad = [p for p, why in found if why == kind]
        if bad:
            more = ' ...' if len(bad) > 5 else ''
            lines.append(f'{kind} ({len(bad)}): {", ".join(bad[:5])}{more}\n    {hint}')
    only_missing = all(why == 'missing' for _, why in found)
    raise (DatasetNotFoundError if only_missing else DatasetFormatError)(
        f'{len(found)} of the {len(paths)} image files of these records cannot be used (checked '
        f'at load, before training):\n  ' + '\n  '.join(lines))


def _problems(paths: list[str]) -> list[tuple[str, str | None]]:
    return [(p, image_file_problem(p)) for p in paths]


def read_rgb(path: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB image, or a clear error naming the file (also for a truncated JPEG)."""
    return cv2.cvtColor(read_bgr(path), cv2.COLOR_BGR2RGB)


def read_bgr(path: str) -> np.ndarray:
    """(H, W, 3) uint8 BGR image as OpenCV decodes it (`read_rgb` without the channel swap: the
    pipeline swaps channels on the crop, 1/6 of a 640x480 image's pixels)."""
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError:
        data = b''
    if data[:2] == JPEG_SOI and not jpeg_is_complete(data):
        raise DatasetFormatError(f'image {path} is truncated: {IMAGE_PROBLEMS["truncated"]}')
    img = cv2.imdecode(np.frombuffer(data, np.uint8), IMREAD_FLAGS) if data else None
    if img is None:
        raise FileNotFoundError(f'cannot read image {path} (missing or not an image); the record '
                                f"'image_file' must point into the dataset's images/ folder")
    return img


def normalize_image(crop: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (3, H, W) float32, ImageNet mean/std.

    Channels first (`channels_first`), then one scale and shift per channel plane: ~7x faster
    than broadcasting over the trailing 3-channel axis.
    """
    x = channels_first(crop).astype(np.float32)                            # (3, H, W)
    x *= _NORM_SCALE
    x -= _NORM_SHIFT
    return x


_NORM_SCALE = (1.0 / (255.0 * IMAGENET_STD)).astype(np.float32)[:, None, None]
_NORM_SHIFT = (IMAGENET_MEAN / IMAGENET_STD).astype(np.float32)[:, None, None]


def channels_first(crop: np.ndarray) -> np.ndarray:
    """(H, W, C) -> contiguous (C, H, W), same dtype: OpenCV's plane split, ~2x faster than
    numpy's transposed copy (and a collate of transposed views is ~30x slower than of planes)."""
    return np.stack(cv2.split(crop))


def sample_image(crop: np.ndarray, image_dtype: str = 'float32') -> np.ndarray:
    """(H, W, 3) uint8 RGB crop -> the sample's (3, H, W) `image`: float32 ImageNet-normalised, or
    uint8 (normalised on the device by `normalize_batch`: 1/4 of the bytes to collate, pin, copy)."""
    return normalize_image(crop) if image_dtype == 'float32' else channels_first(crop)


def normalize_batch(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) uint8 RGB -> float32 ImageNet-normalised, on the images' device (the same
    numbers as `normalize_image`; used by the trainer for `image_dtype='uint8'` pipelines)."""
    if images.dtype != torch.uint8:
        raise TypeError(f'normalize_batch expects uint8 images (B, 3, H, W), got {images.dtype}')
    scale = torch.as_tensor(_NORM_SCALE, device=images.device)                # (3, 1, 1)
    shift = torch.as_tensor(_NORM_SHIFT, device=images.device)
    return images.float().mul_(scale).sub_(shift)                             # (B, 3, H, W)


def make_targets(joints: np.ndarray, cfg: PipelineConfig) -> dict:
    """Targets of `cfg.targets` for (K, 3) input-pixel joints; one combined target_weight (K,).

    A joint's weight is 1 only if it is labelled and every requested target keeps it (HRNet's
    heatmap window test, SimCC's input-range test).
    """
    out, weight = {}, (joints[:, 2] > 0).astype(np.float32)
    if 'heatmap' in cfg.targets:
        out['heatmap'], w = heatmap_targets(joints, cfg.input_size, cfg.heatmap_stride, cfg.sigma)
        weight = weight * w
    if 'simcc' in cfg.targets:
        out['simcc_x'], out['simcc_y'], w = simcc_targets(
            joints, cfg.input_size, cfg.simcc_split_ratio, cfg.simcc_sigma,
            cfg.label_smoothing, cfg.simcc_normalize)
        weight = weight * w
    out['target_weight'] = weight
    return out


def check_records(records, source) -> None:
    """Finite joints and boxes, and boxes that are not a point (a crop of size 0), or a
    DatasetFormatError naming the first bad record (the loaders already ensure this for files)."""
    joints = np.stack([r['joints'] for r in records]).astype(np.float64)      # (N, K, 3)
    boxes = np.stack([r['bbox'] for r in records]).astype(np.float64)         # (N, 4)
    bad = (~np.isfinite(joints).all(axis=(1, 2)) | ~np.isfinite(boxes).all(axis=1)
           | ((boxes[:, 2] <= 0) & (boxes[:, 3] <= 0)))
    if bad.any():
        r = records[int(np.flatnonzero(bad)[0])]
        raise DatasetFormatError(
            f'{source}: {int(bad.sum())} record(s) cannot be cropped, e.g. '
            f'ann_id={r.get("ann_id")} of {r.get("image_file")}: bbox {r["bbox"].tolist()}, non-finite joints: '
            f'{bool(~np.isfinite(r["joints"]).all())}; expected finite joints and a box of '
            f'positive width or height')


class TopDownDataset(Dataset):
    """Person records -> top-down samples (CONTRACTS.md 'Top-down samples').

    Augmentation randomness comes from torch's generator (seeded by the trainer, and per worker by
    the DataLoader), so runs are reproducible and workers do not repeat each other.
    """

    def __init__(self, records: list[dict], skeleton, cfg: PipelineConfig, info: dict | None = None):
        if not records:
            raise ValueError(f'TopDownDataset({skeleton.name}): no records -- is the split empty?')
        k = records[0]['joints'].shape[0]
        if k != skeleton.num_joints:
            raise ValueError(f'records have {k} joints but skeleton {skeleton.name!r} has '
                             f'{skeleton.num_joints}')
        self.records, self.skeleton, self.cfg = records, skeleton, cfg
        self.info = info or {}
        check_records(records, self.info.get('ann_file', 'records'))
        self.flip_index = skeleton.flip_index
        self.upper = upper_body_mask(skeleton.joint_names)
        self._box_only = replace(cfg, half_body_prob=0.0)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, idx: int) -> dict:
        """The sample path in its four stages (`python -m kdlib.benchmarks data` times each one)."""
        rec = self.records[idx]
        img = read_bgr(rec['image_file'])                              # decode: (H, W, 3) BGR
        crop, joints, center, scale = self.crop(img, rec)             # warp: (h, w, 3) RGB
        sample = dict(image=sample_image(crop, self.cfg.image_dtype),  # (3, h, w)
                      **make_targets(joints, self.cfg))                # targets
        sample.update(joints=joints, center=np.asarray(center, np.float32),
                      scale=np.asarray(scale, np.float32), index=np.int64(idx))
        return sample

    def crop(self, img: np.ndarray, rec: dict):
        """Cut the input crop with ONE warp (flip, rotation, scale and the crop folded into one
        matrix, `geometry`); -> (crop (h, w, 3) RGB from a BGR `img`, joints (K, 3) in crop
        pixels, center, scale)."""
        trans, joints, center, scale = self.geometry(rec, img.shape[1])
        h, w = self.cfg.input_size
        crop = cv2.cvtColor(cv2.warpAffine(img, trans, (w, h), flags=cv2.INTER_LINEAR),
                            cv2.COLOR_BGR2RGB)                        # (h, w, 3)
        return crop, joints, center, scale

    def geometry(self, rec: dict, image_width: int):
        """Draw the augmentation (training) -> (2x3 matrix image -> crop, joints (K, 3) in crop
        pixels, flipped joints re-labelled, unlabelled ones at 0, center, scale): no pixels."""
        cfg = self.cfg
        center, scale = box_to_center_scale(rec['bbox'], cfg.aspect_ratio, cfg.padding)
        joints = rec['joints'].astype(np.float32)
        rot, flip = 0.0, False
        if cfg.train:
            rng = np.random.default_rng(int(torch.randint(0, 2 ** 62, ())))
            center, scale, rot, flip = self.augmentation(joints, center, scale, rng)
        trans = crop_matrix(center, scale, rot, cfg.input_size, flip, image_width)
        joints_in = joints.copy()
        joints_in[:, :2] = affine_points(joints[:, :2], trans)
        if flip:
            joints_in = joints_in[self.flip_index]
        joints_in[joints_in[:, 2] <= 0, :2] = 0
        return trans, joints_in, center, scale

    def augmentation(self, joints, center, scale, rng):
        """HRNet's draw (`sample_augmentation`); when the half-body draw picked joints that all
        lie on one pixel (a crop of size 0), the draw is made again from the box, without half
        body, continuing the same generator (reproducible; other records are unaffected)."""
        out = sample_augmentation(joints, center, scale, self.cfg, self.upper, rng)
        if (out[1] > 0).all():
            return out
        return sample_augmentation(joints, center, scale, self._box_only, self.upper, rng)

    def evaluate(self, coords, scores, indices, **kw) -> dict[str, float]:
        """Metrics of predictions in original-image pixels: COCO-style AP or MPII PCKh."""
        from kdlib.evaluation import evaluate_predictions
        return evaluate_predictions(self, coords, scores, indices, **kw)

    def evaluate_table(self, coords, scores, indices, **kw):
        """`evaluate` as a one-row pandas DataFrame with the papers' column names."""
        from kdlib.evaluation import metrics_table
        return metrics_table(self.evaluate(coords, scores, indices, **kw), self.skeleton.name)
