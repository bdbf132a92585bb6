"""Task losses shared by every method: HRNet's joints MSE and SimCC's discrete KL.

Both follow the original implementations' reductions exactly, so that loss weights quoted by the
papers (which were tuned against these reductions) mean the same thing here.

- ``joints_mse``: HRNet ``lib/core/loss.py::JointsMSELoss`` (Sun et al., CVPR 2019) with
  ``use_target_weight=True``. Per joint it applies ``0.5 * nn.MSELoss(reduction='mean')`` to the
  target-weighted prediction and target, sums over joints and divides by the number of joints.
  That is the same as ``0.5 * mean`` over (B, K, H, W).
- ``simcc_kl``: SimCC ``lib/core/loss.py::KLDiscretLoss`` (Li et al., ECCV 2022). Per joint and
  axis: log-softmax over the bins, ``nn.KLDivLoss(reduction='none')`` against the Gaussian label,
  mean over the bins, times the visibility weight, mean over the batch; x and y are added and the
  sum over joints is divided by the number of joints. ``beta`` (temperature on the logits) and
  ``label_softmax`` are the RTMPose/mmpose generalisation (defaults = SimCC's original).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def _check_pair(pred: Tensor, target: Tensor, target_weight: Tensor, name: str) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"{name}: prediction {tuple(pred.shape)} and target {tuple(target.shape)} "
                         "must have the same shape")
    if target_weight.shape != pred.shape[:2]:
        raise ValueError(f"{name}: target_weight must be (B, K) = {tuple(pred.shape[:2])}, "
                         f"got {tuple(target_weight.shape)}")


def joints_mse(pred: Tensor, target: Tensor, target_weight: Tensor) -> Tensor:
    """HRNet JointsMSELoss: ``0.5 * mean_{b,k,p} (w_bk * (pred - target))^2``.

    pred, target: (B, K, H, W) heatmaps; target_weight: (B, K) (1 labelled joint, 0 otherwise).
    Like HRNet, the weight multiplies both tensors before the squared error (so it enters squared).
    """
    _check_pair(pred, target, target_weight, "joints_mse")
    weight = target_weight[:, :, None, None].to(pred.dtype)  # (B, K, 1, 1)
    diff = (pred - target) * weight  # (B, K, H, W)
    return 0.5 * diff.float().pow(2).mean()


def _kl_per_joint(logits: Tensor, labels: Tensor, beta: float, label_softmax: bool) -> Tensor:
    """KL(labels || softmax(beta * logits)) averaged over the bins: (B, K, L) -> (B, K)."""
    log_prob = F.log_softmax(logits.float() * beta, dim=-1)  # (B, K, L)
    labels = labels.float()
    if label_softmax:
        labels = F.softmax(labels * beta, dim=-1)
    return F.kl_div(log_prob, labels, reduction="none").mean(dim=-1)  # (B, K)


def simcc_kl(pred_x: Tensor, pred_y: Tensor, target_x: Tensor, target_y: Tensor,
             target_weight: Tensor, beta: float = 1.0, label_softmax: bool = False) -> Tensor:
    """SimCC KLDiscretLoss, visibility-weighted.

    ``loss = (1/K) sum_k mean_b w_bk * (mean_l KL_x + mean_l KL_y)`` with
    ``KL = t * (log t - log_softmax(beta * logits))`` element-wise (0 where t = 0).
    pred_x/target_x: (B, K, W*k); pred_y/target_y: (B, K, H*k); target_weight: (B, K).
    """
    _check_pair(pred_x, target_x, target_weight, "simcc_kl (x)")
    _check_pair(pred_y, target_y, target_weight, "simcc_kl (y)")
    kl_x = _kl_per_joint(pred_x, target_x, beta, label_softmax)  # (B, K)
    kl_y = _kl_per_joint(pred_y, target_y, beta, label_softmax)  # (B, K)
    weighted = (kl_x + kl_y) * target_weight.float()  # (B, K)
    return weighted.mean(dim=0).sum() / pred_x.shape[1]
