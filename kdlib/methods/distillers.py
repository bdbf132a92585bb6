"""The other distillers of EKR's Table 1, each a small Method on the same SimCC student/teacher.

Xu, Yan & Zheng, "Lightweight Human Pose Estimation with Enhanced Knowledge Review" (BMVC 2024),
Table 1 compares its method with six distillers, all run HRNet-W32 -> Lite-HRNet-18 on MPII:

- ``kd``       Hinton et al. 2015: KL(teacher || student) on the SimCC x/y distributions, exactly
               EKR's L_vkd term alone (``vanilla_kd``: weight beta = 0.04 and EKR's Eq. 7 reduction).
- ``fitnet``   Romero et al. 2015: a regressor maps one student stage onto the teacher's hint stage; MSE.
- ``rkd``      Park et al. 2019: distance-wise (Huber on normalised pairwise distances, weight 25) and
               angle-wise (Huber on triplet cosines, weight 50) relations of pooled embeddings.
- ``at``       Zagoruyko & Komodakis 2017 ("AF" in Table 1): attention maps
               a(F) = normalise(mean_c F^2) matched with squared L2, over every stage pair.
- ``sp``       Tung & Mori 2019: row-normalised batch similarity G = F F^T, ||G_s - G_t||_F^2 / b^2.
- ``reviewkd`` Chen et al. 2021: ABF fusion of each student stage with the deeper fused residual,
               hierarchical-context loss (HCL) against the teacher stage of the same depth.

The paper gives none of their weights; each default is the original code's (RepDistiller, the CRD
benchmark that also ships FitNet/AT/SP/RKD: FitNet 100, AT 1000, SP 3000, RKD 1 with internal 25/50;
ReviewKD's own detection/CIFAR weight 1.0; KD uses EKR's beta = 0.04 and EKR's reduction, so that
the ``kd`` column is exactly EKR's VKD term alone). All are parameters (``weight``). Caveat:
RepDistiller tuned them against a CIFAR cross-entropy of a few units, while the SimCC task loss
(SimCC's KLDiscretLoss: a mean over the bins) is ~1e-3 to 1e-2, so FitNet x100 and SP x3000 start
orders of magnitude above the task term: Table 1 compares the methods at their authors' weights.
The ABF module and HCL are written here, after dvlab-research/ReviewKD (CIFAR-100/model/reviewkd.py),
generalised to non-square maps: every resize goes to an (h, w) pair, never to a square side, and
HCL pools to aspect-preserving grids.
"""
from __future__ import annotations


from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from kdlib.losses import simcc_kd
from kdlib.methods.base import Method, method_params, task_loss

__all__ = ['vanilla_kd', 'VKD_REDUCTIONS', 'hcl_loss', 'attention_map', 'at_loss', 'sp_loss', 'rkd_loss',
           'pairwise_distances', 'ABF', 'DistillMethod', 'VanillaKD', 'FitNet', 'RKD', 'AttentionTransfer',
           'SimilarityPreserving', 'ReviewKD', 'DISTILLERS', 'build_method', 'builder',
           'stage_shapes', 'single_teacher', 'input_size_of']


# ----------------------------------------------------------------------------------- losses
VKD_REDUCTIONS = ('paper', 'batchmean')


def vanilla_kd(s_out: dict, t_out: dict, temperature: float = 1.0, reduction: str = 'paper') -> torch.Tensor:
    """EKR's L_vkd (Eq. 7) = Table 1's KD: KL(teacher || student) on the SimCC x/y distributions.

    Eq. (7): L_vkd = (1/N) sum_n sum_k KL(T || S) per axis (the printed minus sign is a typo: a KL is
    >= 0), the KL summed over the bins. DWPose's ``KDLoss`` (mmpose
    ``mmpose/models/losses/logit_dis_loss.py::KDLoss``), the SimCC KD of the MMPose code the paper
    runs on, computes exactly that and divides by K: ``kdlib.losses.simcc_kd``, used here as is.

    The task loss it is weighed against is the open point. Eq. (6) SUMS over the N persons of the
    batch, as mmpose's ``KLDiscretLoss`` does (``t_loss.sum()`` over N*K, then / K), while the kit's
    task loss (``losses.simcc_kl``, SimCC's original code, shared by every method) AVERAGES over
    them. ``reduction``:
    - ``'paper'`` (default): the kit trains Eq. (8) divided by N -- task loss (mean over N), alpha
      L_fkd (Eq. 5's sum over the batch taken as a mean) and beta * simcc_kd / N -- so that
      beta L_vkd / L_task is the paper's: beta * L / N * KL(T||S) / KL(V||S) with L bins per axis
      (~0.64 x the KL ratio at 512 bins and batch 32). The ratio falls with the batch size, as in the
      paper's code (smoke's batch 8: 4x heavier than at 32).
    - ``'batchmean'``: simcc_kd as is, N times heavier against the kit's task loss than in the paper
      (measured on realistic tensors at batch 32: beta L_vkd ~ 29 x L_task instead of ~0.9 x).
    T = 1 by default (Eq. 7 has none; DWPose's SimCC KD uses none); T != 1 multiplies by T^2.
    """
    if reduction not in VKD_REDUCTIONS:
        raise ValueError(f'vanilla_kd: reduction must be one of {VKD_REDUCTIONS}, got {reduction!r}')
    loss = simcc_kd(s_out['simcc_x'], s_out['simcc_y'], t_out['simcc_x'], t_out['simcc_y'],
                    temperature=temperature)                          # Eq. (7), / K (DWPose)
    return loss / s_out['simcc_x'].shape[0] if reduction == 'paper' else loss


