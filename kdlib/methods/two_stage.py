"""Two-stage distillation with a skeleton-aware loss and an image-guided progressive GCN.

Ji, Zhang, Qiao, Feng, Qian, "A Coarse-to-Fine Human Pose Estimation Method based on Two-stage
Distillation and Progressive Graph Neural Network", Sec. III, Eq. (1)-(7).

Both teacher (HRNet-W48) and student (HRNet-W32) are SimCC networks: x and y are classified over
sub-pixel bins (split ratio k = 2) against Gaussian labels, with SimCC's KL loss L_KL.

**Stage 1** (`TwoStageDistill`) trains the student from scratch against a frozen teacher:

    L_fea = 1/(CHW) sum (F_tea - conv1x1(F_stu))^2                               Eq. (1)
    L_pos = 1/N sum_n |P_tea - P_stu| + L_cst                                    Eq. (2)
    L_cst = sum_{(i,j) in E} w_ij | e_ij^tea - e_ij^stu |   (bone lengths)         Eq. (3)
    gamma(t) = 1 - (t - 1)/T                                                      Eq. (4)
    L_s1 = L_KL + gamma(t) alpha L_fea + gamma(t) beta L_pos                      Eq. (5)

with alpha = 5e-5, beta = 0.1, T = 210 epochs (Sec. IV-B). F is the backbone output the SimCC
head reads (`feature`); E the limbs of the dataset's skeleton. The kit's default L_fea is summed
over C*H*W, not averaged (DWPose's reduction, the one consistent with alpha and the paper's
results): see "Reductions" below.

**Stage 2** (`ProgressiveGCNDistill`) freezes the stage-1 student inside an
`kdlib.models.igp_gcn.IGPRefiner` and trains only the IGP-GCN, block by block, to the teacher's
final pose on the joints that have a ground-truth label (mask M):

    L_i^GCN = 1/N sum_n |(P_tea - P_i^stu) * M|                                   Eq. (6)
    L_s2 = delta L_1^GCN + lambda L_2^GCN + xi L_3^GCN                            Eq. (7)

with delta, lambda, xi = 0.3, 0.5, 1, 30 epochs at lr 1e-3 (Sec. IV-B).

Reductions (what sets each term's weight as much as alpha and beta do):

* **L_KL** (`kdlib.losses.simcc_kl`): SimCC's `KLDiscretLoss` (leeyegy/SimCC lib/core/loss.py):
  the KL of each bin *averaged over the bins*, times the joint's visibility weight, averaged
  over the batch, x + y, summed over joints and divided by K. Sec. III-A-3 names it as "the
  Kullback-Leibler divergence loss that adopted in the SimCC".
* **L_fea, Eq. (1)** (`feature_reduction`). The printed 1/(CHW) and alpha = 5e-5 disagree with
  the paper's own results: with the mean over C*H*W the weighted term is under 1% of L_KL (6e-3
  on the paper-sized CrowdPose tensors of `tests/test_two_stage_gcn.py`), far too small to give
  Table IV's scheme-2 gain (+0.6 AP). Stage 1 follows DWPose (ref. [15]: same Eq. (1) form, same
  gamma(t), a 1x1 align conv, alpha_fea = 7e-5 of the same order), whose `FeaLoss`
  (mmpose models/losses/fea_dis_loss.py, `get_dis_loss`) is `nn.MSELoss(reduction='sum')(S, T) / N
  * alpha_fea`: *summed* over C*H*W, averaged over the N people, ~CHW = 10^5 times stronger.
  Default `'sum'` (that reading, consistent with the paper's results); `'mean'` is Eq. (1) as
  printed.
* **L1 term of Eq. (2)** (`pose_reduction`). Printed: 1/N sum_n |P_tea - P_stu|, the L1 norm of
  the pose difference, i.e. |dx| + |dy| summed over the K joints per person. The term replaces
  DWPose's logit distillation (Sec. I), whose `KDLoss` (mmpose models/losses/logit_dis_loss.py)
  adds the x and y terms, sums over the K joints per person, averages over N and divides by K.
  Default `'joint_mean'`: that convention, |dx| + |dy| averaged over joints and people; `'sum'`:
  the printed per-person sum over joints (K times larger). Both sum the two axes, where paper and
  reference agree.
* **Units of P in Eq. (2)-(3)** (`pose_units`): not given by the paper. Default `'normalised'`:
  x / W and y / H of the input crop, mmpose's convention for coordinate regression
  (`RegressionLabel` codec; DistilPose, ref. [13]). In `'pixels'`, beta = 0.1 makes the pose terms
  10^2-10^3 times L_KL and the student learns to match the soft-argmax by tilting its bin
  distributions while their argmax (SimCC's test-time decoding) goes astray: measured on the
  `quick` profile (CrowdPose, 1 seed), the stage-1 student of scheme 3 ends at 0.03 AP and a
  pose-only student at 0.0, against 2.4 for the baseline -- not the paper's scheme-3/4 gains; with
  `'normalised'` scheme 4 trains normally (1.7 AP) and the pose terms sit on L_KL's order.
* **L_cst, Eq. (3)**: sum_E w_ij |e_tea - e_stu| per person, averaged over N. With
  `'joint_mean'` the w_ij sum to 1 (a weighted mean over the limbs, on the same per-joint
  scale as the L1 term); with `'sum'` they sum to |E| (uniform weights = 1, the printed sum).
* Neither pose term is masked (the paper masks only Eq. 6; DWPose's `KDLoss` takes
  `target_weight` and ignores it). The teacher's outputs carry no gradient.
* **No logit KL distillation.** The paper distils the output through Eq. (2)-(3) instead of
  DWPose's SimCC logit KL; a kit variant that adds one must call `kdlib.losses.simcc_kd`.
* **gamma(t)** multiplies both distillation terms, as in DWPose's distiller
  (mmpose models/distillers/dwpose_distiller.py: `1 - epoch / max_epochs` with a 0-based epoch =
  Eq. (4) with a 1-based t).
* **Eq. (6)**: |dx| + |dy| in input pixels on the labelled joints (mask M), averaged over the
  labelled joints of the batch -- the per-joint convention of Eq. (2). The three blocks share
  reduction and unit, so they scale L_s2 as a whole (which Adam ignores) and leave the
  delta : lambda : xi balance of Eq. (7) as printed.

Details the paper leaves out, and what the kit does (each one a parameter):

* **SimCC labels, teacher and student alike.** Sec. IV-B: "the student model also adopts the
  label smoothing". In SimCC's vocabulary (and mmpose's `KLDiscretLoss`, "for SimCC with Gaussian
  Label Smoothing") that is the Gaussian label the KL loss is trained against (SA-SimDR, sigma 4
  bins), which the SimCC-W48 teacher the paper starts from was trained with too (leeyegy/SimCC
  experiments/coco/hrnet/sa_simdr/w48_256x192_adam_lr1e-3_split2_sigma4.yaml). Uniform
  smoothing on top (`PipelineConfig.label_smoothing`, SimCC's `NMTCritierion` for one-hot
  labels) shifts the soft-argmax of a fitted student towards the crop centre by that fraction,
  so with a teacher trained without it Eq. (2)-(3) pull against L_KL (bones ~10% short at 0.1).
  `kdlib.paper_tables.two_stage_gcn.experiments(label_smoothing=...)` therefore sets one value
  for teacher and student (default 0: Gaussian labels only).
* **Differentiable SimCC decoding for Eq. (2)-(3)** (`softargmax`): the expectation of each
  axis' bin distribution softmax(beta_s * logits), divided by k (integral regression, Sun et al.
  ECCV 2018). The argmax that SimCC uses at test time has no gradient; the expectation is the
  smooth estimate of the same location, and it is exactly the quantity whose distribution the KL
  loss trains. Teacher and student are decoded the same way, so Eq. (2) compares like with like.
  `softargmax_beta` is the logit scale (1 = the softmax of the raw logits).
* **Edge weights w_ij ("the same as in [18]").** Ref. [18] (Ji et al., arXiv 2212.02163) is not
  reproducible from this paper's text, so the kit offers `edge_weights='inverse_length'`
  (default): w_ij proportional to 1 / the mean ground-truth length of bone (i, j) on the training
  set, normalised by the person box size, so that a 2-pixel error on a short face bone counts as
  much, relatively, as one on a thigh; and `'uniform'`.
* **Table IV columns.** Eq. (2) has both the L1 and the structure term; the kit's "skeleton-aware"
  schemes (4 and 6) therefore use Eq. (2) as printed (`pose_l1=True, pose_structure=True`);
  scheme 3 is `pose_structure=False`. Table IV leaves the L1 column of scheme 4 unticked:
  `pose_l1=False` gives that literal reading.
* **gamma(t)** is evaluated with t = the 1-based epoch; `weight_decay=False` holds gamma at 1.
* **Stage-2 target** `target='teacher'` (Eq. 6) or `'gt'` (Table IV scheme 1: the GCN without
  distillation, supervised by the labels). The teacher's pose is decoded as at test time
  (argmax / k, no flip).
* **Loss terms** returned by stage 1: `simcc_kl` (L_KL), `feature` (gamma alpha L_fea),
  `pose_l1` and `pose_skeleton` (gamma beta times the two parts of L_pos), so that
  `kdlib.balance` shows each one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from kdlib.methods.base import Method, defaults, method_params, task_loss
from kdlib.models.igp_gcn import simcc_argmax


@dataclass(frozen=True)
class Stage1Params:
    """``method_params`` of 'two_stage' (stage 1, Eq. 1-5)."""
    alpha: float = 5e-5                  # Sec. IV-B, weight of L_fea in Eq. (5)
    beta: float = 0.1                    # Sec. IV-B, weight of L_pos in Eq. (5)
    feature_kd: bool = True              # Table IV "Features distillation"
    pose_l1: bool = True                 # Table IV "L1 distillation" / first term of Eq. (2)
    pose_structure: bool = True          # Table IV "Skeleton-aware distillation" / Eq. (3)
    weight_decay: bool = True            # Eq. (4): gamma(t); False holds gamma = 1
    edge_weights: str = 'inverse_length'   # not in the paper ("as in [18]"): see module docstring
    softargmax_beta: float = 1.0         # not in the paper: logit scale of the differentiable decoding
    feature_reduction: str = 'sum'       # Eq. (1): 'sum' over C*H*W / N (DWPose FeaLoss) | 'mean' (as printed)
    pose_reduction: str = 'joint_mean'   # Eq. (2)-(3): 'joint_mean' (DWPose KDLoss: / K) | 'sum' (as printed)
    pose_units: str = 'normalised'       # Eq. (2)-(3): x / W, y / H (mmpose RegressionLabel) | 'pixels'


@dataclass(frozen=True)
class Stage2Params:
    """``method_params`` of 'two_stage_gcn' (stage 2, Eq. 6-7)."""
    block_weights: tuple = (0.3, 0.5, 1.0)   # Sec. IV-B: delta, lambda, xi of Eq. (7)
    target: str = 'teacher'              # Eq. (6); 'gt' = Table IV scheme 1


STAGE1_DEFAULTS = defaults(Stage1Params)
STAGE2_DEFAULTS = defaults(Stage2Params)
POSE_UNITS = ('pixels', 'normalised')


# ---------------------------------------------------------------- stage-1 pieces (tensors only)

def gamma_schedule(epoch: int, num_epochs: int) -> float:
    """Eq. (4): gamma(t) = 1 - (t - 1)/T for the 1-based epoch t in 1..T."""
    if not 1 <= epoch <= num_epochs:
        raise ValueError(f'gamma(t) needs 1 <= t <= T, got t={epoch}, T={num_epochs}')
    return 1.0 - (epoch - 1) / num_epochs                                         # Eq. (4)


FEATURE_REDUCTIONS = ('sum', 'mean')
POSE_REDUCTIONS = ('joint_mean', 'sum')


def feature_distill_loss(student_aligned: Tensor, teacher_feature: Tensor,
                         reduction: str = 'sum') -> Tensor:
    """Eq. (1) on (B, C, H, W) maps: the squared error per person, averaged over the batch.

    ``'sum'``: summed over C*H*W, as DWPose's ``FeaLoss`` (mmpose models/losses/fea_dis_loss.py:
    ``nn.MSELoss(reduction='sum')(S, T) / N``), the reading consistent with alpha = 5e-5 and the
    paper's results; ``'mean'``: divided by C*H*W as Eq. (1) is printed (module docstring).
    """
    if student_aligned.shape != teacher_feature.shape:
        raise ValueError(f'feature distillation needs equal shapes after the 1x1 conv, got '
                         f'{tuple(student_aligned.shape)} vs teacher {tuple(teacher_feature.shape)}')
    if reduction not in FEATURE_REDUCTIONS:
        raise ValueError(f'feature_reduction must be one of {FEATURE_REDUCTIONS}, got {reduction!r}')
    sq = (student_aligned.float() - teacher_feature.float()).pow(2)               # (B, C, H, W)
    per_person = sq.flatten(1).sum(1) if reduction == 'sum' else sq.flatten(1).mean(1)  # Eq. (1)
    return per_person.mean()                                                      # (), mean over N


def simcc_softargmax(simcc_x: Tensor, simcc_y: Tensor, split_ratio: float = 2.0,
                     beta: float = 1.0) -> Tensor:
    """Differentiable SimCC location: E[bin] / k per axis. (B, K, W*k), (B, K, H*k) -> (B, K, 2)."""
    def expect(logits: Tensor) -> Tensor:
        bins = torch.arange(logits.shape[-1], device=logits.device, dtype=torch.float32)
        return (torch.softmax(beta * logits.float(), dim=-1) * bins).sum(-1) / split_ratio
    return torch.stack([expect(simcc_x), expect(simcc_y)], dim=-1)


def bone_lengths(coords: Tensor, limbs: Tensor) -> Tensor:
    """Length of each limb (i, j): (B, K, 2), (E, 2) long -> (B, E)."""
    return (coords[:, limbs[:, 0]] - coords[:, limbs[:, 1]]).norm(dim=-1)


def structure_loss(student: Tensor, teacher: Tensor, limbs: Tensor, edge_weights: Tensor) -> Tensor:
    """Eq. (3): sum_E w_ij |e_ij^tea - e_ij^stu| per person, averaged over the batch.

    Poses (B, K, 2); ``edge_weights`` (E,) as given (they sum to 1 or to |E| according to the
    pose reduction: see ``pose_distill_terms``).
    """
    diff = (bone_lengths(teacher, limbs) - bone_lengths(student, limbs)).abs()    # (B, E)
    return (diff * edge_weights).sum(dim=1).mean()                                # Eq. (3)


def pose_l1_loss(student: Tensor, teacher: Tensor, reduction: str = 'joint_mean') -> Tensor:
    """First term of Eq. (2): |dx| + |dy| per joint, averaged over the batch. Poses (B, K, 2).

    ``'joint_mean'``: averaged over the K joints (DWPose ``KDLoss``: x + y, per-person sum over
    joints / K; mmpose models/losses/logit_dis_loss.py); ``'sum'``: summed over the joints, the
    L1 norm of the pose difference as Eq. (2) is printed.
    """
    if reduction not in POSE_REDUCTIONS:
        raise ValueError(f'pose_reduction must be one of {POSE_REDUCTIONS}, got {reduction!r}')
    per_joint = (teacher - student).abs().sum(-1)                                 # (B, K), |dx|+|dy|
    per_person = per_joint.mean(1) if reduction == 'joint_mean' else per_joint.sum(1)  # Eq. (2)
    return per_person.mean()                                                      # (), 1/N sum_n


def pose_distill_terms(student: Tensor, teacher: Tensor, limbs: Tensor, edge_weights: Tensor,
                       use_l1: bool = True, use_structure: bool = True,
                       reduction: str = 'joint_mean') -> dict[str, Tensor]:
    """Eq. (2) as its two parts {'pose_l1', 'pose_skeleton'} (those switched on), unweighted.

    Poses (B, K, 2) in the method's ``pose_units``; ``edge_weights`` (E,) summing to 1. With
    ``reduction='sum'`` they are scaled to sum |E| (uniform -> 1 each, the printed sum of Eq. 3).
    """
    terms = {}
    if use_l1:
        terms['pose_l1'] = pose_l1_loss(student, teacher, reduction)              # Eq. (2), 1st term
    if use_structure:
        w = edge_weights * (len(edge_weights) if reduction == 'sum' else 1.0)
        terms['pose_skeleton'] = structure_loss(student, teacher, limbs, w)       # Eq. (2), L_cst
    return terms


def pose_distill_loss(student: Tensor, teacher: Tensor, limbs: Tensor, edge_weights: Tensor,
                      use_l1: bool = True, use_structure: bool = True,
                      reduction: str = 'joint_mean') -> Tensor:
    """Eq. (2): L1 term + L_cst (``pose_distill_terms`` summed). Poses (B, K, 2)."""
    terms = pose_distill_terms(student, teacher, limbs, edge_weights, use_l1, use_structure, reduction)
    return sum(terms.values(), student.new_zeros(()))


def edge_weights_from_joints(joints: np.ndarray, boxes: np.ndarray, limbs, mode: str) -> np.ndarray:
    """w_ij of Eq. (3), summing to 1. joints (N, K, 3) with visibility, boxes (N, 4) xywh.

    'inverse_length': w_ij ~ 1 / mean(|J_i - J_j| / sqrt(box w * h)) over people with both
    joints labelled; 'uniform': 1/|E|. A bone never labelled gets the mean weight. (Eq. 3's
    printed sum over E is these times |E|: ``pose_reduction='sum'``.)
    """
    limbs = np.asarray(limbs, dtype=np.int64).reshape(-1, 2)
    if mode == 'uniform' or len(joints) == 0:
        w = np.ones(len(limbs))
    elif mode == 'inverse_length':
        size = np.sqrt(np.maximum(boxes[:, 2] * boxes[:, 3], 1.0))[:, None]      # (N, 1)
        a, b = joints[:, limbs[:, 0]], joints[:, limbs[:, 1]]                    # (N, E, 3)
        both = (a[..., 2] > 0) & (b[..., 2] > 0)                                 # (N, E)
        length = np.linalg.norm(a[..., :2] - b[..., :2], axis=-1) / size         # (N, E)
        count = both.sum(0)
        mean = np.where(count > 0, (length * both).sum(0) / np.maximum(count, 1), np.nan)
        w = 1.0 / np.maximum(mean, 1e-3)
        w = np.where(np.isfinite(w), w, np.nanmean(w) if np.isfinite(w).any() else 1.0)
    else:
        raise ValueError(f"edge_weights must be 'inverse_length' or 'uniform', got {mode!r}")
    return (w / w.sum()).astype(np.float32)


# ---------------------------------------------------------------- the two methods

def _single_teacher(teachers: dict[str, nn.Module]) -> nn.Module:
    if len(teachers) != 1:
        raise ValueError('TwoStage-GCN distils from exactly one teacher (HRNet-W48-SimCC), got '
                         f'{sorted(teachers)}; set ExperimentConfig.teachers to one entry')
    return next(iter(teachers.values()))


def _split_ratio(out: dict, batch: dict) -> float:
    """SimCC's k, read off the output: x bins / input width (as kdlib.decode.predict does)."""
    return out['simcc_x'].shape[-1] / batch['image'].shape[-1]


