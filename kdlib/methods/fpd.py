"""FPD: offline heatmap distillation from a larger pretrained teacher (SDP paper's Table 3 baseline).

F. Zhang, X. Zhu, M. Ye, "Fast Human Pose Estimation", CVPR 2019. In the SDP paper's Table 3 the
teacher is Hourglass-8 and the student Hourglass-4, both trained on MPII; FPD's time includes
training the teacher first.

Loss, as FPD's official code computes it (ilovepose/fast-human-pose-estimation.pytorch,
``lib/core/function.py::fpd_train``; ``lib/config/default.py``: ``KD.ALPHA = 0.5``): the teacher's
target is its *final* heatmaps (``toutput[-1]``), and *every* output of the student -- each
stack of a Stacked Hourglass, the one map of a single-output network -- is supervised by both
the GT and that target, each stack's loss summed:

    L = (1 - a) * sum_stacks MSE(stack, GT) + a * sum_stacks MSE(stack, teacher_final)

MSE is HRNet's JointsMSELoss with target weights for both terms (``pose_criterion`` and
``kd_pose_criterion`` in ``tools/fpd_train.py``): ``0.5 * mean`` over (B, K, h, w) of
``(w * (pred - target))^2``. The GT sum over stacks is ``kdlib.methods.base.task_loss`` -- the
supervised baseline's own loss (it adds ``aux_heatmaps`` as Hourglass intermediate supervision)
-- so the two terms have the same number of summands and the weighted ratio is
``a * L_kd : (1 - a) * L_gt`` = 1 : 1 per stack at a = 0.5.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from kdlib.losses import joints_mse
from kdlib.methods.base import Method, method_params, task_loss

KD_ALPHA = 0.5     # FPD code, lib/config/default.py: _C.KD.ALPHA = 0.5


def fpd_loss(l_gt: Tensor, student_stacks: list[Tensor] | Tensor, teacher_heatmaps: Tensor,
             target_weight: Tensor, kd_alpha: float = KD_ALPHA) -> tuple[Tensor, Tensor]:
    """Return the weighted terms ((1 - a) * L_gt, a * sum_stacks MSE(stack, teacher)).

    l_gt: the task loss against the GT (already summed over the stacks); student_stacks: the
    student's heatmaps, one (B, K, h, w) tensor per stack (or a single tensor); teacher_heatmaps:
    the teacher's final (B, K, h, w); target_weight: (B, K).
    """
    if isinstance(student_stacks, Tensor):
        student_stacks = [student_stacks]
    l_kd = sum(joints_mse(stack, teacher_heatmaps.detach().to(stack.dtype), target_weight)
               for stack in student_stacks)
    return (1.0 - kd_alpha) * l_gt, kd_alpha * l_kd


@dataclass(frozen=True)
class Params:
    """``method_params`` of 'fpd'."""
    kd_alpha: float = KD_ALPHA   # FPD code: KD.ALPHA (the pose-distillation loss weight)
    teacher: str = 'teacher'     # the key of ExperimentConfig.teachers to distil from

    def __post_init__(self):
        if not 0.0 <= self.kd_alpha <= 1.0:
            raise ValueError(f'FPD kd_alpha must be in [0, 1], got {self.kd_alpha!r}')


class FPD(Method):
    """Offline pose distillation: frozen teacher's final heatmaps as the soft target of every
    student stack (kd_alpha = 0.5)."""

    def __init__(self, kd_alpha: float = Params.kd_alpha, teacher: str = Params.teacher):
        super().__init__()
        params = Params(kd_alpha, teacher)
        self.kd_alpha, self.teacher_name = float(params.kd_alpha), params.teacher

    def forward(self, batch: dict, student, teachers: dict) -> tuple[dict, dict]:
        teacher = _pick_teacher(teachers, self.teacher_name)
        images = batch['image']                                           # (B, 3, H, W)
        outputs = student(images)
        with torch.no_grad():
            soft = teacher(images)['heatmaps']                            # (B, K, h, w) final stack
        l_gt = sum(task_loss(outputs, batch).values())                    # summed over the stacks
        stacks = [*outputs.get('aux_heatmaps', ()), outputs['heatmaps']]  # shallow -> deep
        gt, kd = fpd_loss(l_gt, stacks, soft, batch['target_weight'], self.kd_alpha)
        return {'heatmap_mse': gt, 'kd': kd}, outputs


def _pick_teacher(teachers: dict, name: str):
    if name in teachers:
        return teachers[name]
    if len(teachers) == 1:
        return next(iter(teachers.values()))
    raise KeyError(f"FPD needs a teacher named {name!r} (or exactly one teacher); got {sorted(teachers)}")


def build_method(params: dict, student, teachers: dict, train_set) -> FPD:
    """METHODS['fpd'] entry: ``params`` are ``Params``' fields."""
    params = method_params(Params, params, 'FPD')
    if not teachers:
        raise ValueError('FPD needs a pretrained teacher (Hourglass-8 in the SDP paper, Table 3); '
                         'ExperimentConfig.teachers is empty')
    return FPD(**vars(params))
