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

Both L_CK and L_D are sums over keypoints of a per-keypoint divergence (Eq. 6, 7), so the kit gives
them the *same* per-keypoint reduction; otherwise Eq. 8's alpha and beta_j would not weigh what the
paper says they weigh. Per keypoint k and axis (x, y), with L the axis' bins and beta the logit
scale of the head (below):

    L_CK:  mean_l KL(q_k || softmax(beta * s_k))      q_k = SimCC label of keypoint k    # Eq. (6)
    L_D:   mean_l KL(softmax(beta * t_jk) || softmax(beta * s_k))                        # Eq. (7)

both summed over x and y and over the keypoints of K_i (resp. K_Tj), averaged over the batch and
divided by the 21 student keypoints (a constant common to both terms).

Decisions the paper leaves open (each a parameter):
* L_CK is written as a squared error on positions; the paper's RTMPose students have SimCC heads
  and "followed the same data preprocessing pipeline as used by the original RTMPose models"
  (Section 4.2), so L_CK is RTMPose's task loss restricted to K_i: mmpose
  `mmpose/models/losses/classification_loss.py::KLDiscretLoss` with RTMPose's head settings
  `beta=10., label_softmax=True` (`projects/rtmpose/rtmpose/body_2d_keypoint/
  rtmpose-m_8xb256-420e_coco-256x192.py`, `head.loss`) = `kdlib.losses.simcc_kl(..., beta=10,
  label_softmax=True)` (params `simcc_beta`, `label_softmax`).
* The KL of Eq. 7 is the usual distillation direction KL(teacher || student) on the x and y SimCC
  distributions, computed by the kit's one SimCC distillation divergence
  `kdlib.losses.simcc_kd_per_joint`. Both distributions use the head's logit scale beta = 10, as
  DWPose's `KDLoss` does (mmpose `mmpose/models/losses/logit_dis_loss.py::KDLoss.forward` receives
  the student head's `loss_module.beta`); temperature `tau` = 1 (the paper names none), with the
  tau^2 factor of Hinton et al. for tau != 1.
* Reduction over the bins (`kd_bins`): 'mean', the reduction of the task loss above
  (KLDiscretLoss: `torch.mean(kl_loss(...), dim=1)`), so that one keypoint's L_D and L_CK are
  on the same scale. DWPose's KDLoss sums over the bins (`torch.sum(kl_loss(s_i, t_i), dim=1)`);
  `kd_bins='sum'` gives that, and makes L_D ~400x (the number of bins) heavier per keypoint than
  L_CK: Eq. 8's alpha = 0.3 mix would then train on the teachers alone.
* Over the batch both terms are averaged (SimCC's original KLDiscretLoss and DWPose's KDLoss;
  mmpose's KLDiscretLoss sums over the batch instead -- averaging both keeps Eq. 8's ratio
  independent of the batch size).
* Teachers' input size may differ from the student's (MPII teachers: 256x256, student 256x192):
  `kdlib.data.unified.teacher_view` pads the student's crop to the teacher's width, and
  `crop_teacher_bins` cuts the teacher's x distribution back to the student's bins (an exact
  re-indexing, since the padding is a pure translation by whole bins).
* Without teachers and with alpha = 1 the method is RTMPose's own task loss on one dataset (Eq. 6
  with N = 1): `kdlib.paper_tables.unified` trains Table 1's single-dataset rows and the RTMPose-m
  teachers that way, so every network of the paper trains with the same KLDiscretLoss.

A public mmpose project that appears to be the authors' student project (github.com/thewall27/
Unified-2D-HPE-using-Knowledge-Distillation: `mmpose/mmpose/models/distillers/
multiteacher_distiller.py::MultiTeacherDistiller.loss`, configs `multiteacher/coco/
distill_config_{small,tiny}.py`) differs from the paper's Eq. 8 in ways the kit does not follow:
`weight=[0.3, 0.25, 0.45]` labelled [student, coco teacher, mpii teacher] (the paper: beta_MPII =
0.25, beta_COCO = 0.45), no (1 - alpha) factor, the MPII term decayed by (1 - epoch / max_epochs),
the weighted total returned beside its parts under 'loss*' keys (mmengine's `parse_losses` sums all
of them), and the teachers' terms reduced by DWPose's KDLoss (sum over bins) against KLDiscretLoss
(sum over the batch). The paper's text is the specification here; the code's choices are noted,
not reproduced.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from kdlib.data.unified import UNIFIED, teacher_view
from kdlib.losses import simcc_kd_per_joint, simcc_kl
from kdlib.methods.base import Method, method_params
from kdlib.skeletons import SKELETONS, index_map

ALPHA = 0.30                                   # Eq. (8), Section 5
BETAS = {'mpii': 0.25, 'coco': 0.45}           # Eq. (8), Section 5: beta_MPII, beta_COCO
SIMCC_BETA = 10.0                              # RTMPose head.loss KLDiscretLoss(beta=10.)
LABEL_SOFTMAX = True                           # RTMPose head.loss KLDiscretLoss(label_softmax=True)


def conditional_keypoint_loss(outputs: dict, batch: dict, simcc_beta: float = SIMCC_BETA,
                              label_softmax: bool = LABEL_SOFTMAX) -> Tensor:
    """Eq. (6): RTMPose's SimCC task loss over the keypoints the sample's dataset labels.

    ``(1/K) sum_k mean_b w_bk [mean_l KL_x + mean_l KL_y]`` (`kdlib.losses.simcc_kl`, mmpose
    KLDiscretLoss with beta=10, label softmax). `batch['target_weight']` (B, 21) is already zero
    outside K_i (and for unlabelled points), so those keypoints get neither loss nor gradient.
    """
    return simcc_kl(outputs['simcc_x'], outputs['simcc_y'], batch['simcc_x'], batch['simcc_y'],
                    batch['target_weight'], beta=simcc_beta, label_softmax=label_softmax)  # Eq. (6)