def _require_simcc(out: dict, who: str) -> None:
    if 'simcc_x' not in out:
        raise ValueError(f"TwoStage-GCN needs SimCC models (head='simcc'); the {who} returned "
                         f'{sorted(out)}')


class TwoStageDistill(Method):
    """Stage 1, Eq. (5): L_KL + gamma(t) alpha L_fea + gamma(t) beta L_pos.

    Terms: ``simcc_kl``, ``feature``, ``pose_l1``, ``pose_skeleton`` (each already weighted;
    reductions in the module docstring).
    """

    def __init__(self, limbs: Sequence[tuple[int, int]], edge_weights: np.ndarray,
                 student_channels: int, teacher_channels: int, alpha: float, beta: float,
                 feature_kd: bool, pose_l1: bool, pose_structure: bool, weight_decay: bool,
                 softargmax_beta: float, feature_reduction: str = 'sum',
                 pose_reduction: str = 'joint_mean', pose_units: str = 'normalised'):
        super().__init__()
        if feature_reduction not in FEATURE_REDUCTIONS:
            raise ValueError(f'feature_reduction must be one of {FEATURE_REDUCTIONS}, got {feature_reduction!r}')
        if pose_reduction not in POSE_REDUCTIONS:
            raise ValueError(f'pose_reduction must be one of {POSE_REDUCTIONS}, got {pose_reduction!r}')
        if pose_units not in POSE_UNITS:
            raise ValueError(f'pose_units must be one of {POSE_UNITS}, got {pose_units!r}')
        self.feature_reduction, self.pose_reduction = feature_reduction, pose_reduction
        self.pose_units = pose_units
        self.alpha, self.beta = alpha, beta
        self.feature_kd, self.pose_l1, self.pose_structure = feature_kd, pose_l1, pose_structure
        self.weight_decay, self.softargmax_beta = weight_decay, softargmax_beta
        self.gamma = 1.0
        self.register_buffer('limbs', torch.as_tensor(limbs, dtype=torch.long).reshape(-1, 2))
        self.register_buffer('edge_weights', torch.as_tensor(edge_weights, dtype=torch.float32))
        self.align = nn.Conv2d(student_channels, teacher_channels, 1) if feature_kd else None  # Eq. (1) conv1x1

    def on_epoch_start(self, epoch: int, num_epochs: int, lr: float) -> None:
        """`epoch` is 0-based (trainer convention); Eq. (4) counts t from 1."""
        self.gamma = gamma_schedule(epoch + 1, num_epochs) if self.weight_decay else 1.0

    def get_extra_state(self) -> dict:
        """gamma(t) travels with the checkpoint (a finished run's balance shows its last gamma)."""
        return {'gamma': self.gamma}

    def set_extra_state(self, state: dict) -> None:
        self.gamma = float(state['gamma'])

    def forward(self, batch: dict, student: nn.Module, teachers: dict[str, nn.Module]):
        teacher = _single_teacher(teachers)
        out = student(batch['image'])
        _require_simcc(out, 'student')
        losses = task_loss(out, batch)                                            # L_KL of Eq. (5)
        if not (self.feature_kd or self.pose_l1 or self.pose_structure):
            return losses, out
        with torch.no_grad():
            t_out = teacher(batch['image'])
        _require_simcc(t_out, 'teacher')
        if self.feature_kd:
            aligned = self.align(out['feature'])                                  # (B, C_tea, h, w)
            l_fea = feature_distill_loss(aligned, t_out['feature'], self.feature_reduction)  # Eq. (1)
            losses['feature'] = self.gamma * self.alpha * l_fea                   # Eq. (5)
        if self.pose_l1 or self.pose_structure:
            k = _split_ratio(out, batch)
            p_stu = simcc_softargmax(out['simcc_x'], out['simcc_y'], k, self.softargmax_beta)  # (B, K, 2)
            p_tea = simcc_softargmax(t_out['simcc_x'], t_out['simcc_y'], k, self.softargmax_beta)
            if self.pose_units == 'normalised':                                   # mmpose RegressionLabel
                size = p_stu.new_tensor([batch['image'].shape[-1], batch['image'].shape[-2]])
                p_stu, p_tea = p_stu / size, p_tea / size
            terms = pose_distill_terms(p_stu, p_tea, self.limbs, self.edge_weights, self.pose_l1,
                                       self.pose_structure, self.pose_reduction)  # Eq. (2)-(3)
            for name, value in terms.items():
                losses[name] = self.gamma * self.beta * value                     # Eq. (5)
        return losses, out


