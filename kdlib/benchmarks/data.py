"""`python -m kdlib.benchmarks data`: the training-sample path, stage by stage, against a per-joint reference.

`data` measures the training-sample path stage by stage -- decode (JPEG -> pixels), warp
(augmentation draw, crop, joints), tensor (the sample's `image`), targets, collate (per sample of
a batch) -- and whole (`TopDownDataset.__getitem__`), each on ONE core (OpenCV and torch limited to
one thread), for the kit and for a reference written the way HRNet's JointsDataset does it
(lib/dataset/JointsDataset.py: mirror the whole image, per-joint loops for flip pairs, affine and
targets, torchvision ToTensor + Normalize), on the same records; both draw their augmentations
from the same distributions. Each row is timed with the train benchmark's harness
(`kdlib.benchmarks.train.compare`): warm-up excluded, repeats interleaved kit / reference / kit ...,
the ratio of each repeat's medians, the median ratio printed with its min-max over repeats.
`levers` rows time alternatives against the kit's current way in the same harness (reduced-size
JPEG decode where the crop allows it, torchvision's decoder, uint8 images normalised on the
device). `loader` rows time a DataLoader with N worker processes (samples/s after warm-up) and say
which GPU step time that keeps fed with <= 10 % data wait (`gpu_feed`).
"""
from __future__ import annotations

import io
import os
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler, default_collate

from kdlib.data.targets import heatmap_targets_loop, simcc_targets_loop
from kdlib.data.topdown import (IMAGENET_MEAN, IMAGENET_STD, IMREAD_FLAGS, PipelineConfig,
                                TopDownDataset, make_targets, read_bgr, sample_image)
from kdlib.data.transforms import (box_to_center_scale, half_body_box_loop, hrnet_affine_loop,
                                   random_scale_rotation, upper_body_mask)
from kdlib.benchmarks.train import compare

# Quoted, not measured: MMPose docs/en/notes/benchmark.md, HRNet-W32 256x192 on 8 V100 (32G):
# 0.54 s/iter including data loading, at its config's batch of 64 per GPU (mmpose 0.x
# configs/body/2d_kpt_sview_rgb_img/topdown_heatmap/coco/hrnet_w32_coco_256x192.py
# samples_per_gpu=64) -> 8.4 ms per sample -> 0.27 s per step at the papers' batch of 32 (step time
# taken proportional to the batch). An upper bound on a V100's step: newer GPUs are faster.
QUOTED_GPU_STEP_S, QUOTED_GPU_BATCH = 0.54 * 32 / 64, 32
MAX_DATA_WAIT = 0.10
REDUCED_FLAGS = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                 8: cv2.IMREAD_REDUCED_COLOR_8}


# ---------------------------------------------------------------------------------------------
# Reference pipeline, structured like HRNet's JointsDataset.__getitem__ (loops kept on purpose).
# ---------------------------------------------------------------------------------------------

def reference_decode(path: str) -> np.ndarray:
    """HRNet: cv2.imread(IMREAD_COLOR | IMREAD_IGNORE_ORIENTATION), then BGR -> RGB."""
    return cv2.cvtColor(cv2.imread(path, IMREAD_FLAGS), cv2.COLOR_BGR2RGB)


def reference_warp(img, rec: dict, cfg: PipelineConfig, flip_pairs, upper, rng):
    """HRNet's augmentation and crop: whole-image mirror, per-joint loops -> (crop, joints)."""
    joints = rec['joints'].astype(np.float32).copy()
    c, s = box_to_center_scale(rec['bbox'], cfg.aspect_ratio, cfg.padding)
    r = 0.0
    if cfg.train:
        if (joints[:, 2] > 0).sum() > cfg.half_body_min_joints and rng.random() < cfg.half_body_prob:
            ch, sh = half_body_box_loop(joints, upper, cfg.aspect_ratio, rng)
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
    trans = hrnet_affine_loop(c, s, r, (w, h))
    crop = cv2.warpAffine(np.ascontiguousarray(img), trans, (w, h), flags=cv2.INTER_LINEAR)
    for j in range(len(joints)):
        if joints[j, 2] > 0:
            joints[j, :2] = trans @ np.array([joints[j, 0], joints[j, 1], 1.0])
    return crop, joints


def reference_tensor(crop, normalize) -> torch.Tensor:
    """torchvision ToTensor (HWC uint8 -> CHW float / 255) + Normalize."""
    return normalize(torch.from_numpy(crop.transpose(2, 0, 1).copy()).float() / 255.0)


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


