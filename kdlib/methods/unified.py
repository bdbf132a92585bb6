"""Unified skeleton + multi-teacher distillation (Khan, Limbachiya, Stricker, Afzal, BMVC 2024,
arXiv:2405.20084, "Estimating Human Poses Across Datasets: A Unified Skeleton and Multi-Teacher
Distillation Approach").

One student learns the union skeleton K of COCO-17 and MPII-16 (21 points, Eq. 1-5; see
`kdlib.data.unified`) from a joint COCO+MPII training set in which every image labels only its own
dataset's points. Two losses make that possible:

* the conditional keypoint loss L_CK (Eq. 6) supervises, for an image of dataset D_i, only the
  keypoints K_i that D_i labels: the unified dataset zeroes `target_weight` outside K_i, so the
  task loss (and its gradient) is exactly zero on the points the image's dataset never labels;
* the distillation loss L_D (Eq. 7) compares, on *every* image regardless of its source, the
  student's distribution of each keypoint k in K_Tj with teacher T_j's, for every teacher j
  (an RTMPose-m trained on COCO alone and one trained on MPII alone).

Total (Eq. 8): L = alpha * L_CK + (1 - alpha) * sum_j beta_j * L_D(p, T_j), with alpha = 0.30,
beta_MPII = 0.25, beta_COCO = 0.45 (Section 5, "Integration of Distillation and Conditional Loss").

Choices the paper leaves open (each a parameter):
* L_CK is written as a squared error on positions; RTMPose students have SimCC heads, so the kit
  uses the SimCC task loss (`kdlib.losses.simcc_kl`, the KL of SimCC/RTMPose against 1D Gaussian
  labels) restricted to K_i -- the loss RTMPose, whose recipe the paper follows, trains with.
* "KL(p_k, t_jk)" is taken as the usual distillation direction KL(teacher || student) on the x and
  y SimCC distributions, with temperature `tau` (default 1: the paper names no temperature) and the
  tau^2 factor of Hinton et al. so gradients keep their scale for tau != 1.
* Reductions: Eq. 6-7 sum over keypoints; the kit divides both sums by the same constant
  (the 21 student keypoints), which keeps the relative weights of Eq. 8 exact, and averages over
  the batch.
* Teachers' input size may differ from the student's (MPII teachers: 256x256, student 256x192):
  `kdlib.data.unified.teacher_view` pads the student's crop to the teacher's width, and
  `crop_teacher_bins` cuts the teacher's x distribution back to the student's bins (an exact
  re-indexing, since the padding is a pure translation by whole bins).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdlib.data.unified import UNIFIED, teacher_view
from kdlib.losses import simcc_kl
from kdlib.methods.base import Method
from kdlib.skeletons import SKELETONS, index_map

ALPHA = 0.30                                   # Eq. (8), Section 5
BETAS = {'mpii': 0.25, 'coco': 0.45}           # Eq. (8), Section 5: beta_MPII, beta_COCO


def conditional_keypoint_loss(outputs: dict, batch: dict) -> Tensor:
    """Eq. (6): the SimCC task loss over the keypoints the sample's dataset labels.

    `batch['target_weight']` (B, 21) is already zero outside K_i (and for unlabelled points), so
    `simcc_kl` gives those keypoints neither loss nor gradient.
    """
    return simcc_kl(outputs['simcc_x'], outputs['simcc_y'], batch['simcc_x'], batch['simcc_y'],
                    batch['target_weight'])   # Eq. (6)


def simcc_kd(student_logits: Tensor, teacher_logits: Tensor, tau: float = 1.0) -> Tensor:
    """KL(softmax(t/tau) || softmax(s/tau)) * tau^2 per keypoint: (B, K, L) x2 -> (B, K)."""
    log_p = F.log_softmax(student_logits.float() / tau, dim=-1)     # (B, K, L)
    log_q = F.log_softmax(teacher_logits.float() / tau, dim=-1)     # (B, K, L)
    return (log_q.exp() * (log_q - log_p)).sum(-1) * tau ** 2       # (B, K)


def crop_teacher_bins(logits: Tensor, offset: int, length: int) -> Tensor:
    """Teacher bins -> student bins when the teacher saw the crop padded by `offset` bins."""
    return logits[..., offset:offset + length]                      # (B, K, length)


def distillation_loss(student_out: dict, teacher_out: dict, student_index: Tensor,
                      num_student_joints: int, tau: float = 1.0, x_offset: int = 0) -> Tensor:
    """Eq. (7): sum over the teacher's keypoints k of KL on x and y, averaged over the batch.

    student_index: (K_T,) position of each teacher keypoint in the student's 21 outputs.
    """
    length_x = student_out['simcc_x'].shape[-1]
    t_x = crop_teacher_bins(teacher_out['simcc_x'], x_offset, length_x)          # (B, K_T, Lx)
    t_y = teacher_out['simcc_y']                                                 # (B, K_T, Ly)
    s_x = student_out['simcc_x'][:, student_index]                               # (B, K_T, Lx)
    s_y = student_out['simcc_y'][:, student_index]                               # (B, K_T, Ly)
    if t_y.shape[-1] != s_y.shape[-1]:
        raise ValueError(f'teacher y bins {t_y.shape[-1]} != student y bins {s_y.shape[-1]}: '
                         'teachers must share the student input height')
    kl = simcc_kd(s_x, t_x, tau) + simcc_kd(s_y, t_y, tau)                      # (B, K_T)
    return kl.sum(dim=1).mean() / num_student_joints                             # Eq. (7)


class UnifiedMultiTeacher(Method):
    """Eq. (8): alpha * L_CK + (1 - alpha) * sum_j beta_j * L_D(p, T_j).

    teachers: name -> model, names are dataset names ('coco', 'mpii'); each teacher predicts its
    dataset's skeleton. `distill=False` trains with L_CK alone (Table 2's 'Distill: No' rows; the
    weight stays alpha so that only the distillation term differs between the two rows).
    """

    def __init__(self, teacher_skeletons: dict[str, str], input_size: tuple[int, int],
                 teacher_input_sizes: dict[str, tuple[int, int]], split_ratio: float = 2.0,
                 alpha: float = ALPHA, betas: dict[str, float] | None = None, tau: float = 1.0,
                 distill: bool = True):
        super().__init__()
        self.alpha, self.tau, self.distill = alpha, tau, distill
        self.betas = dict(BETAS if betas is None else betas)
        self.input_size, self.split_ratio = tuple(input_size), split_ratio
        self.teacher_input_sizes = {k: tuple(v) for k, v in teacher_input_sizes.items()}
        for name, skel in teacher_skeletons.items():
            m = index_map(UNIFIED, SKELETONS[skel])          # (K_T,) unified index of each teacher kpt
            if (m < 0).any():
                raise ValueError(f'teacher {name!r} ({skel}) has joints outside the unified skeleton')
            self.register_buffer(f'index_{name}', torch.as_tensor(m), persistent=False)

    def x_offset(self, name: str) -> int:
        """Bins of padding on each side of the student's crop inside teacher `name`'s input."""
        pad = (self.teacher_input_sizes[name][1] - self.input_size[1]) // 2
        return int(round(pad * self.split_ratio))

    def forward(self, batch, student, teachers):
        outputs = student(batch['image'])
        terms = {'ck': self.alpha * conditional_keypoint_loss(outputs, batch)}      # Eq. (8)
        if not self.distill:
            return terms, outputs
        k = outputs['simcc_x'].shape[1]
        for name, teacher in teachers.items():
            with torch.no_grad():
                t_out = teacher(teacher_view(batch['image'], self.input_size,
                                             self.teacher_input_sizes[name]))
            index = getattr(self, f'index_{name}')
            l_d = distillation_loss(outputs, t_out, index, k, self.tau, self.x_offset(name))
            terms[f'kd_{name}'] = (1 - self.alpha) * self.betas[name] * l_d          # Eq. (8)
        return terms, outputs


def build_method(params: dict, student: nn.Module, teachers: dict[str, nn.Module], train_set):
    """METHODS['unified']: params alpha, betas, tau, distill; teachers named by dataset."""
    allowed = {'alpha', 'betas', 'tau', 'distill'}
    unknown = set(params) - allowed
    if unknown:
        raise ValueError(f'unified: unknown method_params {sorted(unknown)}; expected {sorted(allowed)}')
    missing = set(teachers) - set(BETAS) if params.get('betas') is None else set()
    if missing:
        raise ValueError(f'unified: teachers must be named by dataset {sorted(BETAS)}; got {sorted(teachers)}')
    cfg = train_set.cfg
    teacher_sizes = getattr(train_set, 'teacher_input_sizes', {})
    return UnifiedMultiTeacher(
        teacher_skeletons={name: name for name in teachers},
        input_size=cfg.input_size,
        teacher_input_sizes={n: teacher_sizes.get(n, cfg.input_size) for n in teachers},
        split_ratio=cfg.simcc_split_ratio, **params)