def _pyramid_sizes(h: int, w: int, levels) -> list[tuple[int, int]]:
    """Aspect-preserving pooling grids: level n puts n cells on the shorter side (64x48, n=4 -> 5x4)."""
    short = min(h, w)
    return [(max(1, round(n * h / short)), max(1, round(n * w / short))) for n in levels if n < short]


def hcl_loss(fs: torch.Tensor, ft: torch.Tensor, levels=(4, 2, 1), per_sample: bool = False):
    """ReviewKD's hierarchical-context loss for one (B, C, h, w) pair, generalised to non-square maps.

    MSE at full resolution plus MSE of average-pooled grids with weights 1/2, 1/4, ...; normalised by
    the total weight (as in ReviewKD's ``hcl``). ``per_sample`` returns (B,) (mean over C, h, w).
    """
    dims, fs, ft = (1, 2, 3), fs.float(), ft.float()
    loss = (fs - ft).pow(2).mean(dims)                            # (B,)
    weight, total = 1.0, 1.0
    for size in _pyramid_sizes(fs.shape[-2], fs.shape[-1], levels):
        weight /= 2.0
        pooled = F.adaptive_avg_pool2d(fs, size) - F.adaptive_avg_pool2d(ft, size)
        loss = loss + weight * pooled.pow(2).mean(dims)
        total += weight
    loss = loss / total
    return loss if per_sample else loss.mean()


def attention_map(f: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Attention transfer map: mean_c F^2, resized to ``size``, flattened, L2-normalised -> (B, h*w)."""
    am = f.float().pow(2).mean(1, keepdim=True)                   # (B, 1, h, w)
    if size is not None and tuple(am.shape[-2:]) != tuple(size):
        am = F.interpolate(am, size=size, mode='bilinear', align_corners=False)
    return F.normalize(am.flatten(1), dim=1)                      # (B, h*w)


def at_loss(fs: torch.Tensor, ft: torch.Tensor) -> torch.Tensor:
    """(a_s - a_t)^2 averaged, on the teacher's grid (Zagoruyko & Komodakis, RepDistiller's AT)."""
    return (attention_map(fs, ft.shape[-2:]) - attention_map(ft)).pow(2).mean()


def batch_similarity(f: torch.Tensor) -> torch.Tensor:
    """G = F F^T of the flattened features, rows L2-normalised (Tung & Mori) -> (B, B)."""
    with torch.autocast(f.device.type, enabled=False):           # long dots overflow fp16
        flat = f.flatten(1).float()                               # (B, C*h*w)
        return F.normalize(flat @ flat.t(), dim=1)                # (B, B)


def sp_loss(fs: torch.Tensor, ft: torch.Tensor) -> torch.Tensor:
    """Similarity-preserving loss ||G_s - G_t||_F^2 / b^2."""
    b = fs.shape[0]
    return (batch_similarity(fs) - batch_similarity(ft)).pow(2).sum() / b ** 2


def pairwise_distances(e: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Euclidean distances of the rows of ``e`` (B, D) -> (B, B) with an exact-zero diagonal.

    Park et al.'s ``pdist`` (lenscloth/RKD metric/utils.py): sqrt(clamp(|e_i|^2 + |e_j|^2 - 2 e_i.e_j,
    eps)), diagonal set to 0, on embeddings centred first (distances unchanged, less float32
    cancellation). Without the zeroing the diagonal holds sqrt(eps) or rounding noise (``torch.cdist``
    takes this matrix-product path above 25 rows), which enters RKD's mean distance and its loss.
    """
    e = e - e.mean(0, keepdim=True)                               # same distances, less cancellation
    sq = e.pow(2).sum(1)                                          # (B,)
    d = (sq[:, None] + sq[None, :] - 2 * e @ e.t()).clamp_min(eps).sqrt()   # (B, B)
    return d * (1 - torch.eye(len(e), device=e.device, dtype=d.dtype))      # zero diagonal