def reference_sample(rec: dict, cfg: PipelineConfig, flip_pairs, upper, rng, normalize) -> dict:
    """One training sample the reference way (see module docstring)."""
    crop, joints = reference_warp(reference_decode(rec['image_file']), rec, cfg, flip_pairs,
                                  upper, rng)
    return dict(image=reference_tensor(crop, normalize), joints=joints,
                **reference_targets(joints, cfg))


# ---------------------------------------------------------------------------------------------
# Levers: alternatives to the kit's decode, timed against it
# ---------------------------------------------------------------------------------------------

def decode_reduction(scale, input_size, factors=(8, 4, 2)) -> int:
    """Largest libjpeg DCT scaling 1/r that still leaves >= 1 decoded pixel per output pixel of
    the crop (r <= crop width in source pixels / input width); 1 when the crop upsamples."""
    per_output_px = float(scale[0]) / input_size[1]
    return next((r for r in factors if r <= per_output_px), 1)


def reduced_matrix(trans: np.ndarray, r: int) -> np.ndarray:
    """The crop matrix for an image decoded at 1/r: decoded pixel i covers source pixels
    [r i, r i + r), centre r i + (r - 1) / 2, so trans . (x' -> r x' + (r - 1) / 2)."""
    up = np.array([[r, 0, (r - 1) / 2], [0, r, (r - 1) / 2], [0, 0, 1]], np.float64)
    return trans @ up


def read_bgr_reduced(path: str, r: int) -> np.ndarray:
    """`read_bgr` with libjpeg's scaled decode (OpenCV IMREAD_REDUCED_COLOR_r), r in 1, 2, 4, 8."""
    if r == 1:
        return read_bgr(path)
    return cv2.imread(path, REDUCED_FLAGS[r] | cv2.IMREAD_IGNORE_ORIENTATION)


# ---------------------------------------------------------------------------------------------
# `data` subcommand
# ---------------------------------------------------------------------------------------------

def _cycle(fn, n: int, chunk: int):
    """A `compare` step: fn(i) for the next `chunk` i modulo n (a chunk averages costs that differ
    per sample, e.g. flipped or not); no teacher seconds."""
    state = {'i': 0}

    def step() -> float:
        for _ in range(chunk):
            fn(state['i'])
            state['i'] = (state['i'] + 1) % n
        return 0.0
    return step


def time_pair(kit, reference, n: int, per_call: int = 1, rounds: int = 7, repeat_s: float = 0.05,
              chunk: int = 8, warmup: int = 2) -> dict:
    """Samples/s of kit(i) and reference(i) (`per_call` samples each), interleaved over the same i;
    ratio = reference / kit time per repeat (> 1: the kit is faster), median [min-max]."""
    chunk = min(chunk, n)
    res = compare(_cycle(kit, n, chunk), _cycle(reference, n, chunk), steps=3, rounds=rounds,
                  warmup=warmup, repeat_s=repeat_s)
    return dict(kit=chunk * per_call / res['plain_s'], reference=chunk * per_call / res['method_s'],
                ratio=res['ratio'], lo=res['ratio_min'], hi=res['ratio_max'])


def stage_fns(dataset: TopDownDataset, n: int, batch: int) -> dict:
    """name -> (kit fn(i), reference fn(i), samples per call, n) on the first n records."""
    from torchvision.transforms import Normalize
    normalize = Normalize(IMAGENET_MEAN.tolist(), IMAGENET_STD.tolist())
    sk, cfg, recs = dataset.skeleton, dataset.cfg, dataset.records[:n]
    upper, rng = upper_body_mask(sk.joint_names), np.random.default_rng(0)
    paths = [r['image_file'] for r in recs]
    m = min(n, 16)                                             # decoded images kept in memory
    bgr = [read_bgr(p) for p in paths[:m]]
    rgb = [cv2.cvtColor(b, cv2.COLOR_BGR2RGB) for b in bgr]
    kit_crops = [dataset.crop(bgr[i], recs[i]) for i in range(m)]
    ref_crops = [reference_warp(rgb[i], recs[i], cfg, sk.flip_pairs, upper, rng) for i in range(m)]
    kit_samples, ref_samples = [dataset[i % n] for i in range(batch)], []
    for i, kit_sample in enumerate(kit_samples):              # the same fields as the kit's
        crop, joints = ref_crops[i % m]
        ref_samples.append(dict(image=reference_tensor(crop, normalize), joints=joints,
                                **reference_targets(joints, cfg), **{
                                    k: kit_sample[k] for k in ('center', 'scale', 'index')}))
    ref = lambda i: reference_sample(recs[i], cfg, sk.flip_pairs, upper, rng, normalize)  # noqa: E731
    return {
        'decode': (lambda i: read_bgr(paths[i]), lambda i: reference_decode(paths[i]), 1, n),
        'warp': (lambda i: dataset.crop(bgr[i], recs[i]),
                 lambda i: reference_warp(rgb[i], recs[i], cfg, sk.flip_pairs, upper, rng), 1, m),
        'tensor': (lambda i: sample_image(kit_crops[i][0], cfg.image_dtype),
                   lambda i: reference_tensor(ref_crops[i][0], normalize), 1, m),
        'targets': (lambda i: make_targets(kit_crops[i][1], cfg),
                    lambda i: reference_targets(ref_crops[i][1], cfg), 1, m),
        'collate': (lambda i: default_collate(kit_samples), lambda i: default_collate(ref_samples),
                    batch, 1),
        'whole': (dataset.__getitem__, ref, 1, n),
        'decode share': (lambda i: _after_decode(dataset, bgr[i % m], recs[i]), dataset.__getitem__,
                         1, n),
    }


