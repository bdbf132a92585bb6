"""The one trainer every paper uses: ``fit`` = epochs of ``train_one_epoch`` + ``evaluate``.

GPU first, same code on CPU: AMP (bf16 where supported, else fp16 with a GradScaler; off on CPU
unless asked), channels_last, ``cudnn.benchmark``, optional ``torch.compile``, pinned-memory
persistent DataLoader workers, DDP under torchrun (``kdlib/train/ddp.py``).

Reproducibility: the shuffling order of epoch e comes from a sampler seeded by (seed, e), and a
checkpoint after every epoch stores the RNG states, so a killed run resumed from ``last.pt`` ends,
on CPU with ``num_workers=0``, with the same weights and metrics as an uninterrupted one (tested).
With workers, the non-persistent loader of each epoch is seeded by (seed, e) as well; persistent
workers (GPU) keep their augmentation streams across epochs and are exact only without a resume.

Method state: hooks fire before each epoch; anything a method derives from them (e.g. SDP's
distance after a milestone) must live in its ``state_dict`` (buffers or ``get_extra_state``) so a
resumed run sees it.

Divergence. A NaN/Inf loss term raises ``NonFiniteLossError``; a loss that explodes but stays
finite (4e25) is flagged instead: an epoch whose mean loss exceeds ``DIVERGENCE_FACTOR`` (100) x the
loss of the run's first training step -- the loss at initialisation -- gets ``diverged`` (the
reason) in its history row, and ``fit`` returns ``diverged=True`` with that reason
(``divergence``); the run still completes, so its cache entry is whole, and the report lists it.
Why this cannot fire on a normal run: training lowers the loss from its initial value. Measured
on the quick profile, one fresh run of every method (supervised, SDP, MAPD, EKR, TwoStage and its
GCN stage, Unified, with their teachers: 12 runs), no epoch's mean loss exceeded 0.83 x the first
step's; over 236 cached smoke/quick runs no epoch exceeded the first epoch's mean by more than
1.02 x. SDP's L_sd, off at the first step, adds at most alpha x a loss of L_gt's size; the only
scheduled loss weight (TwoStage-GCN's gamma(t)) decays.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm.auto import tqdm

from kdlib.data.topdown import normalize_batch
from kdlib.train import ddp
from kdlib.train.checkpoint import (atomic_write_text, load_checkpoint, save_checkpoint,
                                    seed_everything, set_rng_state, atomic_torch_save, _unwrap)
from kdlib.train.ema import build_ema, load_checkpoint_entries
from kdlib.train.optim import (build_optimizer, build_scheduler, ema_momentum, param_groups,
                               trainable_parameters)


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or Inf; the message names the term, epoch and step."""


DIVERGENCE_FACTOR = 100.0   # an epoch's mean loss > this x the first step's loss: diverged


def divergence(epoch_loss: float, first_loss: float, epoch: int,
               factor: float = DIVERGENCE_FACTOR) -> str | None:
    """The reason epoch ``epoch`` (1-based) diverged, or None (see the module docstring)."""
    if first_loss > 0 and epoch_loss > factor * first_loss:
        return (f"epoch {epoch} mean loss {epoch_loss:.4g} is {epoch_loss / first_loss:.3g} x the "
                f"first step's {first_loss:.4g} (limit {factor:g} x): training diverged; lower "
                "the learning rate or add grad_clip")
    return None


