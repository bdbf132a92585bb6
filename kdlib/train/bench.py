"""``python -m kdlib.bench train``: what training costs, measured side by side in one run.

1. Plain trainer: ``train_one_epoch`` with ``Supervised`` on the profile's SynthPose through the
   real DataLoader -> training images/s and the share of the epoch spent waiting for data (on a
   GPU the step syncs every iteration for the NaN check, so the wait is real GPU idle time).
2. Method overhead: every registered method on the same fixed batch, the same student and the
   same device, timed in interleaved rounds (plain, method A, plain, method B, ...; median of
   rounds) -> time per step relative to plain training of that student. Ratios, not absolute
   limits: they transfer across machines, images/s do not.

Each method runs in the setup of its paper (``SETUPS``: student, head, teachers); a method that
cannot be built in a generic setup (e.g. stage 2 of TwoStage-GCN needs a trained stage-1 student,
Unified-MT a joint COCO+MPII dataset) is listed with the reason instead of a number.
"""
from __future__ import annotations

import statistics
import time

import torch

from kdlib.methods import METHODS, build_method
from kdlib.train.checkpoint import seed_everything
from kdlib.train.optim import build_optimizer, build_scheduler, trainable_parameters
from kdlib.train.trainer import TrainConfig, TrainStep, make_loader, to_device, train_one_epoch
from kdlib.train import ddp

_HEATMAP = dict(student="sbl_r50", head="heatmap", teachers={})
_SIMCC_KD = dict(student="litehrnet_18", head="simcc", teachers={"teacher": "hrnet_w32"})
SETUPS = {  # method -> student, head, teachers (model names), method params
    "supervised": _HEATMAP,
    "sdp": _HEATMAP,                                                           # SDP Table 5
    "fpd": dict(student="hourglass4", head="heatmap", teachers={"teacher": "hourglass8"}),  # Table 3
    "mapd": dict(student="elpn_v1", head="heatmap", teachers={"teacher": "hrnet_w32"}),     # ELPN
    "two_stage": dict(student="rtmpose_t", head="simcc", teachers={"teacher": "rtmpose_m"}),
    "ekr": _SIMCC_KD, "kd": _SIMCC_KD, "fitnet": _SIMCC_KD, "rkd": _SIMCC_KD,   # EKR Table 1
    "at": _SIMCC_KD, "sp": _SIMCC_KD, "reviewkd": _SIMCC_KD,
}
DEFAULT_SETUP = _HEATMAP
NOT_GENERIC = {  # methods whose setup is a trained pipeline, not a model pair
    "two_stage_gcn": "stage 2 trains an IGP-GCN refiner on a trained, frozen stage-1 student",
    "unified": "needs the joint COCO+MPII dataset and one teacher per dataset",
}


def _dataset(profile: dict, head: str):
    from kdlib.data import PipelineConfig, build_dataset
    from kdlib.experiment import HEAD_TARGETS, dataset_root, ensure_data
    ensure_data(profile)
    cfg = PipelineConfig(input_size=tuple(profile["input_size"]["coco"]), targets=HEAD_TARGETS[head],
                         train=True)
    return build_dataset("coco", "train", dataset_root(profile, "coco"), cfg)


def _model(name: str, head: str, train_set, profile: dict):
    from kdlib.models import build_model
    return build_model(name, train_set.skeleton.num_joints, head=head,
                       input_size=tuple(train_set.cfg.input_size), variant=profile["model_variant"])