def crop_teacher_bins(logits: Tensor, offset: int, length: int) -> Tensor:
    """Teacher bins -> student bins when the teacher saw the crop padded by `offset` bins."""
    return logits[..., offset:offset + length]                      # (B, K, length)


def distillation_loss(student_out: dict, teacher_out: dict, student_index: Tensor,
                      num_student_joints: int, simcc_beta: float = SIMCC_BETA, tau: float = 1.0,
                      x_offset: int = 0, bins: str = 'mean') -> Tensor:
    """Eq. (7): sum over the teacher's keypoints k of KL(t_jk || p_k) on x and y.

    ``(1/K) mean_b sum_{k in K_Tj} [KL_x + KL_y]`` with the per-keypoint KL of
    `kdlib.losses.simcc_kd_per_joint` at logit scale `simcc_beta`, reduced over the bins by `bins`
    ('mean': as L_CK; 'sum': DWPose KDLoss); K = `num_student_joints` (21), L_CK's divisor.
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
    kl = (simcc_kd_per_joint(s_x, t_x, simcc_beta, tau, bins)
          + simcc_kd_per_joint(s_y, t_y, simcc_beta, tau, bins))                 # (B, K_T)
    return kl.sum(dim=1).mean() / num_student_joints                             # Eq. (7)


@dataclass(frozen=True)
class Params:
    """``method_params`` of 'unified' (Eq. 7-8; ``UnifiedMultiTeacher``'s docstring)."""
    alpha: float = ALPHA              # Eq. (8): weight of L_CK (the teachers share 1 - alpha)
    betas: dict | None = None         # per-teacher weights; None: BETAS (teachers named by dataset)
    tau: float = 1.0                  # KL temperature (1: the printed Eq. 7)
    distill: bool = True              # False: L_CK alone (Table 2's 'Distill: No' rows)
    simcc_beta: float = SIMCC_BETA    # RTMPose's KLDiscretLoss beta (mmpose config)
    label_softmax: bool = LABEL_SOFTMAX   # RTMPose's KLDiscretLoss label_softmax
    kd_bins: str = 'mean'             # reduction of the KL over bins (mmpose KLDiscretLoss: mean)

    def __post_init__(self):
        if self.kd_bins not in ('mean', 'sum'):
            raise ValueError(f"unified: kd_bins must be 'mean' or 'sum', got {self.kd_bins!r}")


class UnifiedMultiTeacher(Method):
    """Eq. (8): alpha * L_CK + (1 - alpha) * sum_j beta_j * L_D(p, T_j).

    teachers: name -> model, names are dataset names ('coco', 'mpii'); each teacher predicts its
    dataset's skeleton. `distill=False` trains with L_CK alone (Table 2's 'Distill: No' rows; the
    weight stays alpha so that only the distillation term differs between the two rows).
    `simcc_beta` is the heads' logit scale (RTMPose's beta = 10), not Eq. 8's beta_j (`betas`).
    """

    def __init__(self, teacher_skeletons: dict[str, str], input_size: tuple[int, int],
                 teacher_input_sizes: dict[str, tuple[int, int]], split_ratio: float = 2.0,
                 alpha: float = Params.alpha, betas: dict[str, float] | None = Params.betas,
                 tau: float = Params.tau, distill: bool = Params.distill,
                 simcc_beta: float = Params.simcc_beta, label_softmax: bool = Params.label_softmax,
                 kd_bins: str = Params.kd_bins):
        super().__init__()
        Params(kd_bins=kd_bins)                                              # value checks
        self.alpha, self.tau, self.distill = alpha, tau, distill
        self.simcc_beta, self.label_softmax, self.kd_bins = simcc_beta, label_softmax, kd_bins
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
        l_ck = conditional_keypoint_loss(outputs, batch, self.simcc_beta, self.label_softmax)
        terms = {'ck': self.alpha * l_ck}                                            # Eq. (8)
        if not self.distill:
            return terms, outputs
        k = outputs['simcc_x'].shape[1]
        for name, teacher in teachers.items():
            with torch.no_grad():
                t_out = teacher(teacher_view(batch['image'], self.input_size,
                                             self.teacher_input_sizes[name]))
            index = getattr(self, f'index_{name}')
            l_d = distillation_loss(outputs, t_out, index, k, self.simcc_beta, self.tau,
                                    self.x_offset(name), self.kd_bins)
            terms[f'kd_{name}'] = (1 - self.alpha) * self.betas[name] * l_d          # Eq. (8)
        return terms, outputs


def build_method(params: dict, student: nn.Module, teachers: dict[str, nn.Module], train_set):
    """METHODS['unified']: ``params`` are ``Params``' fields; teachers named by dataset."""
    params = vars(method_params(Params, params, 'unified'))
    missing = set(teachers) - set(BETAS) if params['betas'] is None else set()
    if missing:
        raise ValueError(f'unified: teachers must be named by dataset {sorted(BETAS)}; got {sorted(teachers)}')
    cfg = train_set.cfg
    teacher_sizes = getattr(train_set, 'teacher_input_sizes', {})
    return UnifiedMultiTeacher(
        teacher_skeletons={name: name for name in teachers},
        input_size=cfg.input_size,
        teacher_input_sizes={n: teacher_sizes.get(n, cfg.input_size) for n in teachers},
        split_ratio=cfg.simcc_split_ratio, **params)