def _after_decode(dataset: TopDownDataset, img, rec) -> dict:
    """The kit's sample from an already decoded image (the `decode share` row's other side)."""
    crop, joints, _, _ = dataset.crop(img, rec)
    return dict(image=sample_image(crop, dataset.cfg.image_dtype), **make_targets(joints, dataset.cfg))


def lever_fns(dataset: TopDownDataset, n: int, batch: int) -> tuple[dict, float]:
    """name -> (lever fn, the kit's current fn, samples per call, n), and the share of samples
    whose drawn crop allows a reduced decode."""
    import torchvision.io as tvio
    cfg, recs = dataset.cfg, dataset.records[:n]
    paths = [r['image_file'] for r in recs]
    torch.manual_seed(0)
    factors = []
    for rec in recs:                      # the reduction each record's drawn augmentation allows
        center, scale = box_to_center_scale(rec['bbox'], cfg.aspect_ratio, cfg.padding)
        if cfg.train:
            rng = np.random.default_rng(int(torch.randint(0, 2 ** 62, ())))
            scale = dataset.augmentation(rec['joints'], center, scale, rng)[1]
        factors.append(decode_reduction(scale, cfg.input_size))
    crops = [dataset.crop(read_bgr(p), r)[0] for p, r in zip(paths[:batch], recs[:batch])]
    as_batch = lambda dtype: default_collate([sample_image(c, dtype) for c in crops])  # noqa: E731
    kit_decode = lambda i: read_bgr(paths[i])  # noqa: E731
    levers = {
        'decode 1/r where the crop allows': (lambda i: read_bgr_reduced(paths[i], factors[i]),
                                             kit_decode, 1, n),
        'decode torchvision.io.decode_jpeg': (lambda i: _tv_decode(tvio, paths[i]), kit_decode, 1, n),
        'tensor+collate uint8 (norm. on device)': (lambda i: as_batch('uint8'),
                                                   lambda i: as_batch('float32'), len(crops), 1),
        'CPU part left if the GPU decodes+warps': (lambda i: cpu_part(dataset, recs[i]),
                                                   dataset.__getitem__, 1, n),
    }
    return levers, float(np.mean(np.array(factors) > 1))


def cpu_part(dataset: TopDownDataset, rec: dict) -> dict:
    """What stays on the CPU when a GPU decodes (nvJPEG) and warps: read the JPEG bytes and its
    header (the width, for the flip), draw the augmentation, joints and targets."""
    from PIL import Image
    with open(rec['image_file'], 'rb') as f:
        data = f.read()
    width = Image.open(io.BytesIO(data)).size[0]                     # header only, no decode
    trans, joints, _, _ = dataset.geometry(rec, width)
    return dict(jpeg=data, trans=trans, **make_targets(joints, dataset.cfg))


