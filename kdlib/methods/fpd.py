"""FPD: offline heatmap distillation from a larger pretrained teacher (SDP paper's Table 3 baseline).

F. Zhang, X. Zhu, M. Ye, "Fast Human Pose Estimation", CVPR 2019. In the SDP paper's Table 3 the
teacher is Hourglass-8 and the student Hourglass-4, both trained on MPII; FPD's time includes
training the teacher first.

Loss (FPD's official code, ilovepose/fast-human-pose-estimation.pytorch, ``lib/core/function.py``
``fpd_train`` and ``lib/config/default.py`` ``KD.ALPHA = 0.5``):

    L = (1 - a) * MSE(student, GT) + a * MSE(student, teacher)

both terms HRNet's JointsMSELoss with target weights, the teacher's target being its final
heatmaps. The GT term is ``kdlib.methods.base.task_loss`` -- the supervised baseline's own loss --
so Hourglass stacks are supervised as the baseline supervises them (FPD's code also supervises and
distils every intermediate stack; the kit applies one rule to every method it compares).
"""
from __future__ import annotations

import torch
from torch import Tensor

from kdlib.losses import joints_mse
from kdlib.methods.base import Method, task_loss

KD_ALPHA = 0.5     # FPD code, lib/config/default.py: _C.KD.ALPHA = 0.5


def fpd_loss(l_gt: Tensor, student_heatmaps: Tensor, teacher_heatmaps: Tensor,
             target_weight: Tensor, kd_alpha: float = KD_ALPHA) -> tuple[Tensor, Tensor]:
    """Return the weighted terms ((1 - a) * L_gt, a * MSE(student, teacher)).

    l_gt: the task loss against the GT; student_heatmaps, teacher_heatmaps: (B, K, h, w);
    target_weight: (B, K).
    """
    teacher_heatmaps = teacher_heatmaps.detach().to(student_heatmaps.dtype)
    l_kd = joints_mse(student_heatmaps, teacher_heatmaps, target_weight)
    return (1.0 - kd_alpha) * l_gt, kd_alpha * l_kd


class FPD(Method):
    """Offline pose distillation: frozen teacher heatmaps as soft targets (kd_alpha = 0.5)."""

    def __init__(self, kd_alpha: float = KD_ALPHA, teacher: str = 'teacher'):
        super().__init__()
        if not 0.0 <= kd_alpha <= 1.0:
            raise ValueError(f'FPD kd_alpha must be in [0, 1], got {kd_alpha!r}')
        self.kd_alpha, self.teacher_name = float(kd_alpha), teacher

    def forward(self, batch: dict, student, teachers: dict) -> tuple[dict, dict]:
        teacher = _pick_teacher(teachers, self.teacher_name)
        images = batch['image']                                           # (B, 3, H, W)
        outputs = student(images)
        with torch.no_grad():
            soft = teacher(images)['heatmaps']                            # (B, K, h, w) final
        l_gt = sum(task_loss(outputs, batch).values())
        gt, kd = fpd_loss(l_gt, outputs['heatmaps'], soft, batch['target_weight'], self.kd_alpha)
        return {'heatmap_mse': gt, 'kd': kd}, outputs


def _pick_teacher(teachers: dict, name: str):
    if name in teachers:
        return teachers[name]
    if len(teachers) == 1:
        return next(iter(teachers.values()))
    raise KeyError(f"FPD needs a teacher named {name!r} (or exactly one teacher); got {sorted(teachers)}")


def build_method(params: dict, student, teachers: dict, train_set) -> FPD:
    """METHODS['fpd'] entry. params: kd_alpha (0.5), teacher (the key in ``teachers``)."""
    params = dict(params or {})
    unknown = set(params) - {'kd_alpha', 'teacher'}
    if unknown:
        raise ValueError(f"unknown FPD parameters {sorted(unknown)}; expected 'kd_alpha', 'teacher'")
    if not teachers:
        raise ValueError('FPD needs a pretrained teacher (Hourglass-8 in the SDP paper, Table 3); '
                         'ExperimentConfig.teachers is empty')
    return FPD(**params)
