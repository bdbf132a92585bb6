"""``python -m kdlib.benchmarks gpu``: what the GPU path gives each network, measured side by side in one run.

Per network of the papers (``NETWORKS``), at the papers' input size and batch size, plain
supervised training through the trainer's own code (``_prepare``: channels_last weights,
``torch.compile``; ``train_one_epoch``: autocast, GradScaler, the per-step NaN check):

1. Compute, on one fixed batch already on the GPU (no data loading), in four modes:
   ``fp32`` (full precision, NCHW), ``amp`` (autocast: bf16 where supported, else fp16 with a
   GradScaler, ``trainer.amp_dtype``), ``amp_cl`` (amp + channels_last) and ``compiled`` (amp_cl +
   ``torch.compile`` of the student; the warm-up steps absorb compilation, timed separately)
   -> images/s (synchronised before and after the timed steps) and peak GPU memory
   (``torch.cuda.max_memory_allocated``, reset per mode).
2. Data: ``train_one_epoch`` in the amp_cl mode on the real DataLoader (the profile's SynthPose at
   the network's input size, the profile's workers, pinned memory, persistent workers warmed up
   first) -> images/s and the data-wait share: the share of the epoch spent waiting for the next
   batch (every step syncs for the NaN check, so this is time the GPU sits idle).

Batch sizes: the kit's ``paper`` profile (32 per process: HRNet / Simple Baselines'
BATCH_SIZE_PER_GPU) and Unified-MT's 256 for the RTMPose networks (``paper_tables.unified.
PAPER_RECIPE``, RTMPose's 8xb256). A mode that runs out of memory is reported as OOM, not fatal.

Without a GPU it prints that none exists and what it would measure, and returns 0. ``--device cpu``
runs the same measurement on the CPU (a test of this code: ``--variant smoke --profile smoke
--batch-size 2``; no peak memory there).
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from kdlib.train import ddp
from kdlib.train.checkpoint import seed_everything
from kdlib.train.optim import build_optimizer, build_scheduler, trainable_parameters
from kdlib.train.trainer import TrainConfig, _prepare, amp_dtype, make_loader, to_device, train_one_epoch

MODES = ("fp32", "amp", "amp_cl", "compiled")
NETWORKS = {  # network -> (head its paper trains, dataset whose paper input size it uses)
    "sbl_r50": ("heatmap", "coco"),                                       # SDP, ELPN Table 1
    **{f"hourglass{n}": ("heatmap", "mpii") for n in (2, 4, 8)},          # SDP / FPD (MPII)
    "hrnet_w32": ("heatmap", "coco"), "hrnet_w48": ("heatmap", "coco"),   # ELPN, TwoStage-GCN
    "litehrnet_18": ("simcc", "coco"), "litehrnet_30": ("simcc", "coco"), # EKR
    **{f"rtmpose_{s}": ("simcc", "coco") for s in "tsm"},                 # Unified-MT
    "elpn_v1": ("heatmap", "coco"), "elpn_v2": ("heatmap", "coco"),       # ELPN-MAPD
}


def paper_batch_size(name: str) -> int:
    """The papers' per-GPU batch (module docstring)."""
    from kdlib.paper_tables.unified import PAPER_RECIPE
    from kdlib.profiles import get_profile
    return PAPER_RECIPE["batch_size"] if name.startswith("rtmpose") else get_profile("paper")["batch_size"]


def plan(args) -> list[dict]:
    """One row per network: head, input size (H, W), batch size."""
    from kdlib.profiles import get_profile
    sizes = get_profile("paper")["input_size"]
    rows = []
    for name in args.networks:
        head, dataset = NETWORKS[name]
        size = tuple(args.input_size or sizes[dataset])
        rows.append(dict(network=name, head=head, dataset=dataset, input_size=size,
                         batch_size=args.batch_size or paper_batch_size(name)))
    return rows


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _dataset(row: dict, profile: dict):
    from kdlib.data import PipelineConfig, build_dataset
    from kdlib.experiment import HEAD_TARGETS, dataset_root, ensure_data
    ensure_data(profile)
    cfg = PipelineConfig(input_size=row["input_size"], targets=HEAD_TARGETS[row["head"]], train=True)
    return build_dataset(row["dataset"], "train", dataset_root(profile, row["dataset"]), cfg)