def _tv_decode(tvio, path: str) -> torch.Tensor:
    """torchvision's libjpeg-turbo decode (deprecated from torchvision 0.29 for TorchCodec)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        return tvio.decode_jpeg(tvio.read_file(path))


def loader_rate(dataset, workers: int, batch: int, batches: int, warmup: int = 2) -> float:
    """Samples/s of a DataLoader with `workers` processes (persistent, pinned where CUDA is
    available, as the trainer's on a GPU), after `warmup` batches per worker (start-up excluded)."""
    sampler = RandomSampler(dataset, replacement=True, num_samples=batch * (batches + warmup * max(
        workers, 1)), generator=torch.Generator().manual_seed(0))
    loader = DataLoader(dataset, batch_size=batch, sampler=sampler, num_workers=workers,
                        persistent_workers=workers > 0, pin_memory=torch.cuda.is_available())
    it = iter(loader)
    for _ in range(warmup * max(workers, 1)):
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch / (time.perf_counter() - start)


def gpu_feed(rate: float, step_s: float, batch: int, max_wait: float = MAX_DATA_WAIT) -> dict:
    """Whether a loader making `rate` samples/s keeps a GPU step of `step_s` at `batch` fed.

    Workers prepare batches while the GPU steps, so an iteration lasts max(step, batch / rate) and
    the data wait is 1 - step / (batch / rate) when the loader is the slower; <= max_wait needs
    rate >= (1 - max_wait) batch / step. `min_step_s` = the shortest step this rate keeps fed."""
    need = (1 - max_wait) * batch / step_s
    wait = max(0.0, 1 - step_s * rate / batch)
    return dict(need=need, wait=wait, ok=rate >= need, min_step_s=(1 - max_wait) * batch / rate)


def _print_rows(title: str, rows: dict, names=('kit', 'reference', 'kit/ref')) -> None:
    print(f'{title:40s}{names[0]:>12s}{names[1]:>12s}{names[2]:>10s}  [min-max]  (samples/s)')
    for name, r in rows.items():
        print(f'{name:40s}{r["kit"]:12.0f}{r["reference"]:12.0f}{r["ratio"]:9.2f}x  '
              f'[{r["lo"]:.2f}-{r["hi"]:.2f}]')


def bench_data(dataset: TopDownDataset, samples: int = 200, rounds: int = 7, batch: int = 32,
               repeat_s: float = 0.05, levers: bool = True) -> dict:
    """Per-stage rates of the kit and the reference on one core; with `levers`, the alternatives."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    n = min(samples, len(dataset))
    torch.manual_seed(0)
    out = {'samples': n, 'stages': {}, 'levers': {}}
    for name, (kit, ref, per_call, m) in stage_fns(dataset, n, batch).items():
        out['stages'][name] = time_pair(kit, ref, m, per_call, rounds, repeat_s)
    after = out['stages'].pop('decode share')          # whole / (whole without the decode)
    out['decode_share'] = 1 - 1 / after['ratio']
    out['ceiling'] = out['stages']['whole']['ratio'] / out['decode_share']
    if levers:
        fns, out['reducible'] = lever_fns(dataset, n, batch)
        for name, (lever, kit, per_call, m) in fns.items():
            out['levers'][name] = time_pair(lever, kit, m, per_call, rounds, repeat_s)
    return out


def _dataset_root(args) -> Path:
    if args.root is not None:
        return Path(args.root)
    if args.synth_size:
        from kdlib.data.synthpose.generate import ensure_root
        h, w = args.synth_size
        root = Path(tempfile.gettempdir()) / f'kdlib_bench_synthpose_{h}x{w}_{args.synth_images}'
        kwargs = dict(num_train=args.synth_images, num_val=2, image_size=(h, w), seed=0,
                      formats=(args.dataset,))
        return ensure_root(root, kwargs, verbose=False) / args.dataset
    from kdlib.data.synthpose import ensure_synthpose
    return ensure_synthpose(args.profile) / args.dataset


def run_data(args) -> dict:
    from kdlib.data import build_dataset
    from kdlib.data.topdown import paper_pipeline
    root = _dataset_root(args)
    cfg = replace(paper_pipeline(args.dataset), train=True, targets=tuple(args.targets),
                  image_dtype=args.image_dtype)
    if args.input_size:
        cfg = replace(cfg, input_size=tuple(args.input_size))
    ds = build_dataset(args.dataset, args.split, root, cfg)
    res = bench_data(ds, args.samples, args.rounds, args.batch_size, args.repeat_seconds,
                     not args.no_levers)
    img = cv2.imread(ds.records[0]['image_file'])
    h, w = cfg.input_size
    print(f'data path: {args.dataset}/{args.split} at {root}, images {img.shape[1]}x{img.shape[0]}, '
          f'input {h}x{w}, targets {"+".join(cfg.targets)}, image {cfg.image_dtype}, train '
          f'augmentation; {res["samples"]} records; 1 thread; {args.rounds} interleaved repeats')
    _print_rows('stage (1 core)', res['stages'])
    print(f'decode = {100 * res["decode_share"]:.0f}% of the kit\'s sample (whole against whole '
          f'from decoded images, interleaved); while the CPU decodes, the whole ratio cannot exceed '
          f'{res["ceiling"]:.2f}x (whole ratio / decode share; goal 3x)')
    if res['levers']:
        print(f'levers, against the kit\'s current way (crop allows a reduced decode for '
              f'{100 * res["reducible"]:.0f}% of the drawn samples)')
        _print_rows('lever (1 core)', res['levers'], ('lever', 'kit now', 'lever/kit'))
    res['loader'] = report_loader(ds, args)
    return res


def report_loader(ds, args) -> dict:
    """DataLoader rates for each worker count and the GPU-feed verdict at the quoted step."""
    workers = args.workers if args.workers is not None else sorted({1, os.cpu_count() or 1})
    if not workers:                                             # --workers with no count: skip
        return {}
    step_s, batch = args.gpu_step_ms / 1000, args.gpu_batch
    print(f'DataLoader, batch {args.batch_size}, {args.loader_batches} timed batches; GPU step '
          f'assumed {1000 * step_s:.0f} ms at batch {batch} (default: QUOTED from MMPose '
          f'docs/en/notes/benchmark.md, HRNet-W32 256x192 0.54 s/iter at 64/GPU on V100, scaled '
          f'to 32; see kdlib/benchmarks/data.py)')
    print(f'{"workers":>8s}{"samples/s":>11s}{"per worker":>12s}{"data wait":>11s}'
          f'{"shortest step kept fed (<=10% wait)":>38s}')
    rows = {}
    for n in workers:
        rate = loader_rate(ds, n, args.batch_size, args.loader_batches)
        feed = gpu_feed(rate, step_s, batch)
        rows[n] = dict(rate=rate, **feed)
        print(f'{n:8d}{rate:11.0f}{rate / max(n, 1):12.0f}{100 * feed["wait"]:10.0f}%'
              f'{1000 * feed["min_step_s"]:31.0f} ms/b{batch}  {"fed" if feed["ok"] else "NOT fed"}')
    n, best = max(rows.items(), key=lambda kv: kv[1]['rate'])
    print(f'verdict: {n} worker(s) here keep a GPU fed (<= {100 * MAX_DATA_WAIT:.0f}% data wait) while '
          f'its HRNet-W32 step at batch {batch} takes >= {1000 * best["min_step_s"]:.0f} ms; at the '
          f'assumed {1000 * step_s:.0f} ms: {"yes" if best["ok"] else "NO"} ({100 * best["wait"]:.0f}% wait)')
    return rows


def add_parser(sub):
    p = sub.add_parser('data', help='samples/s per stage of decode -> warp -> tensor -> targets '
                                    '-> collate, and of N DataLoader workers')
    p.add_argument('--profile', default='smoke', help='SynthPose profile to read (generated if absent)')
    p.add_argument('--root', default=None, help='dataset folder instead of the profile SynthPose')
    p.add_argument('--synth-size', type=int, nargs=2, metavar=('H', 'W'), default=None,
                   help='generate --synth-images SynthPose images of this size into the temp '
                        'folder and read them (e.g. 480 640: the gpu profile\'s images)')
    p.add_argument('--synth-images', type=int, default=200)
    p.add_argument('--dataset', default='coco', choices=['coco', 'mpii', 'crowdpose', 'halpe'])
    p.add_argument('--split', default='train')
    p.add_argument('--input-size', type=int, nargs=2, metavar=('H', 'W'), default=None,
                   help='default: the paper size of the dataset (COCO 256 192, MPII 256 256)')
    p.add_argument('--targets', nargs='+', default=['heatmap', 'simcc'])
    p.add_argument('--image-dtype', default='float32', choices=['float32', 'uint8'])
    p.add_argument('--samples', type=int, default=200, help='records cycled through')
    p.add_argument('--rounds', type=int, default=7, help='interleaved repeats per row')
    p.add_argument('--repeat-seconds', type=float, default=0.05)
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--no-levers', action='store_true')
    p.add_argument('--workers', type=int, nargs='*', default=None,
                   help='DataLoader worker counts (default: 1 and the number of cores; none: skip)')
    p.add_argument('--loader-batches', type=int, default=20)
    p.add_argument('--gpu-step-ms', type=float, default=1000 * QUOTED_GPU_STEP_S)
    p.add_argument('--gpu-batch', type=int, default=QUOTED_GPU_BATCH)
    p.set_defaults(func=run_data)
