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


def simcc_kd_per_joint(student_logits: Tensor, teacher_logits: Tensor, beta: float = 1.0,
                       temperature: float = 1.0, bins: str = "sum") -> Tensor:
    """KL(teacher || student) of one SimCC axis per keypoint: (B, K, L) x2 -> (B, K).

    The one SimCC distillation divergence of the kit (EKR's L_vkd, Unified-MT's L_D, the ``kd``
    distiller). ``p = softmax(beta * logits / temperature)`` for both networks; the result is
    multiplied by ``temperature**2`` (Hinton et al. 2015: the gradient keeps its scale for T != 1),
    while ``beta`` is mmpose's logit scale (RTMPose/DWPose ``beta = 10``) and rescales nothing.

    ``bins`` is the reduction over the L bins, part of the equation:
    - ``'sum'``: the KL divergence itself, as DWPose's ``KDLoss`` computes it
      (mmpose ``models/losses/logit_dis_loss.py``: ``torch.sum(self.kl_loss(s_i, t_i), dim=1)``);
    - ``'mean'``: divided by L, the convention of SimCC's and RTMPose's task loss
      (``KLDiscretLoss``: ``torch.mean(kl_loss(...), dim=1)``), for a KD term that must sit on the
      task loss's scale.
    """
    if bins not in ("sum", "mean"):
        raise ValueError(f"simcc_kd: bins must be 'sum' or 'mean', got {bins!r}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"simcc_kd: student {tuple(student_logits.shape)} and teacher "
                         f"{tuple(teacher_logits.shape)} logits must have the same shape")
    scale = beta / temperature
    log_p_s = F.log_softmax(student_logits.float() * scale, dim=-1)          # (B, K, L)
    log_p_t = F.log_softmax(teacher_logits.detach().float() * scale, dim=-1)  # (B, K, L)
    kl = F.kl_div(log_p_s, log_p_t, reduction="none", log_target=True)       # (B, K, L)
    kl = kl.sum(-1) if bins == "sum" else kl.mean(-1)                         # (B, K)
    return kl * temperature ** 2


def simcc_kd(student_x: Tensor, student_y: Tensor, teacher_x: Tensor, teacher_y: Tensor,
             beta: float = 1.0, temperature: float = 1.0, bins: str = "sum") -> Tensor:
    """SimCC logit distillation over both axes, DWPose ``KDLoss`` reduction by default.

    ``loss = (1/K) * mean_n sum_k [KL_x(n, k) + KL_y(n, k)]`` with the per-keypoint KL of
    ``simcc_kd_per_joint``: summed over the bins (``bins='sum'``), summed over the keypoints, mean
    over the N persons, divided by K -- mmpose ``models/losses/logit_dis_loss.py::KDLoss.forward``
    (``loss / num_joints``) and ``KDLoss.loss`` (``loss_all.reshape(N, K).sum(dim=1).mean()``).
    All logits are (B, K, bins) per axis.
    """
    kl = (simcc_kd_per_joint(student_x, teacher_x, beta, temperature, bins)
          + simcc_kd_per_joint(student_y, teacher_y, beta, temperature, bins))  # (B, K)
    return kl.sum(dim=1).mean() / student_x.shape[1]