def _trainer(row: dict, cfg: TrainConfig, variant: str, num_joints: int, total_steps: int):
    """(step module, optimizer, scheduler, scaler) of plain training, built as ``fit`` builds them."""
    from kdlib.methods import build_method
    from kdlib.models import build_model
    seed_everything(0)
    student = build_model(row["network"], num_joints, head=row["head"], input_size=row["input_size"],
                          variant=variant)
    step = _prepare(student, build_method("supervised", {}, student, {}, None), {}, cfg, ddp.DistInfo())
    optimizer = build_optimizer("adam_step", trainable_parameters(step))
    scheduler = build_scheduler("adam_step", optimizer, 1, total_steps)
    fp16 = amp_dtype(cfg) == torch.float16
    scaler = torch.amp.GradScaler(torch.device(cfg.device).type, enabled=fp16)
    return step, optimizer, scheduler, scaler


def mode_config(mode: str, device: str, batch_size: int, num_workers: int = 0) -> TrainConfig:
    return TrainConfig(batch_size=batch_size, device=device, amp=mode != "fp32",
                       channels_last=mode in ("amp_cl", "compiled"), compile=mode == "compiled",
                       num_workers=num_workers, show_progress=False)


def measure_mode(row: dict, mode: str, batch: dict, num_joints: int, args) -> dict:
    """images/s, warm-up seconds and peak memory of ``mode`` on the fixed on-device ``batch``."""
    device = torch.device(args.device)
    cfg = mode_config(mode, args.device, row["batch_size"])
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    step, *rest = _trainer(row, cfg, args.variant, num_joints, args.warmup + args.steps)
    try:
        seconds = []
        for epoch, steps in enumerate((args.warmup, args.steps)):
            start = time.perf_counter()
            train_one_epoch(step, [batch] * steps, *rest, {}, cfg, epoch, False)
            _sync(device)
            seconds.append(time.perf_counter() - start)
    finally:
        if cfg.compile:
            torch._dynamo.reset()        # the next network starts from a clean compile cache
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return dict(images_per_s=args.steps * row["batch_size"] / seconds[1], warmup_s=seconds[0],
                peak_gib=peak)


def measure_data(row: dict, dataset, args) -> dict:
    """images/s and data-wait share of ``train_one_epoch`` (amp_cl) on the real DataLoader."""
    from dataclasses import replace
    cfg = mode_config("amp_cl", args.device, row["batch_size"], args.workers)
    step, *rest = _trainer(row, cfg, args.variant, dataset.skeleton.num_joints, 2 + args.data_steps)
    loader = make_loader(dataset, cfg, 0, True, ddp.DistInfo(), persistent=cfg.num_workers > 0)
    train_one_epoch(step, loader, *rest, {}, replace(cfg, max_steps_per_epoch=2), 0, False)  # warm-up
    stats = train_one_epoch(step, loader, *rest, {}, replace(cfg, max_steps_per_epoch=args.data_steps),
                            1, False)
    return dict(images_per_s=stats["images_per_s"], data_wait_share=stats["data_wait_share"])


def _guarded(fn, *args) -> dict:
    """``fn(*args)``, or the reason it failed (out of memory, a compile error): the run goes on."""
    try:
        return fn(*args)
    except torch.cuda.OutOfMemoryError:
        result = dict(error="OOM")
    except Exception as exc:  # noqa: BLE001 -- report and continue with the next mode / network
        result = dict(error=f"{type(exc).__name__}: {str(exc)[:100]}")
    if torch.cuda.is_available():
        torch.cuda.empty_cache()         # after the failed frame (and its tensors) is gone
    return result


def measure_network(row: dict, profile: dict, args) -> dict:
    """Every mode of ``args.modes`` on one fixed batch, then the data-wait share."""
    dataset = _dataset(row, profile)
    samples = [dataset[i % len(dataset)] for i in range(row["batch_size"])]
    batch = to_device(torch.utils.data.default_collate(samples), torch.device(args.device), False)
    result = dict(row, modes={})
    for mode in args.modes:
        result["modes"][mode] = _guarded(measure_mode, row, mode, batch, dataset.skeleton.num_joints, args)
        print(f"  {row['network']:<14}{mode:<10}{_cell(result['modes'][mode])}", flush=True)
    if args.data_steps:
        result["data"] = _guarded(measure_data, row, dataset, args)
    return result


