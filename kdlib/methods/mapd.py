"""Multi-Angle Pose Distillation (MAPD).

Hua Li, "Lightweight and Effective Human Pose Estimation Model Based on Multi-Angle Knowledge
Distillation", J. Phys.: Conf. Ser. 2224 012025 (2022), Section 4, Eq. (1)-(3). Paper text:
``../shared/papers/004_76d5408c7b9603ef.txt``.

A frozen HRNet-W32 teacher supervises a light student (ELPN-V1/V2) from two "angles" at once:

* regression -- ``L_mpd``, the squared error between student and teacher heatmaps (Eq. 1, "MSET");
* classification -- ``L_kpd``, the KL divergence KL(teacher || student) between the two
  heatmaps seen as distributions over the pixels (Eq. 2, "KLT");

and the ground truth keeps its usual heatmap MSE ``L_mse``. With o_k the k-th of K heatmaps:

    L_mpd = (1/K) sum_k ||o_k^s - o_k^t||^2                                      Eq. (1)
    L_kpd = (1/K) sum_k sum_pixels p_k^t (log p_k^t - log p_k^s)                 Eq. (2)
    L_mapd = alpha * L_mpd + beta * L_kpd + (1 - alpha - beta) * L_mse            Eq. (3)

with alpha = 0.15, beta = 0.075 (Section "Knowledge Distillation Weight Parameter Search",
Table 7: alpha searched over 0..0.45 with beta = alpha / 2).

**One reduction for the three terms.** Eq. (1) sums the squared error over the pixels of a
heatmap and averages over the K heatmaps; Eq. (2) sums the KL over the pixels and averages over K;
``L_mse`` has "almost the same" expression as Eq. (1). The three terms therefore share one
reduction, and Eq. (3)'s alpha and beta are the only thing that weighs them. The kit keeps HRNet's
JointsMSELoss for both MSE terms (``kdlib.losses.joints_mse``: ``0.5 * mean`` over batch, joints
and pixels; HRNet ``lib/core/loss.py::JointsMSELoss``) so that alpha = beta = 0 is exactly the
supervised baseline's loss, and divides the per-heatmap KL by the same ``2 * H * W``
(``kl_reduction='mse_scale'``, the default). Each term is then its printed form times the common
factor 1/(2HW): the ratios of the three weighted terms are those of the printed Eq. (1)-(3), and
the common factor only rescales the loss (Adam, the paper's optimiser, is insensitive to it).
The other reductions stay as options, each with what it does to the ratio:

* ``'batchmean'`` (the kit's default before issue 13): Eq. (2) read alone, KL summed over the
  pixels, mean over K and batch, next to MSE terms that average over the pixels. It weighs the KL
  2HW times (8192x on 64x64 heatmaps) more than the printed Eq. (3) does: on realistic heatmaps
  (``tests/test_elpn_mapd.py``) the weighted KL was ~640x the teacher-MSE term and ~120x the GT
  term; on the ``quick`` profile (``kdlib.balance.run_balance``) it was 87% of the loss and 99% of
  the last-layer gradient at initialisation, 69% / 77% at the end -- the objective trained was
  close to Table 6's "KLT" alone. With ``'mse_scale'``: 1.3% of the loss at initialisation, 0.2%
  at the end.
* ``'mean'``: the KL also divided by H*W (``nn.KLDivLoss(reduction='mean')`` per heatmap), i.e.
  twice the ``'mse_scale'`` value.

**Heatmap -> distribution (Eq. 2).** The printed Eq. (2) takes the logs of the outputs o_k
themselves; as a KL it needs distributions, and ``log o`` is undefined where a network outputs
o <= 0 (about half of the pixels of a freshly initialised head, and the noisy background later).
``kl_mode='normalize'`` (default) keeps the printed form wherever it is defined: each heatmap is
floored at 0, offset by ``eps`` (heatmap units, Gaussian peak = 1), raised to 1/T and divided by
its sum. How the floor at 0 passes gradients is ``kl_clamp``:

* ``'straight_through'`` (default): the forward value is ``clamp(o, 0) + eps``, the backward pass
  is the identity (the straight-through estimator, Bengio et al. 2013). Where o > 0 the value and
  the gradient are exactly those of the printed formula; where o <= 0 the KL still pulls the pixel
  up wherever the teacher has mass (the gradient of Eq. 2 evaluated at the floor), so the
  classification angle reaches every pixel. The KL's *gradient* stays large where its value is
  small: log p_s is steep wherever the student's heatmap is near 0, so at initialisation (a fresh
  head outputs ~0 everywhere) the KL carries ~90% of the last-layer gradient norm for ~1% of the
  loss, ~40% at the end of a ``quick`` run. That is the printed Eq. (2)'s own slope (``'clip'`` has
  the same slope on the pixels with o > 0); Adam normalises the step per parameter.
* ``'clip'``: ``clamp(o, 0)`` with autograd's gradient, which is 0 for o < 0 (the kit's behaviour
  before issue 13): the KL never sees the pixels a student under-predicts below 0 -- half of them at
  initialisation -- and then only the MSE terms can lift them.

``kl_mode='softmax'`` is the spatial softmax of channel-wise distillation (Shu et al., ICCV 2021,
"Channel-Wise Knowledge Distillation for Dense Prediction"; mmrazor ``ChannelWiseDivergence``):
softmax(o_k / T) over the H*W pixels, defined for every o. Heatmaps live in [0, 1], so at T = 1
the softmax is nearly uniform (the Gaussian peak is only e times the background) and the KL carries
almost no signal; T ~ 0.1 sharpens it. Both modes multiply by T^2 (Hinton et al., 2015) so the
gradient scale does not change with T. Notebook 05 plots what each choice does to one heatmap.

Other decisions the paper leaves open (each a parameter):

* **Which joints the teacher supervises.** Eq. (1)-(2) carry no visibility weights, so by
  default the teacher supervises all K heatmaps, labelled or not (``kd_target_weight=False``);
  ``True`` masks them with the GT ``target_weight`` like ``L_mse``. Either way the mean runs over
  all K (Eq. 1's 1/K), as JointsMSELoss does for ``L_mse``.
* **MSET / KLT alone (Table 6).** Switching a term off sets its weight to 0 and the GT term
  keeps ``1 - alpha_eff - beta_eff`` (Eq. 3 with that weight removed).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdlib.losses import joints_mse
from kdlib.methods.base import Method, defaults, method_params

KL_MODES = ('normalize', 'softmax')
KL_REDUCTIONS = ('mse_scale', 'batchmean', 'mean')
KL_CLAMPS = ('straight_through', 'clip')

@dataclass(frozen=True)
class Params:
    """``method_params`` of 'mapd' (module docstring: what each choice the paper leaves open is)."""
    alpha: float = 0.15            # Section "Knowledge Distillation Weight Parameter Search", Table 7
    beta: float = 0.075            # same section: beta = alpha / 2
    mset: bool = True              # Table 6 "MSET": Eq. (1) on
    klt: bool = True               # Table 6 "KLT": Eq. (2) on
    kl_mode: str = 'normalize'     # not in the paper: the printed Eq. (2) applied to the outputs
    temperature: float = 1.0       # not in the paper: T = 1 is the printed formula
    kl_reduction: str = 'mse_scale'  # Eq. (1)-(3): one reduction for the three terms
    kl_clamp: str = 'straight_through'  # not in the paper: log o for o <= 0
    eps: float = 1e-4              # not in the paper: floor in heatmap units (Gaussian peak = 1)
    kd_target_weight: bool = False   # Eq. (1)-(2) carry no visibility weights
    teacher_name: str | None = 'teacher'   # the key of ExperimentConfig.teachers

    def __post_init__(self):
        mapd_weights(self.alpha, self.beta, self.mset, self.klt)
        heatmap_log_distribution(torch.zeros(1, 1, 1, 1), self.kl_mode, self.temperature, clamp=self.kl_clamp)
        if self.kl_reduction not in KL_REDUCTIONS:
            raise ValueError(f'kl_reduction must be one of {KL_REDUCTIONS}, got {self.kl_reduction!r}')


DEFAULTS = {k: v for k, v in defaults(Params).items() if k != 'teacher_name'}   # mapd_loss's keywords


def mapd_weights(alpha: float, beta: float, mset: bool = True, klt: bool = True) -> tuple[float, float, float]:
    """(w_mpd, w_kpd, w_gt) of Eq. (3); a switched-off term gets weight 0 (Table 6)."""
    if not (0.0 <= alpha <= 1.0 and 0.0 <= beta <= 1.0 and alpha + beta <= 1.0):
        raise ValueError(f'MAPD expects 0 <= alpha, beta and alpha + beta <= 1, got alpha={alpha}, beta={beta}')
    w_mpd = float(alpha) if mset else 0.0
    w_kpd = float(beta) if klt else 0.0
    return w_mpd, w_kpd, 1.0 - w_mpd - w_kpd  # Eq. (3)


def heatmap_log_distribution(heatmaps: Tensor, mode: str = 'normalize', temperature: float = 1.0,
                             eps: float = 1e-4, clamp: str = 'straight_through') -> Tensor:
    """Log-probabilities over the pixels of each heatmap: (B, K, H, W) -> (B, K, H*W).

    ``'normalize'``: p = (max(o, 0) + eps)^(1/T) / sum_pixels(...); ``clamp`` says how max(o, 0)
    passes gradients ('straight_through': identity; 'clip': 0 below 0). ``'softmax'``:
    p = softmax(o / T) over the pixels. Module docstring: why.
    """
    if mode not in KL_MODES:
        raise ValueError(f'kl_mode must be one of {KL_MODES}, got {mode!r}')
    if clamp not in KL_CLAMPS:
        raise ValueError(f'kl_clamp must be one of {KL_CLAMPS}, got {clamp!r}')
    if temperature <= 0:
        raise ValueError(f'temperature must be > 0, got {temperature}')
    flat = heatmaps.float().flatten(2)  # (B, K, H*W)
    if mode == 'softmax':
        return F.log_softmax(flat / temperature, dim=-1)  # CWD spatial softmax
    floored = flat.clamp(min=0.0)  # (B, K, H*W)
    if clamp == 'straight_through':
        floored = flat + (floored - flat).detach()  # value max(o, 0), gradient identity
    mass = (floored + eps).pow(1.0 / temperature)  # (B, K, H*W)
    return mass.log() - mass.sum(dim=-1, keepdim=True).log()


def mpd_loss(student: Tensor, teacher: Tensor, weight: Tensor | None = None) -> Tensor:
    """Eq. (1) as JointsMSELoss: 0.5 * mean over (B, K, H, W) of (o^s - o^t)^2 = the printed
    (1/K) sum_k ||o_k^s - o_k^t||^2 times 1/(2HW), batch-averaged. (B, K, H, W) each -> scalar."""
    _check_pair(student, teacher)
    if weight is None:
        weight = student.new_ones(student.shape[:2])  # (B, K)
    return joints_mse(student, teacher.detach(), weight)  # Eq. (1)


def kpd_pixel_terms(student: Tensor, teacher: Tensor, mode: str = 'normalize', temperature: float = 1.0,
                    eps: float = 1e-4, clamp: str = 'straight_through') -> Tensor:
    """The summands of Eq. (2), p_t * (log p_t - log p_s), per pixel: (B, K, H, W)."""
    _check_pair(student, teacher)
    log_p_t = heatmap_log_distribution(teacher.detach(), mode, temperature, eps, clamp)  # (B, K, H*W)
    log_p_s = heatmap_log_distribution(student, mode, temperature, eps, clamp)           # (B, K, H*W)
    terms = log_p_t.exp() * (log_p_t - log_p_s)  # Eq. (2)
    return terms.view(student.shape)


def kpd_loss(student: Tensor, teacher: Tensor, weight: Tensor | None = None, mode: str = 'normalize',
             temperature: float = 1.0, eps: float = 1e-4, reduction: str = 'mse_scale',
             clamp: str = 'straight_through') -> Tensor:
    """Eq. (2): KL(teacher || student) summed over the pixels of each heatmap, mean over the K
    heatmaps and the batch, times T^2; then divided by 2HW (``'mse_scale'``, the JointsMSELoss
    factor of Eq. 1's MSE), by HW (``'mean'``) or by nothing (``'batchmean'``)."""
    if reduction not in KL_REDUCTIONS:
        raise ValueError(f'kl_reduction must be one of {KL_REDUCTIONS}, got {reduction!r}')
    terms = kpd_pixel_terms(student, teacher, mode, temperature, eps, clamp)  # (B, K, H, W)
    per_map = terms.flatten(2).sum(-1)  # (B, K)  KL of each heatmap
    if weight is not None:
        per_map = per_map * weight.reshape(per_map.shape)
    loss = per_map.mean() * temperature ** 2  # Eq. (2): (1/K) sum_k, batch mean; Hinton's T^2
    pixels = terms[0, 0].numel()  # H * W
    if reduction == 'mse_scale':
        loss = loss / (2 * pixels)  # Eq. (3): the 1/(2HW) joints_mse applies to Eq. (1)
    elif reduction == 'mean':
        loss = loss / pixels
    return loss


def mapd_loss(student: Tensor, teacher: Tensor | None, target: Tensor, target_weight: Tensor,
              alpha: float = DEFAULTS['alpha'], beta: float = DEFAULTS['beta'], mset: bool = True,
              klt: bool = True, kl_mode: str = 'normalize', temperature: float = 1.0,
              kl_reduction: str = 'mse_scale', kl_clamp: str = 'straight_through', eps: float = 1e-4,
              kd_target_weight: bool = False) -> dict[str, Tensor]:
    """Eq. (3) as a dict of already-weighted terms {'mse_gt', 'mpd', 'kpd'} (zero-weight terms left out)."""
    w_mpd, w_kpd, w_gt = mapd_weights(alpha, beta, mset, klt)
    terms = {'mse_gt': w_gt * joints_mse(student, target, target_weight)}  # Eq. (3), L_mse
    if w_mpd == 0 and w_kpd == 0:
        return terms
    if teacher is None:
        raise ValueError('MAPD with alpha or beta > 0 needs teacher heatmaps, got None')
    kd_weight = target_weight if kd_target_weight else None
    if w_mpd > 0:
        terms['mpd'] = w_mpd * mpd_loss(student, teacher, kd_weight)  # Eq. (3), alpha * Eq. (1)
    if w_kpd > 0:
        terms['kpd'] = w_kpd * kpd_loss(student, teacher, kd_weight, kl_mode, temperature, eps,
                                        kl_reduction, kl_clamp)  # Eq. (3), beta * Eq. (2)
    return terms


def _check_pair(student: Tensor, teacher: Tensor) -> None:
    if student.dim() != 4 or student.shape != teacher.shape:
        raise ValueError(f'MAPD compares heatmaps of the same shape (B, K, H, W); got student '
                         f'{tuple(student.shape)} and teacher {tuple(teacher.shape)}')


class MAPD(Method):
    """Student trained with Eq. (3) against one frozen heatmap teacher (HRNet-W32 in the paper)."""

    def __init__(self, teacher_name: str | None = Params.teacher_name, **params):
        super().__init__()
        params = vars(method_params(Params, {**params, 'teacher_name': teacher_name}, 'MAPD'))
        self.teacher_name = params.pop('teacher_name')
        self.params = params

    @property
    def needs_teacher(self) -> bool:
        w_mpd, w_kpd, _ = mapd_weights(self.params['alpha'], self.params['beta'],
                                       self.params['mset'], self.params['klt'])
        return w_mpd > 0 or w_kpd > 0

    def forward(self, batch: dict, student: nn.Module, teachers: dict[str, nn.Module]):
        out = student(batch['image'])
        teacher_heatmaps = None
        if self.needs_teacher:
            teacher = _pick_teacher(teachers, self.teacher_name)
            with torch.no_grad():
                teacher_heatmaps = teacher(batch['image'])['heatmaps']  # (B, K, H/4, W/4)
        terms = mapd_loss(out['heatmaps'], teacher_heatmaps, batch['heatmap'], batch['target_weight'],
                          **self.params)
        return terms, out


def _pick_teacher(teachers: dict[str, nn.Module], name: str | None) -> nn.Module:
    if name in teachers:
        return teachers[name]
    if len(teachers) == 1:
        return next(iter(teachers.values()))
    raise ValueError(f'MAPD needs one teacher (key {name!r}); got teachers {sorted(teachers)}')


def build_method(params: dict, student: nn.Module, teachers: dict[str, nn.Module], train_set) -> MAPD:
    """METHODS entry: ``params`` are ``Params``' fields."""
    method = MAPD(**dict(params or {}))
    if method.needs_teacher and not teachers:
        raise ValueError('MAPD with alpha or beta > 0 needs a teacher: set ExperimentConfig.teachers '
                         "(e.g. {'teacher': <HRNet-W32 config>}) or use alpha = beta = 0")
    return method
