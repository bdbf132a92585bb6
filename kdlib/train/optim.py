"""Optimisers and learning-rate schedules the five papers use.

- ``adam_step``: Adam, lr 1e-3, x0.1 at epochs 170 and 200 of 210 (HRNet / Simple Baselines
  ``w32_256x192_adam_lr1e-3.yaml``; also SimCC, Lite-HRNet, SDP, ELPN).
- ``adamw_cosine``: AdamW, lr 4e-3, weight decay 0.05, linear warm-up from ``warmup_factor`` over
  ``warmup_iters`` iterations, constant, then cosine annealing over the second half of training to
  ``min_lr_ratio * lr`` (RTMPose ``rtmpose-*_8xb256-420e_coco-256x192.py``: LinearLR start 1e-5 for
  1000 iters, CosineAnnealingLR from epoch 210 to 420, eta_min = 0.05 * base lr).

Both schedules are one ``LambdaLR`` stepped every iteration whose factor is a picklable object of
plain numbers (so the scheduler's state loads with ``weights_only=True``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

RECIPE_DEFAULTS = {
    "adam_step": dict(lr=1e-3, weight_decay=0.0),       # HRNet / SBL
    "adamw_cosine": dict(lr=4e-3, weight_decay=0.05),   # RTMPose
}


@dataclass
class StepDecay:
    """factor = gamma ** (number of milestones <= current epoch)."""
    steps_per_epoch: int
    milestones: tuple[int, ...]
    gamma: float = 0.1

    def __call__(self, iteration: int) -> float:
        epoch = iteration // self.steps_per_epoch
        return self.gamma ** sum(epoch >= m for m in self.milestones)


@dataclass
class WarmupCosine:
    """Linear warm-up, constant until ``cosine_from`` of training, then cosine to ``min_lr_ratio``."""
    total_iters: int
    warmup_iters: int
    warmup_factor: float = 1e-5
    cosine_from: float = 0.5
    min_lr_ratio: float = 0.05

    def __call__(self, iteration: int) -> float:
        factor = 1.0
        if iteration < self.warmup_iters:
            alpha = iteration / self.warmup_iters
            factor = self.warmup_factor + (1.0 - self.warmup_factor) * alpha
        start = int(self.cosine_from * self.total_iters)
        if iteration >= start:
            progress = min(1.0, (iteration - start) / max(1, self.total_iters - start))
            cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
            factor *= self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine
        return factor


def build_optimizer(recipe: str, params, lr: float | None = None,
                    weight_decay: float | None = None) -> torch.optim.Optimizer:
    """Adam (``adam_step``) or AdamW (``adamw_cosine``) with the recipe's defaults unless given."""
    if recipe not in RECIPE_DEFAULTS:
        raise ValueError(f"unknown recipe {recipe!r}; expected one of {sorted(RECIPE_DEFAULTS)}")
    defaults = RECIPE_DEFAULTS[recipe]
    lr = defaults["lr"] if lr is None else lr
    weight_decay = defaults["weight_decay"] if weight_decay is None else weight_decay
    if recipe == "adam_step":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def build_scheduler(recipe: str, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int,
                    milestones=(), gamma: float = 0.1, warmup_iters: int = 0):
    """Per-iteration ``LambdaLR`` for the recipe (call ``scheduler.step()`` after every step)."""
    if recipe == "adam_step":
        factor = StepDecay(steps_per_epoch, tuple(milestones), gamma)
    elif recipe == "adamw_cosine":
        factor = WarmupCosine(epochs * steps_per_epoch, warmup_iters)
    else:
        raise ValueError(f"unknown recipe {recipe!r}; expected one of {sorted(RECIPE_DEFAULTS)}")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def trainable_parameters(*modules: nn.Module) -> list[nn.Parameter]:
    """Parameters requiring grad across modules (student + method's own parts), each once."""
    seen, params = set(), []
    for module in modules:
        for p in module.parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                params.append(p)
    return params
