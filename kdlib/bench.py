"""Benchmarks: `python -m kdlib.bench data [...]` (and further subcommands registered in SUBCOMMANDS).

`data` measures samples/s on ONE core (OpenCV and torch limited to one thread) of the whole
training-sample path -- JPEG decode -> crop -> augment -> targets -- for the kit's pipeline
(`TopDownDataset.__getitem__`: flip folded into the crop matrix, vectorised joints and targets)
and, in the same run on the same records, for a straightforward reference written the way
HRNet's JointsDataset does it (lib/dataset/JointsDataset.py: mirror the whole image, per-joint
loops for flip pairs, affine and targets, torchvision ToTensor + Normalize). The two draw their
augmentations from the same distributions, so the ratio is a like-for-like comparison.

`train` (`kdlib/train/bench.py`, `--variant smoke|classroom`) measures each method's training step
against plain training of the same student: same batch, warm-up excluded, repeats interleaved
A B A B, one thread; per method the median ratio with its spread, the peak-memory ratio and the
teacher's share of the step; the `supervised` row (plain against plain) is the noise floor.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

import cv2
import numpy as np
import torch

from kdlib.data.targets import heatmap_targets_loop, simcc_targets_loop
from kdlib.data.topdown import (IMAGENET_MEAN, IMAGENET_STD, PipelineConfig, TopDownDataset,
                                make_targets)
from kdlib.data.transforms import box_to_center_scale, random_scale_rotation, upper_body_mask


# ---------------------------------------------------------------------------------------------
# Reference pipeline, structured like HRNet's JointsDataset.__getitem__ (loops kept on purpose).
# ---------------------------------------------------------------------------------------------

def _hrnet_affine(center, scale, rot, output_size):
    """Three-point construction of HRNet lib/utils/transforms.py get_affine_transform."""
    src_w, (dst_w, dst_h) = scale[0], output_size
    r = np.pi * rot / 180
    src_dir = np.array([0.5 * src_w * np.sin(r), -0.5 * src_w * np.cos(r)])
    src, dst = np.zeros((3, 2), np.float32), np.zeros((3, 2), np.float32)
    src[0], src[1] = center, center + src_dir
    dst[0] = [dst_w * 0.5, dst_h * 0.5]
    dst[1] = dst[0] + np.array([0, -0.5 * dst_w])
    for m in (src, dst):
        d = m[0] - m[1]
        m[2] = m[1] + np.array([-d[1], d[0]], np.float32)
    return cv2.getAffineTransform(src, dst)


def _half_body_loop(joints, upper, aspect, rng):
    up, low = [], []
    for j in range(len(joints)):                       # HRNet half_body_transform loop
        if joints[j, 2] > 0:
            (up if upper[j] else low).append(joints[j, :2])
    sel = up if (rng.standard_normal() < 0.5 and len(up) > 2) else (low if len(low) > 2 else up)
    if len(sel) < 2:
        return None, None
    sel = np.array(sel, np.float32)
    w, h = sel.max(0) - sel.min(0)
    w, h = (w, w / aspect) if w > aspect * h else (h * aspect, h)
    return sel.mean(0), np.array([w, h], np.float32) * 1.5


def reference_sample(rec: dict, cfg: PipelineConfig, flip_pairs, upper, rng, normalize) -> dict:
    """One training sample the reference way (see module docstring)."""
    img = cv2.cvtColor(cv2.imread(rec['image_file'], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    joints = rec['joints'].astype(np.float32).copy()
    c, s = box_to_center_scale(rec['bbox'], cfg.aspect_ratio, cfg.padding)
    r = 0.0
    if cfg.train:
        if (joints[:, 2] > 0).sum() > cfg.half_body_min_joints and rng.random() < cfg.half_body_prob:
            ch, sh = _half_body_loop(joints, upper, cfg.aspect_ratio, rng)
            if ch is not None:
                c, s = ch, sh
        f, r = random_scale_rotation(rng, cfg.scale_factor, cfg.rot_factor, cfg.rot_prob)
        s = s * f
        if cfg.flip and rng.random() <= cfg.flip_prob:
            img = img[:, ::-1, :]                                          # whole-image mirror
            joints[:, 0] = img.shape[1] - joints[:, 0] - 1
            for a, b in flip_pairs:
                joints[[a, b]] = joints[[b, a]]
            c = np.array([img.shape[1] - c[0] - 1, c[1]], np.float32)
    h, w = cfg.input_size
    trans = _hrnet_affine(c, s, r, (w, h))
    crop = cv2.warpAffine(np.ascontiguousarray(img), trans, (w, h), flags=cv2.INTER_LINEAR)
    image = normalize(torch.from_numpy(crop.transpose(2, 0, 1).copy()).float() / 255.0)
    for j in range(len(joints)):
        if joints[j, 2] > 0:
            joints[j, :2] = trans @ np.array([joints[j, 0], joints[j, 1], 1.0])
    return dict(image=image, joints=joints, **reference_targets(joints, cfg))


def reference_targets(joints, cfg: PipelineConfig) -> dict:
    """The per-joint loop versions of the targets `cfg.targets` asks for."""
    out = {}
    if 'heatmap' in cfg.targets:
        out['heatmap'], out['target_weight'] = heatmap_targets_loop(
            joints, cfg.input_size, cfg.heatmap_stride, cfg.sigma)
    if 'simcc' in cfg.targets:
        out['simcc_x'], out['simcc_y'], _ = simcc_targets_loop(
            joints, cfg.input_size, cfg.simcc_split_ratio, cfg.simcc_sigma, cfg.label_smoothing,
            cfg.simcc_normalize)
    return out


# ---------------------------------------------------------------------------------------------
# `data` subcommand
# ---------------------------------------------------------------------------------------------

def _seconds(fn, n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return time.perf_counter() - t0


def _rates(fns: dict, n: int, repeats: int) -> dict:
    """samples/s of each fn(i), i < n: best of `repeats` rounds, the fns interleaved per round so
    that load from other processes hits both alike."""
    best = {k: float('inf') for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            best[k] = min(best[k], _seconds(fn, n))
    return {k: n / t for k, t in best.items()}


def bench_data(dataset: TopDownDataset, samples: int = 200, repeats: int = 3) -> dict:
    """samples/s of the kit's pipeline and of the reference, same records, one core."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    from torchvision.transforms import Normalize
    normalize = Normalize(IMAGENET_MEAN.tolist(), IMAGENET_STD.tolist())
    n = min(samples, len(dataset))
    sk, cfg = dataset.skeleton, dataset.cfg
    upper, rng = upper_body_mask(sk.joint_names), np.random.default_rng(0)
    ref = lambda i: reference_sample(dataset.records[i], cfg, sk.flip_pairs, upper, rng, normalize)  # noqa: E731
    torch.manual_seed(0)
    _seconds(dataset.__getitem__, min(n, 10))                                  # warm caches
    rates = _rates(dict(kit=dataset.__getitem__, reference=ref), n, repeats)
    joints = np.stack([dataset[i]['joints'] for i in range(min(n, 50))])   # (M, K, 3) in crops
    m = len(joints)
    target_rates = _rates(dict(kit=lambda i: make_targets(joints[i % m], cfg),
                               reference=lambda i: reference_targets(joints[i % m], cfg)), 500, repeats)
    return dict(samples=n, kit=rates['kit'], reference=rates['reference'],
                speedup=rates['kit'] / rates['reference'], kit_targets=target_rates['kit'],
                reference_targets=target_rates['reference'])