@dataclass
class TrainConfig:
    epochs: int = 2
    batch_size: int = 8
    recipe: str = "adam_step"              # 'adam_step' | 'adamw_cosine' (kdlib/train/optim.py)
    lr: float | None = None                # None: the recipe's default
    weight_decay: float | None = None
    ema_momentum: float | None = None      # None: the recipe's (adamw_cosine: RTMPose's EMA); 0: off
    lr_milestones: tuple[int, ...] = ()
    lr_gamma: float = 0.1
    warmup_iters: int = 0
    val_every: int = 1                     # epochs; the last epoch is always validated
    num_workers: int = 0
    device: str = "cpu"
    amp: bool | None = None                # None: on for CUDA, off on CPU
    channels_last: bool | None = None      # None: on for CUDA
    compile: bool = False
    seed: int = 0
    flip_test: bool = True
    grad_clip: float | None = None
    best_metric: str | None = None         # None: 'AP' when reported, else 'Mean' (PCKh)
    find_unused_parameters: bool = False
    show_progress: bool = True
    progress_label: str = "train"          # the run's one progress bar names it (model, method)
    max_steps_per_epoch: int | None = None  # truncate epochs (benchmarks, tests)

    def __post_init__(self):
        """Reject what would train nothing or fail late (a config error names its field)."""
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "val_every": self.val_every}
        for name, value in positive.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be an integer >= 1, got {value!r}")
        if self.max_steps_per_epoch is not None and self.max_steps_per_epoch < 1:
            raise ValueError(f"TrainConfig.max_steps_per_epoch must be >= 1 or None, got {self.max_steps_per_epoch!r}")
        if self.num_workers < 0:
            raise ValueError(f"TrainConfig.num_workers must be >= 0, got {self.num_workers!r}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"TrainConfig.lr must be > 0 or None (the recipe's), got {self.lr!r}")


def amp_dtype(cfg: TrainConfig) -> torch.dtype | None:
    """bf16 where supported, else fp16; None when AMP is off (CPU by default)."""
    on_cuda = cfg.device.startswith("cuda")
    if not (cfg.amp if cfg.amp is not None else on_cuda):
        return None
    if on_cuda and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


class TrainStep(nn.Module):
    """Student and method in one module, so a single DDP wrapper syncs both's gradients."""

    def __init__(self, student: nn.Module, method: nn.Module):
        super().__init__()
        self.student, self.method = student, method

    def forward(self, batch: dict, teachers: dict):
        return self.method(batch, self.student, teachers)


def to_device(batch: dict, device: torch.device, channels_last: bool) -> dict:
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            value = value.to(device, non_blocking=True)
            if key == "image" and value.dtype == torch.uint8:      # PipelineConfig.image_dtype
                value = normalize_batch(value)
            if key == "image" and channels_last:
                value = value.contiguous(memory_format=torch.channels_last)
        out[key] = value
    return out


def make_loader(dataset, cfg: TrainConfig, epoch: int, train: bool, info: ddp.DistInfo,
                persistent: bool = False) -> DataLoader:
    """Loader whose order (and worker seeds, unless persistent) depend only on (seed, epoch)."""
    sampler = DistributedSampler(dataset, num_replicas=info.world_size if train else 1,
                                 rank=info.rank if train else 0, shuffle=train, seed=cfg.seed)
    sampler.set_epoch(epoch)
    generator = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
    return DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler, drop_last=train,
                      num_workers=cfg.num_workers, pin_memory=cfg.device.startswith("cuda"),
                      persistent_workers=persistent and cfg.num_workers > 0, generator=generator)


def _check_finite(terms: dict, epoch: int, step: int) -> torch.Tensor:
    values = torch.stack([v.detach().float() for v in terms.values()])  # (T,)
    if not bool(torch.isfinite(values).all()):
        bad = {n: v for n, v in zip(terms, values.tolist()) if not math.isfinite(v)}
        raise NonFiniteLossError(f"non-finite loss term(s) {bad} at epoch {epoch + 1}, step {step}; "
                                 "lower the learning rate or check that term's inputs")
    return values


def train_one_epoch(step_module: nn.Module, loader, optimizer, scheduler, scaler, teachers: dict,
                    cfg: TrainConfig, epoch: int, show_progress: bool = True, ema=None, bar=None) -> dict:
    """One pass over ``loader``; returns the mean of each loss term, the total of the first step
    (``loss_first_step``, the divergence check's reference), images/s and data-wait time.

    ``ema`` (``kdlib.train.ema``): updated from the student after every optimiser step. ``bar``: a
    tqdm bar to advance one step per batch (``fit``'s bar for the whole run); without one the
    epoch gets its own bar (kept on screen: a bar that closes itself leaves a dead widget in a
    notebook reloaded later)."""
    device = torch.device(cfg.device)
    dtype = amp_dtype(cfg)
    channels_last = cfg.channels_last if cfg.channels_last is not None else device.type == "cuda"
    step_module.train()
    sums, names, num_images, num_steps, data_wait = None, None, 0, 0, 0.0
    start = tick = time.perf_counter()
    own_bar = bar is None
    if own_bar:
        bar = tqdm(total=len(loader), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not show_progress)
    for step, batch in enumerate(loader):
        data_wait += time.perf_counter() - tick
        batch = to_device(batch, device, channels_last)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            terms, _ = step_module(batch, teachers)
        values = _check_finite(terms, epoch, step)
        loss = sum(terms.values())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg.grad_clip is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(trainable_parameters(step_module), cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        if ema is not None:                                  # mmengine EMAHook.after_train_iter
            ema.update(_unwrap(_unwrap(step_module).student))
        if sums is None:
            names, first, sums = list(terms), values.sum(), values              # (T,), (), (T,)
        else:
            sums = sums + values
        num_images += batch["image"].shape[0]
        num_steps += 1
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix(epoch=f"{epoch + 1}/{cfg.epochs}", loss=f"{float(values.sum()):.4g}")
        if cfg.max_steps_per_epoch is not None and num_steps >= cfg.max_steps_per_epoch:
            break
        tick = time.perf_counter()
    elapsed = time.perf_counter() - start
    if own_bar:
        bar.close()
    if sums is None:
        raise ValueError(f"epoch {epoch + 1}: the training loader produced no batch "
                         f"(dataset of {len(loader.dataset)} samples, batch_size {cfg.batch_size})")
    reduced = ddp.all_reduce_mean(torch.cat([sums / num_steps, first[None]]))  # (T + 1,)
    means = reduced[:-1]
    stats = {f"loss/{n}": float(v) for n, v in zip(names, means.tolist())}
    stats["loss"] = float(means.sum())
    stats["loss_first_step"] = float(reduced[-1])
    stats.update(images_per_s=num_images / elapsed, data_wait_share=data_wait / elapsed,
                 epoch_time_s=elapsed)
    return stats


@torch.no_grad()
def predict_dataset(model: nn.Module, dataset, flip_index, device: str = "cpu", batch_size: int = 32,
                    flip_test: bool = True, dtype: torch.dtype | None = None,
                    predict_fn=None, show_progress: bool = False,
                    num_workers: int = 0) -> dict[str, np.ndarray]:
    """Predictions for every sample of ``dataset`` (any map-style dataset of top-down samples).

    Returns ``coords_input`` (N, K, 2) in input-crop pixels, ``coords`` (N, K, 2) in original-image
    pixels, ``scores`` (N, K) and ``indices`` (N,) (the samples' ``index`` fields), and
    ``evaluate_kw``: the keywords ``dataset.evaluate`` needs to score them as the decoded head's
    reference code does -- ``in_vis_thre`` for SimCC scores (SimCC's 0.01, not HRNet's 0.2:
    ``kdlib.evaluation.keypoint_score_threshold``), empty for heatmaps (the evaluator's default).
    The kit's decoder is told ``dataset``'s SimCC label type (``kdlib.decode.dataset_simcc_label``).
    """
    from functools import partial

    from kdlib.decode import dataset_simcc_label, predict, to_original
    from kdlib.evaluation.coco import keypoint_score_threshold
    info = {}
    if predict_fn is None:
        predict_fn = partial(predict, simcc_label=dataset_simcc_label(dataset), info=info)
    device = torch.device(device)
    model.eval()
    out = {"coords_input": [], "coords": [], "scores": [], "indices": []}
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=device.type == "cuda")
    for batch in tqdm(loader, desc="predict", disable=not show_progress):
        images = to_device({"image": batch["image"]}, device, False)["image"]
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            xy, score = predict_fn(model, images, flip_index, flip_test=flip_test)  # (B, K, 2), (B, K)
        xy = xy.float().cpu().numpy()
        out["coords_input"].append(xy)
        out["coords"].append(to_original(xy, batch["center"].numpy(), batch["scale"].numpy(),
                                         tuple(images.shape[-2:])))  # (B, K, 2)
        out["scores"].append(score.float().cpu().numpy())
        out["indices"].append(batch["index"].numpy())
    pred = {k: np.concatenate(v) for k, v in out.items()}
    pred["evaluate_kw"] = ({"in_vis_thre": keypoint_score_threshold("simcc", info["simcc_label"])}
                           if info.get("scores") == "simcc" else {})
    return pred


def evaluate(model: nn.Module, dataset, cfg: TrainConfig, predict_fn=None) -> dict[str, float]:
    """Predict every validation sample (flip test per ``cfg``) and return ``dataset.evaluate``."""
    pred = predict_dataset(model, dataset, dataset.skeleton.flip_index, cfg.device, cfg.batch_size,
                           cfg.flip_test, amp_dtype(cfg), predict_fn, False,
                           cfg.num_workers)
    metrics = dataset.evaluate(pred["coords"], pred["scores"], pred["indices"], **pred["evaluate_kw"])
    return {k: float(v) for k, v in metrics.items()}


def _primary(metrics: dict, name: str | None) -> tuple[str, float]:
    for key in ([name] if name else ["AP", "Mean"]):
        if key in metrics:
            return key, metrics[key]
    raise KeyError(f"best_metric {name or 'AP/Mean'} not among validation metrics {sorted(metrics)}")


def _write_logs(run_dir: Path, history: list[dict]) -> None:
    """Per-epoch metrics as CSV and JSON next to the checkpoint (atomic)."""
    atomic_write_text(run_dir / "metrics.json", json.dumps(history, indent=1))
    atomic_write_text(run_dir / "metrics.csv", pd.DataFrame(history).to_csv(index=False))


def _prepare(student, method, teachers, cfg: TrainConfig, info: ddp.DistInfo):
    """Move modules to the device, freeze teachers, wrap for compile / DDP."""
    device = torch.device(cfg.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    channels_last = cfg.channels_last if cfg.channels_last is not None else device.type == "cuda"
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    student.to(device, memory_format=memory_format)
    method.to(device)
    for teacher in teachers.values():
        teacher.to(device, memory_format=memory_format).eval().requires_grad_(False)
    step_module = TrainStep(torch.compile(student) if cfg.compile else student, method)
    if info.enabled:
        device_ids = [info.local_rank] if device.type == "cuda" else None
        step_module = nn.parallel.DistributedDataParallel(
            step_module, device_ids=device_ids, find_unused_parameters=cfg.find_unused_parameters)
    return step_module


def _resume(path: Path, student, method, optimizer, scheduler, scaler,
            ema=None) -> tuple[int, list, dict]:
    state = load_checkpoint(path)
    load_checkpoint_entries(state, _unwrap(student), ema)      # training weights (+ the average)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if "scaler" in state and scaler.is_enabled():
        scaler.load_state_dict(state["scaler"])
    method.load_state_dict(state["method"])
    set_rng_state(state["rng"])
    return state["epoch"] + 1, state["history"], state["best"]


class RunShare:
    """One run's view of a bar that counts runs: each of the run's ``steps`` advances it by
    1 / ``steps``, and its postfix names the run (``label``) first."""

    def __init__(self, bar, steps: int, label: str):
        self.bar, self.per_step, self.label = bar, 1.0 / max(1, steps), label
        self.start = bar.n

    def update(self, n: int = 1) -> None:
        self.bar.update(n * self.per_step)

    def set_postfix(self, **values) -> None:
        self.bar.set_postfix(run=self.label, **values)

    def close(self) -> None:            # a run that stopped early still counts as one run
        self.bar.update(max(0.0, self.start + 1.0 - self.bar.n))


def fit(student: nn.Module, method: nn.Module, train_set, val_set, cfg: TrainConfig,
        run_dir: str | Path, teachers: dict[str, nn.Module] | None = None, predict_fn=None,
        config: dict | None = None, resume: bool = True, cell_bar=None) -> dict:
    """Train ``student`` with ``method`` for ``cfg.epochs``; validate, log, checkpoint every epoch.

    ``run_dir`` receives ``last.pt`` (full state, every epoch), ``best.pt`` (weights of the best
    validation epoch), ``metrics.csv``/``metrics.json`` and ``train_config.json`` (+ ``config.json``
    when ``config`` is given). With ``resume`` an existing ``last.pt`` is continued. With an EMA of
    the weights (``cfg.ema_momentum``, or the recipe's: ``adamw_cosine``) validation, ``best.pt`` and
    ``last.pt``'s ``model`` entry use the averaged weights (``kdlib/train/ema.py``). Returns
    ``dict(metrics=last validation, best=..., history=[...], train_time_s, checkpoint, best_checkpoint,
    diverged, divergence)``: ``diverged`` is True when an epoch's loss exploded (``divergence``, the
    first such epoch's reason; see the module docstring).

    Progress: one bar for the run (``cfg.progress_label``, in steps), or, given ``cell_bar`` (a tqdm
    bar counting runs: a notebook cell's one bar, ``kdlib.figures.common.run_all``), this run
    advances it by one run over its steps and names itself in its postfix.
    """
    run_dir, teachers, info = Path(run_dir), dict(teachers or {}), ddp.current()
    seed_everything(cfg.seed)
    step_module = _prepare(student, method, teachers, cfg, info)
    ema = build_ema(student, ema_momentum(cfg.recipe, cfg.ema_momentum))
    evaluated = student if ema is None else ema.module        # validated, best.pt, last.pt 'model'
    optimizer = build_optimizer(cfg.recipe, param_groups(cfg.recipe, student, method), cfg.lr,
                                cfg.weight_decay)
    steps = len(make_loader(train_set, cfg, 0, True, info))
    steps = min(steps, cfg.max_steps_per_epoch or steps)
    scheduler = build_scheduler(cfg.recipe, optimizer, cfg.epochs, max(1, steps), cfg.lr_milestones,
                                cfg.lr_gamma, cfg.warmup_iters)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype(cfg) == torch.float16)
    start_epoch, history, best = 0, [], {}
    if resume and (run_dir / "last.pt").is_file():
        start_epoch, history, best = _resume(run_dir / "last.pt", student, method, optimizer,
                                             scheduler, scaler, ema)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "train_config.json", json.dumps(asdict(cfg), indent=1, default=list))
        if config is not None:
            atomic_write_text(run_dir / "config.json", json.dumps(config, indent=1, default=list))
    persistent = cfg.device.startswith("cuda")
    loader = make_loader(train_set, cfg, start_epoch, True, info, persistent) if persistent else None
    show = cfg.show_progress and info.is_main
    if cell_bar is not None and show:
        bar = RunShare(cell_bar, (cfg.epochs - start_epoch) * steps, cfg.progress_label)
    else:
        bar = tqdm(total=(cfg.epochs - start_epoch) * steps, desc=cfg.progress_label, unit="step",
                   disable=not show)                      # one bar for the whole run
    for epoch in range(start_epoch, cfg.epochs):
        if persistent:
            loader.sampler.set_epoch(epoch)
        else:
            loader = make_loader(train_set, cfg, epoch, True, info)
        lr = optimizer.param_groups[0]["lr"]
        if cfg.recipe == "adam_step" and epoch in cfg.lr_milestones:
            method.on_lr_milestone(epoch, cfg.lr_gamma)
        method.on_epoch_start(epoch, cfg.epochs, lr)
        row = {"epoch": epoch + 1, "lr": lr}
        row.update(train_one_epoch(step_module, loader, optimizer, scheduler, scaler, teachers, cfg,
                                   epoch, show, ema, bar))
        reference = (history or [row])[0]
        reason = divergence(row["loss"], reference.get("loss_first_step", reference["loss"]), epoch + 1)
        if reason:
            row["diverged"] = reason
        if (epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs:
            if info.is_main:
                bar.set_postfix(epoch=f"{epoch + 1}/{cfg.epochs}", status="validating")
                row.update({f"val/{k}": v for k, v in evaluate(evaluated, val_set, cfg, predict_fn).items()})
                best = _update_best(run_dir, evaluated, row, best, cfg)
        history.append(row)
        if info.is_main:
            save_checkpoint(run_dir / "last.pt", model=student, optimizer=optimizer,
                            scheduler=scheduler, scaler=scaler if scaler.is_enabled() else None,
                            method=method, epoch=epoch, history=history, best=best, ema=ema)
            _write_logs(run_dir, history)
        ddp.barrier()
    bar.close()
    return _summary(run_dir, history, best)


def _update_best(run_dir: Path, student, row: dict, best: dict, cfg: TrainConfig) -> dict:
    metrics = {k[4:]: v for k, v in row.items() if k.startswith("val/")}
    name, value = _primary(metrics, cfg.best_metric)
    if not best or value > best["value"]:
        best = {"metric": name, "value": value, "epoch": row["epoch"], "metrics": metrics}
        atomic_torch_save({"model": _unwrap(student).state_dict(), "epoch": row["epoch"] - 1,
                           "metrics": metrics}, run_dir / "best.pt")
    return best


def _summary(run_dir: Path, history: list[dict], best: dict) -> dict:
    validated = [r for r in history if any(k.startswith("val/") for k in r)]
    last = {k[4:]: v for k, v in validated[-1].items() if k.startswith("val/")} if validated else {}
    reasons = [r["diverged"] for r in history if r.get("diverged")]
    return {"metrics": last, "best": best, "history": history,
            "train_time_s": sum(r["epoch_time_s"] for r in history),
            "checkpoint": str(run_dir / "last.pt"), "best_checkpoint": str(run_dir / "best.pt"),
            "diverged": bool(reasons), "divergence": reasons[0] if reasons else ""}