def rkd_loss(es: torch.Tensor, et: torch.Tensor, w_dist: float = 25.0, w_angle: float = 50.0):
    """Relational KD on (B, D) embeddings (Park et al. 2019, lenscloth/RKD ``RkdDistance``/``RKdAngle``).

    Distance: pairwise distances divided by their mean over the off-diagonal pairs (d > 0), Huber
    (smooth L1, mean over the B^2 entries) student vs teacher. Angle: cosines of e_j - e_i and
    e_k - e_i at every anchor i, Huber, mean over the B^3 entries.
    """
    def pdist(e):                                                 # (B, B), mean-normalised
        d = pairwise_distances(e.float())
        return d / d[d > 0].mean().clamp_min(1e-12)

    def angles(e):                                                # (B, B, B) cosines at each anchor
        diff = F.normalize(e.unsqueeze(0) - e.unsqueeze(1), dim=2)    # (B, B, D)
        return torch.bmm(diff, diff.transpose(1, 2))
    with torch.no_grad():
        d_t, a_t = pdist(et), angles(et.float())
    return (w_dist * F.smooth_l1_loss(pdist(es), d_t)
            + w_angle * F.smooth_l1_loss(angles(es.float()), a_t))


# ---------------------------------------------------------------------------------- modules
class ABF(nn.Module):
    """Attention-based fusion (ReviewKD): 1x1 conv of a student stage, fused with the deeper fused
    residual by two sigmoid attention maps, then a 3x3 conv to the teacher's channels.

    Returns (output at ``out_size``, residual for the next shallower stage). Sizes are (h, w) pairs.
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, fuse: bool):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(in_channels, mid_channels, 1, bias=False),
                                   nn.BatchNorm2d(mid_channels))
        self.conv2 = nn.Sequential(nn.Conv2d(mid_channels, out_channels, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(out_channels))
        self.att_conv = (nn.Sequential(nn.Conv2d(2 * mid_channels, 2, 1), nn.Sigmoid())
                         if fuse else None)
        nn.init.kaiming_uniform_(self.conv1[0].weight, a=1)
        nn.init.kaiming_uniform_(self.conv2[0].weight, a=1)

    def forward(self, x, residual=None, out_size=None):
        x = self.conv1(x)                                          # (B, mid, h, w)
        if self.att_conv is not None and residual is not None:
            residual = F.interpolate(residual, size=x.shape[-2:], mode='nearest')
            z = self.att_conv(torch.cat([x, residual], dim=1))    # (B, 2, h, w)
            x = x * z[:, :1] + residual * z[:, 1:]
        if out_size is not None and tuple(x.shape[-2:]) != tuple(out_size):
            x = F.interpolate(x, size=tuple(out_size), mode='nearest')
        return self.conv2(x), x


@torch.no_grad()
def stage_shapes(model: nn.Module, input_size: tuple[int, int], key: str = 'stages') -> list[tuple[int, int, int]]:
    """(C, h, w) of every entry of ``model(x)[key]`` (the stage maps) from a dry forward in eval mode."""
    was_training = model.training
    device = next(model.parameters()).device
    model.eval()
    out = model(torch.zeros(2, 3, *input_size, device=device))
    model.train(was_training)
    if key not in out:
        raise KeyError(f"{type(model).__name__} output has no {key!r} (keys: {sorted(out)})")
    return [tuple(s.shape[1:]) for s in out[key]]


# ---------------------------------------------------------------------------------- parameters
# One ``method_params`` dataclass per distiller (``kdlib.methods.base.method_params`` checks a
# config against it); the loss weights are RepDistiller's defaults unless noted.
@dataclass(frozen=True)
class KDParams:
    weight: float = 0.04           # EKR Eq. (8): beta, Section 4.1 (Table 1's KD is L_vkd alone)
    temperature: float = 1.0       # the printed softmax
    reduction: str = 'paper'       # L_vkd's reduction (kdlib/methods/ekr.py docstring)

    def __post_init__(self):
        if self.reduction not in VKD_REDUCTIONS:
            raise ValueError(f'kd: reduction must be one of {VKD_REDUCTIONS}, got {self.reduction!r}')


@dataclass(frozen=True)
class FitNetParams:
    weight: float = 100.0          # RepDistiller train_student.py: --beta 100 for hint
    student_stage: int | None = None   # None: the third of four stages (RepDistiller --hint_layer 2)
    teacher_stage: int | None = None


@dataclass(frozen=True)
class RKDParams:
    weight: float = 1.0            # RepDistiller: --beta 1 for rkd
    w_dist: float = 25.0           # RKD paper: distance-wise weight
    w_angle: float = 50.0          # RKD paper: angle-wise weight


@dataclass(frozen=True)
class ATParams:
    weight: float = 1000.0         # RepDistiller: --beta 1000 for attention
    num_pairs: int | None = None   # None: every stage pair


@dataclass(frozen=True)
class SPParams:
    weight: float = 3000.0         # RepDistiller: --beta 3000 for similarity


@dataclass(frozen=True)
class ReviewKDParams:
    weight: float = 1.0            # ReviewKD: HCL weight 1
    levels: tuple = (4, 2, 1)      # ReviewKD's HCL pooled grids
    mid_channels: int | None = None    # None: min(512, C_last) (ReviewKD)


# ---------------------------------------------------------------------------------- methods
class DistillMethod(Method):
    """Task loss + ``weight * distill(student_out, teacher_out)``; subclasses define ``distill``."""

    name = 'distill'

    def __init__(self, weight: float):
        super().__init__()
        self.weight = float(weight)

    def distill(self, s_out: dict, t_out: dict) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, batch, student, teachers):
        teacher = single_teacher(teachers)
        s_out = student(batch['image'])
        with torch.no_grad():
            t_out = teacher(batch['image'])
        terms = task_loss(s_out, batch)                             # EKR Eq. (6)
        terms[self.name] = self.weight * self.distill(s_out, t_out)
        return terms, s_out


def single_teacher(teachers: dict) -> nn.Module:
    """The one teacher of these methods, frozen in eval mode."""
    if not teachers:
        raise ValueError('this distiller needs a teacher: pass teachers={"teacher": ExperimentConfig}')
    teacher = teachers['teacher'] if 'teacher' in teachers else next(iter(teachers.values()))
    if teacher.training:
        teacher.eval()
    return teacher


class VanillaKD(DistillMethod):
    """Table 1's KD: EKR's L_vkd alone (``vanilla_kd``), weight beta of EKR Eq. (8), Section 4.1."""
    name = 'kd'

    def __init__(self, weight=KDParams.weight, temperature=KDParams.temperature,
                 reduction=KDParams.reduction):
        super().__init__(weight)
        KDParams(reduction=reduction)                                      # value checks
        self.temperature, self.reduction = temperature, reduction

    def distill(self, s_out, t_out):
        return vanilla_kd(s_out, t_out, self.temperature, self.reduction)


class FitNet(DistillMethod):
    """Hint learning: regressor (1x1 conv, resize to the hint's (h, w)) on student stage -> MSE."""
    name = 'fitnet'

    def __init__(self, s_shape, t_shape, student_stage, teacher_stage, weight=FitNetParams.weight):
        super().__init__(weight)
        self.student_stage, self.teacher_stage, self.size = student_stage, teacher_stage, t_shape[1:]
        self.regressor = nn.Sequential(nn.Conv2d(s_shape[0], t_shape[0], 1, bias=False),
                                       nn.BatchNorm2d(t_shape[0]))

    def distill(self, s_out, t_out):
        fs = self.regressor(s_out['stages'][self.student_stage])
        if tuple(fs.shape[-2:]) != tuple(self.size):
            fs = F.interpolate(fs, size=tuple(self.size), mode='bilinear', align_corners=False)
        return F.mse_loss(fs, t_out['stages'][self.teacher_stage])


class RKD(DistillMethod):
    """RKD on globally average-pooled last-stage embeddings (relations need no channel alignment)."""
    name = 'rkd'

    def __init__(self, weight=RKDParams.weight, w_dist=RKDParams.w_dist, w_angle=RKDParams.w_angle):
        super().__init__(weight)
        self.w_dist, self.w_angle = w_dist, w_angle

    def distill(self, s_out, t_out):
        es = s_out['stages'][-1].mean((2, 3))                     # (B, C_s)
        et = t_out['stages'][-1].mean((2, 3))                     # (B, C_t)
        return rkd_loss(es, et, self.w_dist, self.w_angle)


class AttentionTransfer(DistillMethod):
    """AT over the last ``n`` stage pairs (same depth from the end), summed."""
    name = 'at'

    def __init__(self, num_pairs, weight=ATParams.weight):
        super().__init__(weight)
        self.num_pairs = num_pairs

    def distill(self, s_out, t_out):
        pairs = zip(s_out['stages'][-self.num_pairs:], t_out['stages'][-self.num_pairs:])
        return sum(at_loss(fs, ft) for fs, ft in pairs)


class SimilarityPreserving(DistillMethod):
    name = 'sp'

    def __init__(self, weight=SPParams.weight):
        super().__init__(weight)

    def distill(self, s_out, t_out):
        return sp_loss(s_out['stages'][-1], t_out['stages'][-1])


class ReviewKD(DistillMethod):
    """Knowledge review: deep -> shallow ABF chain over the last ``n`` student stages, HCL per stage."""
    name = 'reviewkd'

    def __init__(self, s_shapes, t_shapes, weight=ReviewKDParams.weight, levels=ReviewKDParams.levels,
                 mid_channels=ReviewKDParams.mid_channels):
        super().__init__(weight)
        n = min(len(s_shapes), len(t_shapes))
        self.s_shapes, self.t_shapes, self.levels = s_shapes[-n:], t_shapes[-n:], tuple(levels)
        mid = mid_channels or min(512, self.s_shapes[-1][0])      # ReviewKD: min(512, C_last)
        self.abfs = nn.ModuleList(ABF(s[0], mid, t[0], fuse=i < n - 1)
                                  for i, (s, t) in enumerate(zip(self.s_shapes, self.t_shapes)))

    def review(self, s_stages):
        """Fused student features, one per teacher stage, shallow -> deep."""
        feats = s_stages[-len(self.abfs):]
        results, residual = [], None
        for i in reversed(range(len(feats))):                     # deepest first
            out, residual = self.abfs[i](feats[i], residual, self.t_shapes[i][1:])
            results.insert(0, out)
        return results

    def distill(self, s_out, t_out):
        fused = self.review(s_out['stages'])
        teacher = t_out['stages'][-len(fused):]
        return sum(hcl_loss(fs, ft, self.levels) for fs, ft in zip(fused, teacher))


def input_size_of(params: dict, train_set) -> tuple[int, int]:
    """(H, W) of the network input: ``params['input_size']``, the pipeline config, or one sample."""
    if params.get('input_size') is not None:
        return tuple(params['input_size'])
    cfg = getattr(train_set, 'cfg', None)
    if getattr(cfg, 'input_size', None) is not None:
        return tuple(cfg.input_size)
    if train_set is None:
        raise ValueError('cannot infer the input size: pass params["input_size"] = (H, W) or a train_set')
    return tuple(train_set[0]['image'].shape[-2:])


def build_method(params: dict, student, teachers, train_set) -> Method:
    """``params['distiller']`` in DISTILLERS; remaining keys are that distiller's options."""
    params = dict(params or {})
    name = params.pop('distiller', 'kd')
    if name not in DISTILLERS:
        raise ValueError(f"unknown distiller {name!r}; expected one of {sorted(DISTILLERS)}")
    given = {'input_size': params.pop('input_size')} if 'input_size' in params else {}
    params = vars(method_params(PARAMS[name], params, name))
    size = input_size_of(given, train_set) if name in _NEEDS_SHAPES else None
    if size is None:
        return DISTILLERS[name](**params)
    s, t = stage_shapes(student, size), stage_shapes(single_teacher(teachers), size)
    return DISTILLERS[name](s, t, **params)


def _fitnet(s, t, student_stage=None, teacher_stage=None, **kw):
    # hint/guided stage: RepDistiller's --hint_layer 2 (the third of four stage features)
    si = min(2, len(s) - 1) if student_stage is None else student_stage
    ti = min(2, len(t) - 1) if teacher_stage is None else teacher_stage
    return FitNet(s[si], t[ti], si, ti, **kw)


def _at(s, t, num_pairs=None, **kw):
    return AttentionTransfer(num_pairs or min(len(s), len(t)), **kw)


PARAMS = {'kd': KDParams, 'fitnet': FitNetParams, 'rkd': RKDParams, 'at': ATParams, 'sp': SPParams,
          'reviewkd': ReviewKDParams}
DISTILLERS = {'kd': VanillaKD, 'fitnet': _fitnet, 'rkd': RKD, 'at': _at,
              'sp': SimilarityPreserving, 'reviewkd': ReviewKD}
_NEEDS_SHAPES = {'fitnet', 'at', 'reviewkd'}


def builder(name: str):
    """A ``build_method`` bound to one distiller, for ``METHODS`` (e.g. ``METHODS['fitnet']``)."""
    def build(params, student, teachers, train_set):
        return build_method({**(params or {}), 'distiller': name}, student, teachers, train_set)
    build.__name__ = f'build_{name}'
    return build