def run_data(args) -> dict:
    from kdlib.data import build_dataset
    from kdlib.data.topdown import paper_pipeline
    root = args.root
    if root is None:
        from kdlib.data.synthpose import ensure_synthpose
        root = ensure_synthpose(args.profile) / args.dataset
    cfg = replace(paper_pipeline(args.dataset), train=True, targets=tuple(args.targets))
    if args.input_size:
        cfg = replace(cfg, input_size=tuple(args.input_size))
    ds = build_dataset(args.dataset, args.split, root, cfg)
    res = bench_data(ds, args.samples, args.repeats)
    img = cv2.imread(ds.records[0]['image_file'])
    h, w = cfg.input_size
    print(f'data pipeline, 1 core: {args.dataset}/{args.split} at {root}, images '
          f'{img.shape[1]}x{img.shape[0]}, input {h}x{w}, targets {"+".join(cfg.targets)}, '
          f'train augmentation, {res["samples"]} samples, best of {args.repeats}')
    print(f'{"pipeline":34s}{"samples/s":>12s}{"ms/sample":>12s}')
    for name, key in (('kit (vectorised)', 'kit'), ('reference (per-joint loops)', 'reference')):
        print(f'{name:34s}{res[key]:12.1f}{1000 / res[key]:12.2f}')
    print(f'{"ratio kit / reference":34s}{res["speedup"]:11.2f}x')
    print(f'{"targets only: kit / reference":34s}{res["kit_targets"]:12.0f}{res["reference_targets"]:12.0f}'
          f'  ({res["kit_targets"] / res["reference_targets"]:.2f}x)')
    return res


def _add_data_parser(sub):
    p = sub.add_parser('data', help='samples/s of decode -> crop -> augment -> targets')
    p.add_argument('--profile', default='smoke', help='SynthPose profile to read (generated if absent)')
    p.add_argument('--root', default=None, help='dataset folder instead of the profile SynthPose')
    p.add_argument('--dataset', default='coco', choices=['coco', 'mpii', 'crowdpose', 'halpe'])
    p.add_argument('--split', default='train')
    p.add_argument('--input-size', type=int, nargs=2, metavar=('H', 'W'), default=None,
                   help='default: the paper size of the dataset (COCO 256 192, MPII 256 256)')
    p.add_argument('--targets', nargs='+', default=['heatmap', 'simcc'])
    p.add_argument('--samples', type=int, default=200)
    p.add_argument('--repeats', type=int, default=3)
    p.set_defaults(func=run_data)


# One entry per subcommand: name -> function adding its argparse sub-parser (sets `func`).
from kdlib.train import bench as train_bench  # noqa: E402  (python -m kdlib.bench train)
from kdlib.train import gpu_bench  # noqa: E402  (python -m kdlib.bench gpu)

SUBCOMMANDS = {'data': _add_data_parser, 'train': train_bench.add_parser, 'gpu': gpu_bench.add_parser}


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m kdlib.bench', description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    for add_parser in SUBCOMMANDS.values():
        add_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == '__main__':
    main()