def _time_steps(step, batch, teachers, optimizer, steps: int, device) -> list[float]:
    """Seconds of each of ``steps`` optimisation steps (synchronised on GPU)."""
    times = []
    for _ in range(steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        terms, _ = step(batch, teachers)
        loss = sum(terms.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def _prepare(name: str, setup: dict, cache: dict, profile: dict, cfg: TrainConfig):
    """(step module, batch, teachers, optimizer) of ``name`` in ``setup``; raises if unbuildable."""
    device = torch.device(cfg.device)
    key = (setup["head"],)
    if key not in cache:
        train_set = _dataset(profile, setup["head"])
        batch = torch.utils.data.default_collate([train_set[i] for i in range(cfg.batch_size)])
        cache[key] = (train_set, to_device(batch, device, False))
    train_set, batch = cache[key]
    seed_everything(0)
    student = _model(setup["student"], setup["head"], train_set, profile).to(device)
    teachers = {n: _model(m, setup["head"], train_set, profile).to(device).eval().requires_grad_(False)
                for n, m in setup["teachers"].items()}
    method = build_method(name, {}, student, teachers, train_set).to(device)
    step = TrainStep(student, method).train()
    optimizer = build_optimizer("adam_step", trainable_parameters(step))
    return step, batch, teachers, optimizer


def method_overheads(profile: dict, cfg: TrainConfig, methods=None, steps: int = 2, rounds: int = 5,
                     log=print) -> list[dict]:
    """Per method: seconds/step and the ratio to plain training of the same student (median)."""
    names = list(methods or METHODS)
    device, cache, prepared, rows = torch.device(cfg.device), {}, {}, []
    for name in names:
        setup = SETUPS.get(name, DEFAULT_SETUP)
        if name in NOT_GENERIC:
            continue
        for label, method in ((f"plain/{setup['student']}", "supervised"), (name, name)):
            if label in prepared:
                continue
            try:
                prepared[label] = _prepare(method, setup, cache, profile, cfg)
                _time_steps(*prepared[label], steps=1, device=device)           # warm-up
            except Exception as exc:  # noqa: BLE001 -- report, do not stop the benchmark
                prepared[label] = f"{type(exc).__name__}: {str(exc)[:120]}"
    times = {label: [] for label, p in prepared.items() if not isinstance(p, str)}
    for _ in range(rounds):                     # interleaved rounds; median over all their steps
        for label in times:
            times[label] += _time_steps(*prepared[label], steps=steps, device=device)
    for name in names:
        setup = SETUPS.get(name, DEFAULT_SETUP)
        plain = f"plain/{setup['student']}"
        row = {"method": name, "student": setup["student"], "head": setup["head"],
               "teachers": ",".join(setup["teachers"].values()) or "-"}
        if name in NOT_GENERIC:
            row["note"] = NOT_GENERIC[name]
        elif isinstance(prepared.get(name), str) or isinstance(prepared.get(plain), str):
            row["note"] = prepared[name] if isinstance(prepared.get(name), str) else prepared[plain]
        else:
            row["s_per_step"] = statistics.median(times[name])
            row["ratio_vs_plain"] = row["s_per_step"] / statistics.median(times[plain])
        rows.append(row)
    return rows


def plain_throughput(profile: dict, cfg: TrainConfig, steps: int) -> dict:
    """images/s and data-wait share of ``train_one_epoch`` (Supervised) on the real DataLoader."""
    train_set = _dataset(profile, "heatmap")
    seed_everything(0)
    student = _model("sbl_r50", "heatmap", train_set, profile).to(cfg.device)
    step = TrainStep(student, build_method("supervised", {}, student, {}, train_set)).to(cfg.device)
    optimizer = build_optimizer("adam_step", trainable_parameters(step))
    scheduler = build_scheduler("adam_step", optimizer, 1, steps)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    cfg = TrainConfig(**{**vars(cfg), "max_steps_per_epoch": steps, "show_progress": False})
    loader = make_loader(train_set, cfg, 0, True, ddp.DistInfo())
    train_one_epoch(step, loader, optimizer, scheduler, scaler, {}, cfg, 0, False)   # warm-up
    return train_one_epoch(step, loader, optimizer, scheduler, scaler, {}, cfg, 1, False)


def run_train(args) -> dict:
    from kdlib.profiles import get_profile
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    profile = get_profile(args.profile)
    cfg = TrainConfig(batch_size=args.batch_size or profile["batch_size"], device=device,
                      num_workers=profile["num_workers"] if args.workers is None else args.workers,
                      amp=device == "cuda", show_progress=False)
    print(f"kdlib.bench train: profile {args.profile}, device {device}, batch {cfg.batch_size}, "
          f"input {profile['input_size']['coco']}, variant {profile['model_variant']}")
    plain = plain_throughput(profile, cfg, max(5, args.steps))
    print(f"plain trainer (sbl_r50, real DataLoader, {cfg.num_workers} workers): "
          f"{plain['images_per_s']:.1f} images/s, data-wait share {plain['data_wait_share']:.1%}")
    rows = method_overheads(profile, cfg, args.methods, args.steps, args.rounds)
    print("\nper-step time relative to plain training of the same student on the same batch "
          "(the 'supervised' row is plain measured twice: the noise floor)")
    print(f"{'method':<14}{'student':<14}{'teachers':<14}{'ratio vs plain':>15}")
    for row in rows:
        value = f"{row['ratio_vs_plain']:.2f}x" if "ratio_vs_plain" in row else f"n/a ({row['note']})"
        print(f"{row['method']:<14}{row['student']:<14}{row['teachers']:<14}{value:>15}")
    return {"plain": plain, "methods": rows}


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="training images/s and each method's overhead over plain training")
    p.add_argument("--profile", default="smoke", help="sizes, model variant and data (default smoke)")
    p.add_argument("--device", default=None, help="cuda | cpu (default: cuda if available)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: profile's)")
    p.add_argument("--steps", type=int, default=2, help="timed steps per method per round")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median of all steps)")
    p.add_argument("--methods", nargs="*", default=None, help="default: every registered method")
    p.set_defaults(func=run_train)
