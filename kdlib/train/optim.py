"""Optimisers and learning-rate schedules the five papers use.

- ``adam_step``: Adam, lr 1e-3, x0.1 at epochs 170 and 200 of 210 (HRNet / Simple Baselines
  ``w32_256x192_adam_lr1e-3.yaml``; also SimCC, Lite-HRNet, SDP, ELPN).
- ``adamw_cosine``: RTMPose's optimisation (mmpose ``projects/rtmpose/rtmpose/body_2d_keypoint/
  rtmpose-m_8xb256-420e_coco-256x192.py``): AdamW, lr 4e-3, weight decay 0.05 except on the
  weights and biases of normalisation layers and on every bias (``paramwise_cfg=dict(
  norm_decay_mult=0, bias_decay_mult=0)``, applied as mmengine's
  ``DefaultOptimWrapperConstructor.add_params`` does: ``param_groups``); linear warm-up from
  ``warmup_factor`` over ``warmup_iters`` iterations, constant, then cosine annealing over the
  second half of training to ``min_lr_ratio * lr`` (LinearLR start 1e-5 for 1000 iters,
  CosineAnnealingLR from epoch 210 to 420, eta_min = 0.05 * base lr); and an exponential moving
  average of the weights for evaluation (``EMAHook(ExpMomentumEMA, momentum=0.0002)``:
  ``ema_momentum``, ``kdlib/train/ema.py``).

Both schedules are one ``LambdaLR`` stepped every iteration whose factor is a picklable object of
plain numbers (so the scheduler's state loads with ``weights_only=True``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

RECIPE_DEFAULTS = {
    "adam_step": dict(lr=1e-3, weight_decay=0.0, ema_momentum=None),         # HRNet / SBL
    "adamw_cosine": dict(lr=4e-3, weight_decay=0.05, ema_momentum=0.0002),   # RTMPose
}
# RTMPose paramwise_cfg: no weight decay on norm layers (weight and bias) nor on biases
NO_DECAY_RECIPES = ("adamw_cosine",)
NORM_LAYERS = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm,
               nn.GroupNorm, nn.LayerNorm)                  # mmengine's is_norm test


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
    """Adam (``adam_step``) or AdamW (``adamw_cosine``) with the recipe's defaults unless given.

    ``params``: parameters or ``param_groups(recipe, ...)`` (a group's own ``weight_decay`` wins).
    """
    if recipe not in RECIPE_DEFAULTS:
        raise ValueError(f"unknown recipe {recipe!r}; expected one of {sorted(RECIPE_DEFAULTS)}")
    defaults = RECIPE_DEFAULTS[recipe]
    lr = defaults["lr"] if lr is None else lr
    weight_decay = defaults["weight_decay"] if weight_decay is None else weight_decay
    if recipe == "adam_step":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def ema_momentum(recipe: str, momentum: float | None = None) -> float | None:
    """The EMA momentum a run uses: ``momentum`` if given (0: off), else the recipe's (None: off)."""
    if recipe not in RECIPE_DEFAULTS:
        raise ValueError(f"unknown recipe {recipe!r}; expected one of {sorted(RECIPE_DEFAULTS)}")
    return RECIPE_DEFAULTS[recipe]["ema_momentum"] if momentum is None else momentum


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


def param_groups(recipe: str, *modules: nn.Module) -> list:
    """What ``build_optimizer`` optimises: the trainable parameters of ``modules``, each once.

    ``adamw_cosine``: two groups, ``[{'params': decayed}, {'params': no_decay, 'weight_decay': 0}]``
    where no_decay = every parameter of a normalisation layer (``NORM_LAYERS``) and every other
    parameter named ``bias`` (mmengine ``DefaultOptimWrapperConstructor.add_params`` with
    ``norm_decay_mult=0, bias_decay_mult=0``). As there, only torch's norm classes count as norm
    layers: the RTMPose head's ScaleNorm gain ``g`` decays. Other recipes: the plain list.
    """
    if recipe not in NO_DECAY_RECIPES:
        return trainable_parameters(*modules)
    seen, decay, no_decay = set(), [], []
    for module in modules:
        for layer in module.modules():
            for name, p in layer.named_parameters(recurse=False):
                if not p.requires_grad or id(p) in seen:
                    continue
                seen.add(id(p))
                is_norm = isinstance(layer, NORM_LAYERS)
                (no_decay if is_norm or name == "bias" else decay).append(p)
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]


def trainable_parameters(*modules: nn.Module) -> list[nn.Parameter]:
    """Parameters requiring grad across modules (student + method's own parts), each once."""
    seen, params = set(), []
    for module in modules:
        for p in module.parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                params.append(p)
    return params