def progressive_gcn_loss(refined: Sequence[Tensor], target: Tensor, mask: Tensor,
                         block_weights: Sequence[float]) -> tuple[Tensor, list[Tensor]]:
    """Eq. (6)-(7). refined: [P_1, P_2, P_3] each (B, K, 2); target (B, K, 2); mask (B, K) 0/1.

    Returns (L_s2, [L_1, L_2, L_3]); each L_i is |dx| + |dy| averaged over the labelled joints of
    the batch (the per-joint convention of Eq. 2; module docstring).
    """
    if len(refined) != len(block_weights):
        raise ValueError(f'{len(refined)} refined poses but {len(block_weights)} block weights')
    m = mask.float()[..., None]                                                   # (B, K, 1)
    denom = m.sum().clamp(min=1.0)                                                # labelled joints
    per_block = [((target - p).abs() * m).sum() / denom for p in refined]         # Eq. (6)
    total = sum(w * l for w, l in zip(block_weights, per_block))                  # Eq. (7)
    return total, per_block


class ProgressiveGCNDistill(Method):
    """Stage 2, Eq. (7): the IGP-GCN of an `IGPRefiner` student learns the teacher's pose."""

    def __init__(self, block_weights: Sequence[float], target: str):
        super().__init__()
        if target not in ('teacher', 'gt'):
            raise ValueError(f"stage-2 target must be 'teacher' (Eq. 6) or 'gt' (scheme 1), got {target!r}")
        self.block_weights, self.target = tuple(block_weights), target

    def forward(self, batch: dict, student: nn.Module, teachers: dict[str, nn.Module]):
        out = student(batch['image'])
        if 'refined' not in out:
            raise ValueError("stage 2 trains an IGPRefiner student (model 'igp_gcn'); this "
                             f'student returned {sorted(out)}')
        if self.target == 'teacher':
            with torch.no_grad():
                t_out = _single_teacher(teachers)(batch['image'])
            _require_simcc(t_out, 'teacher')
            target, _ = simcc_argmax(t_out['simcc_x'], t_out['simcc_y'], _split_ratio(t_out, batch))
        else:
            target = batch['joints'][..., :2]
        mask = batch['target_weight'] > 0                                         # M of Eq. (6)
        _, per_block = progressive_gcn_loss(out['refined'], target, mask, self.block_weights)
        losses = {f'gcn{i + 1}': w * l for i, (w, l) in enumerate(zip(self.block_weights, per_block))}
        return losses, out


