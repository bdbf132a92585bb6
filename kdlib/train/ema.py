"""Exponential moving average of a network's weights, as RTMPose trains with it.

RTMPose's configs (mmpose ``projects/rtmpose/rtmpose/body_2d_keypoint/
rtmpose-m_8xb256-420e_coco-256x192.py``, ``custom_hooks``) add
``EMAHook(ema_type='ExpMomentumEMA', momentum=0.0002, update_buffers=True)``. ``ExpMomentumEMA``
re-stated here:

- mmpose ``mmpose/engine/hooks/ema_hook.py::ExpMomentumEMA.avg_func`` (ported from mmdet
  ``mmdet/models/layers/ema.py``): at update number ``n`` (0-based)
  ``m_n = (1 - momentum) * exp(-(1 + n) / gamma) + momentum`` and
  ``averaged = (1 - m_n) * averaged + m_n * source``, gamma = 2000. The momentum starts near 1
  (the average follows the network) and anneals to ``momentum`` over a few ``gamma`` iterations;
- mmengine ``mmengine/model/averaged_model.py::BaseAveragedModel.update_parameters``: update 0
  copies the source; later updates average every floating-point entry of the ``state_dict``
  (parameters and, with ``update_buffers``, BatchNorm running statistics); integer buffers
  (``num_batches_tracked``) keep their first copy; ``steps`` counts the updates;
- mmengine ``mmengine/hooks/ema_hook.py::EMAHook``: one update after every optimiser step
  (``after_train_iter``); validation runs on the averaged weights; a checkpoint's model entry holds
  the averaged weights and the training weights ride along for resuming
  (``before_save_checkpoint`` / ``after_load_checkpoint``).

``torch.optim.swa_utils.AveragedModel`` with ``get_ema_multi_avg_fn`` has a constant decay (no
annealing) and averages integer buffers too, hence this small equivalent of mmengine's class.
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn


class ExpMomentumEMA(nn.Module):
    """The averaged copy of ``model`` (``self.module``, eval mode, no gradients) and its update count."""

    def __init__(self, model: nn.Module, momentum: float = 0.0002, gamma: float = 2000.0,
                 update_buffers: bool = True):
        super().__init__()
        if not 0.0 < momentum < 1.0:
            raise ValueError(f'EMA momentum must be in (0, 1), got {momentum}')
        if gamma <= 0:
            raise ValueError(f'EMA gamma must be > 0, got {gamma}')
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.momentum, self.gamma, self.update_buffers = momentum, gamma, update_buffers
        self.register_buffer('steps', torch.zeros((), dtype=torch.long))

    def momentum_at(self, step: int) -> float:
        """m_n = (1 - momentum) * exp(-(1 + n) / gamma) + momentum (mmpose ExpMomentumEMA)."""
        return (1 - self.momentum) * math.exp(-float(1 + step) / self.gamma) + self.momentum

    def _entries(self, model: nn.Module) -> dict:
        return model.state_dict() if self.update_buffers else dict(model.named_parameters())

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One update from ``model`` (the network being trained; same architecture)."""
        step = int(self.steps)
        source, averaged = self._entries(model), self._entries(self.module)
        m = self.momentum_at(step)
        for name, avg in averaged.items():
            src = source[name].detach().to(avg.device)
            if step == 0:
                avg.copy_(src)                                   # BaseAveragedModel: steps == 0
            elif avg.dtype.is_floating_point:
                avg.mul_(1 - m).add_(src.to(avg.dtype), alpha=m)
        if not self.update_buffers:                              # buffers follow the source
            for avg, src in zip(self.module.buffers(), model.buffers()):
                avg.copy_(src.to(avg.device))
        self.steps += 1


def build_ema(model: nn.Module, momentum: float | None) -> ExpMomentumEMA | None:
    """``ExpMomentumEMA(model, momentum)``, or None when ``momentum`` is None or 0 (EMA off)."""
    return ExpMomentumEMA(model, momentum) if momentum else None


def checkpoint_entries(model: nn.Module, ema: ExpMomentumEMA | None) -> dict:
    """A checkpoint's weight entries: ``model`` = the weights evaluated (the average when EMA is
    on, as mmengine's EMAHook saves them), ``ema`` = what resuming needs besides (the training
    weights and the update count)."""
    if ema is None:
        return {'model': model.state_dict()}
    return {'model': ema.module.state_dict(),
            'ema': {'train_model': model.state_dict(), 'steps': int(ema.steps)}}


def load_checkpoint_entries(state: dict, model: nn.Module, ema: ExpMomentumEMA | None) -> None:
    """Inverse of ``checkpoint_entries``: training weights into ``model``, the average into ``ema``."""
    if 'ema' not in state:
        model.load_state_dict(state['model'])
        if ema is not None:                  # a checkpoint without an average: start one from it
            ema.module.load_state_dict(state['model'])
            ema.steps.zero_()
        return
    model.load_state_dict(state['ema']['train_model'])
    if ema is not None:
        ema.module.load_state_dict(state['model'])
        ema.steps.fill_(int(state['ema']['steps']))