def _cell(m: dict) -> str:
    if "error" in m:
        return m["error"]
    peak = f", peak {m['peak_gib']:.2f} GiB" if m.get("peak_gib") is not None else ""
    return f"{m['images_per_s']:.1f} img/s (warm-up {m['warmup_s']:.1f} s{peak})"


def report(results: list[dict], modes) -> None:
    """images/s per mode (x fp32), peak memory per mode, data-wait share: one line per network."""
    print(f"\n{'network':<14}{'input':>9}{'batch':>6}" + "".join(f"{m + ' img/s':>18}" for m in modes)
          + "".join(f"{m + ' GiB':>13}" for m in modes) + f"{'data img/s':>12}{'data wait':>10}")
    for r in results:
        fp32 = r["modes"].get("fp32", {}).get("images_per_s")
        line = f"{r['network']:<14}{'x'.join(map(str, r['input_size'])):>9}{r['batch_size']:>6}"
        for m in modes:
            line += f"{_speed(r['modes'][m], fp32):>18}"
        for m in modes:
            peak = r["modes"][m].get("peak_gib")
            line += f"{'-' if peak is None else f'{peak:.2f}':>13}"
        data = r.get("data", {})
        line += (f"{data['images_per_s']:>12.1f}{data['data_wait_share']:>10.1%}" if "images_per_s" in data
                 else f"{data.get('error', '-')[:20]:>22}")
        print(line)


def _speed(m: dict, fp32: float | None) -> str:
    if "images_per_s" not in m:
        return m["error"][:16]
    return f"{m['images_per_s']:.1f}" + (f" ({m['images_per_s'] / fp32:.2f}x)" if fp32 else "")


def describe_plan(rows: list[dict], args) -> None:
    """What a run measures (printed before measuring, and instead of it without a GPU)."""
    print(f"modes: {', '.join(args.modes)} (images/s and peak memory per mode, on one fixed on-device "
          f"batch: {args.warmup} warm-up + {args.steps} timed steps of plain supervised training)")
    print(f"data: {args.data_steps} steps of the real DataLoader in amp_cl (profile {args.profile!r} "
          "SynthPose): images/s and data-wait share" if args.data_steps else "data: skipped")
    print(f"{'network':<14}{'head':<9}{'input':>9}{'batch':>7}   (variant {args.variant})")
    for r in rows:
        size = "x".join(map(str, r["input_size"]))
        print(f"{r['network']:<14}{r['head']:<9}{size:>9}{r['batch_size']:>7}")


def run_gpu(args) -> int:
    rows = plan(args)
    if args.device is None and torch.cuda.is_available():
        args.device = "cuda"
    if args.device is None or (args.device.startswith("cuda") and not torch.cuda.is_available()):
        print("kdlib.benchmarks gpu: no GPU here (torch.cuda.is_available() is False): nothing measured.\n"
              "On a machine with one, this command measures:")
        describe_plan(rows, args)
        return 0
    from kdlib.profiles import get_profile
    device = torch.device(args.device)
    profile = get_profile(args.profile)
    args.workers = profile["num_workers"] if args.workers is None else args.workers
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"kdlib.benchmarks gpu: {name}, torch {torch.__version__}, {args.workers} DataLoader workers")
    describe_plan(rows, args)
    results = [measure_network(row, profile, args) for row in rows]
    report(results, args.modes)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("gpu", help="per network: images/s fp32 / AMP / AMP+channels_last / compiled, "
                                   "data-wait share, peak memory (exits 0 without a GPU)")
    _add_arguments(p)


def _add_arguments(p) -> None:
    p.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    p.add_argument("--device", default=None, help="default: cuda if available (else: report, exit 0)")
    p.add_argument("--variant", default="paper", help="model variant (default: the papers' networks)")
    p.add_argument("--profile", default="gpu", help="SynthPose of the data-wait measurement (default gpu)")
    p.add_argument("--batch-size", type=int, default=None, help="default: the papers' (module docstring)")
    p.add_argument("--input-size", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="default: the papers' (COCO 256 192, MPII 256 256)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: the profile's)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps per mode (absorb compilation)")
    p.add_argument("--steps", type=int, default=20, help="timed steps per mode")
    p.add_argument("--data-steps", type=int, default=50, help="DataLoader steps (0: skip)")
    p.add_argument("--json", default=None, help="also write the results to this file")
    p.set_defaults(func=run_gpu)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdlib.benchmarks gpu",
                                     description=__doc__.split("\n")[0])
    _add_arguments(parser)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