# ---------------------------------------------------------------- builders (METHODS entries)

def _dataset_joints_and_boxes(train_set):
    records = getattr(train_set, 'records', None)
    if not records:
        return np.zeros((0, 0, 3), np.float32), np.zeros((0, 4), np.float32)
    return (np.stack([r['joints'] for r in records]).astype(np.float32),
            np.stack([r['bbox'] for r in records]).astype(np.float32))


def _out_channels(model: nn.Module, input_size) -> int:
    device = next(model.parameters()).device
    with torch.no_grad():
        was_training = model.training
        model.eval()
        c = model(torch.zeros(1, 3, *input_size, device=device))['feature'].shape[1]
        model.train(was_training)
    return c


def build_stage1(params: dict, student: nn.Module, teachers: dict[str, nn.Module], train_set) -> TwoStageDistill:
    """METHODS['two_stage']: stage 1. `params` override STAGE1_DEFAULTS."""
    p = dict(vars(method_params(Stage1Params, params, 'two_stage (stage 1)')))
    skeleton = train_set.skeleton
    input_size = tuple(train_set.cfg.input_size)
    joints, boxes = _dataset_joints_and_boxes(train_set)
    weights = edge_weights_from_joints(joints, boxes, skeleton.limbs, p.pop('edge_weights'))
    s_ch = _out_channels(student, input_size) if p['feature_kd'] else 0
    t_ch = _out_channels(_single_teacher(teachers), input_size) if p['feature_kd'] else 0
    return TwoStageDistill(skeleton.limbs, weights, s_ch, t_ch, **p)


def build_stage2(params: dict, student: nn.Module, teachers: dict[str, nn.Module], train_set) -> ProgressiveGCNDistill:
    """METHODS['two_stage_gcn']: stage 2 (student = IGPRefiner). `params` override STAGE2_DEFAULTS."""
    p = dict(vars(method_params(Stage2Params, params, 'two_stage_gcn (stage 2)')))
    if p['target'] == 'teacher':
        _single_teacher(teachers)
    return ProgressiveGCNDistill(**p)
