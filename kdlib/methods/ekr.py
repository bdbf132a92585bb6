"""Enhanced Knowledge Review (EKR): cross-stage distillation with MFT and weight allocation.

Xu, Yan & Zheng, "Lightweight Human Pose Estimation with Enhanced Knowledge Review", BMVC 2024.
Teacher HRNet-W32 and students Lite-HRNet-18/30, all with a SimDR (SimCC) head. The student loss is

    L = L_task + alpha * L_fkd + beta * L_vkd,   alpha = 0.005, beta = 0.04          Eq. (8), Sec. 4.1

- L_task (Eq. 6): visibility-masked cross-entropy against 1D Gaussian labels, mean over the L bins
  (``losses.simcc_kl``; KL and CE differ by the labels' entropy, a constant: same gradients).
- L_fkd (Eq. 1, 2, 5): every teacher stage l guides every student stage m >= l. For each pair,
  ``f_align`` (a transposed conv up to the teacher stage's (h, w) where the sizes differ, then a
  1x1 conv to its channels; Section 3.2) maps F_{s_m} to the teacher's shape. Following Knowledge
  Review [4], the aligned features of one teacher stage are fused deep -> shallow with ABF (the
  student stage attended against the deeper fused residual), transformed by MFT (multiple receptive
  fields, Section 3.2, Fig. 3a), and compared with F_{t_l} by D = MSE (Section 3.1).
- WA (Eq. 2-5): per-sample b x b similarity matrices S_m = F_m F_m^T, T_l = F_l F_l^T (Eq. 3), each
  row projected (linear -> ReLU -> LayerNorm -> L2 norm), gamma^i(t_l, s_m) = softmax over the
  (l, m) pairs of S_m[i] . T_l[i] (Eq. 4), L_fkd = mean_i sum_{l, m} gamma^i D_i (Eq. 5).
- L_vkd (Eq. 7): KL(teacher || student) on the SimCC x/y distributions, T = 1
  (``distillers.vanilla_kd`` on ``losses.simcc_kd``, mmpose DWPose ``KDLoss``).

Reductions (what makes alpha and beta mean what they mean in the paper). The paper's Eq. (6) and
Eq. (5) SUM over the persons of a batch, Eq. (7) AVERAGES over them (1/N); mmpose, which the paper
runs on, does the same (``KLDiscretLoss`` sums over the batch, DWPose ``KDLoss`` averages). Eq. (6)
and (7) print no 1/K, mmpose divides both by K; only alpha's scale depends on it, and the code's
/K is kept (the kit's ``simcc_kl`` divides by K). The kit's task loss averages over the batch, so
EKR trains Eq. (8) divided by N: task loss (mean over N), alpha * mean_i sum_p gamma_ip D_ip, and
beta * simcc_kd / N (``vkd_reduction='paper'``). Measured on fixed realistic tensors (MPII 256x256:
512 bins per axis, K = 16, batch 32; ``tests/test_ekr_balance.py``): beta L_vkd / L_task = 0.91
(it was 464 when the KD term summed over the joints, and is 29 with ``vkd_reduction='batchmean'``),
alpha L_fkd / L_task = 4.3 with D = MSE on features at initialisation (2.7 with HCL). On the
``quick`` profile (64x64 input: 128 bins, batch 32, a 4-epoch kit teacher; ``kdlib.balance``) the
first batch gives alpha L_fkd = 16 x L_task at initialisation and 6.8 x after training (the teacher's
stage 3-4 maps have RMS 12-22: HRNet's residual branches grow with depth) and beta L_vkd = 0.08 x
and 0.05 x (that teacher's 1D distributions are still nearly flat; the ratio scales with L / N).
D's reduction is ReviewKD's ``hcl_loss`` full-resolution term, ``F.mse_loss(reduction='mean')``:
the mean over (C, h, w) per sample (a sum over C*h*w ~ 1e6 would make alpha = 0.005 absurd).

Choices the paper leaves open (all parameters of ``EKR``/``build_method``):
- Which stage maps: ``stage_key='stage_pyramid'`` (default), each stage's newest, lowest-resolution
  branch (1/4, 1/8, 1/16, 1/32; CONTRACTS). Section 3.2's transposed conv ("when the dimensions ...
  do not align") only has work to do on such a pyramid, as in ReviewKD, where a deeper student
  stage m is smaller than teacher stage l and is upsampled by 2^(m - l). ``stage_key='stages'``
  reads each stage's highest-resolution map instead (the maps the HRNet-family heads read): on
  HRNet-W32 -> Lite-HRNet all of them are at 1/4 resolution and ``f_align`` is a 1x1 conv + BN.
- D: ``distance='mse'`` (Eq. 1: "MSE is employed as the distance function D"; Section 3.2: MFT
  replaces ReviewKD's pooling pyramid, because large pooling windows lose the spatial information
  pose needs). ``distance='hcl'`` gives ReviewKD's hierarchical-context loss with ``hcl_levels``
  (pooled grids kept at the map's aspect ratio), for comparing with Table 1's ReviewKD row.
- MFT branches: depthwise convs with kernels (1, 3, 5) and a 3x3 average pool (receptive fields
  1, 3, 5 and a smoothing context), mixed by learned softmax branch weights, then a 1x1 conv + BN.
  Inception-style multi-size convs with pooling is what Fig. 3a shows; depthwise keeps them cheap on
  the teacher's 256-channel 1/4-resolution stage, and being linear they run as one fused depthwise
  conv (see ``MFT``). One MFT per teacher stage, shared by the student stages it guides.
  ``mft_kernels``/``mft_pools`` change the branches.
- WA follows SemCKD (Chen et al. AAAI 2021), whose similarity-matrix attention Eq. (3-4) restate:
  rows are L2-normalised before projection (raw Gram entries scale with C*h*w) and zero-padded to
  ``wa_batch`` (the linear layer's input is a batch-sized row; 64 >= every profile's batch, and
  >= Section 4.1's 32). Padding with zeros only adds the bias, so smaller last batches are exact.
  The student features entering WA are detached: the weights are learned by the projections only.
- With WA off, gamma = 1/P for the P pairs, so that alpha means the same in every ablation row
  (Eq. 1's literal sum is P times larger).
- ABF runs at the teacher stage's channels with an ``abf_channels`` = 32-wide middle (ReviewKD uses
  min(512, C)); 32 keeps the 3x3 output conv of the 10 pairs cheap at 1/4 resolution. ``fusion='none'`` skips ABF.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from kdlib.methods.base import Method, method_params, task_loss
from kdlib.methods.distillers import (ABF, VKD_REDUCTIONS, batch_similarity, hcl_loss, input_size_of,
                                      single_teacher, stage_shapes, vanilla_kd)

__all__ = ['FeatureAlign', 'MFT', 'WeightAllocation', 'EKR', 'build_method', 'cross_stage_pairs',
           'similarity_matrix']

ALPHA, BETA = 0.005, 0.04          # Eq. (8) weights, Section 4.1
DISTANCES = ('mse', 'hcl')         # D of Eq. (1): the paper's MSE, or ReviewKD's HCL


def cross_stage_pairs(num_teacher: int, num_student: int) -> list[tuple[int, int]]:
    """(l, m) with m >= l (0-based): teacher stage l guides student stages l..M-1 (Eq. 1)."""
    return [(l, m) for l in range(num_teacher) for m in range(l, num_student)]


class FeatureAlign(nn.Module):
    """f_align of Eq. (1): resize student (C_s, h_s, w_s) to the teacher's (h_t, w_t), then 1x1 conv.

    Upsampling by integer per-axis factors uses a transposed conv with kernel = stride = (r_h, r_w)
    (Section 3.2); integer downsampling a strided conv; any other ratio bilinear interpolation.
    """

    def __init__(self, s_shape: tuple[int, int, int], t_shape: tuple[int, int, int]):
        super().__init__()
        (cs, hs, ws), (ct, ht, wt) = s_shape, t_shape
        self.out_size = (ht, wt)
        if (hs, ws) == (ht, wt):
            self.resize = nn.Identity()
        elif ht % hs == 0 and wt % ws == 0 and ht >= hs and wt >= ws:
            r = (ht // hs, wt // ws)
            self.resize = nn.ConvTranspose2d(cs, cs, kernel_size=r, stride=r, bias=False)
        elif hs % ht == 0 and ws % wt == 0:
            r = (hs // ht, ws // wt)
            self.resize = nn.Conv2d(cs, cs, kernel_size=r, stride=r, bias=False)
        else:
            self.resize = None
        self.proj = nn.Sequential(nn.Conv2d(cs, ct, 1, bias=False), nn.BatchNorm2d(ct))

    def forward(self, x: torch.Tensor) -> torch.Tensor:           # (B, C_s, h_s, w_s)
        if self.resize is None:
            x = F.interpolate(x, size=self.out_size, mode='bilinear', align_corners=False)
        else:
            x = self.resize(x)
        return self.proj(x)                                        # (B, C_t, h_t, w_t)


class MFT(nn.Module):
    """Multiple receptive-field feature transform (Section 3.2, Fig. 3a).

    Branches over the aligned student features: a depthwise k x k conv for each k in ``kernels``
    (receptive fields 1, 3, 5 by default) and a p x p average pool for each p in ``pools``; they are
    mixed by learned softmax weights w (``branch_weights``), then a 1x1 conv + BN:

        MFT(x) = BN(conv1x1(sum_b w_b * branch_b(x)))

    Every branch is a per-channel linear filter, so the weighted sum is computed as ONE depthwise
    conv whose kernel is sum_b w_b * K_b (each K_b zero-padded to the largest size; the pool is the
    constant 1/p^2 kernel with zero padding). That is exact (``forward_branches`` computes the
    branches one by one, and the tests compare the two) and costs one conv instead of |branches|.
    ``branch_shares`` gives each branch's share of the mixed kernel's L1 mass, w_b |K_b|_1 /
    sum_c w_c |K_c|_1: which receptive field carries the most weight.
    """

    def __init__(self, channels: int, kernels=(1, 3, 5), pools=(3,)):
        super().__init__()
        if not kernels and not pools:
            raise ValueError('MFT needs at least one conv kernel or pooling size')
        if any(k % 2 == 0 for k in (*kernels, *pools)):
            raise ValueError(f'MFT kernel and pool sizes must be odd, got {kernels} and {pools}')
        self.channels, self.kernels, self.pools = channels, tuple(kernels), tuple(pools)
        self.size = max((*kernels, *pools))
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(channels, 1, k, k) * (2.0 / (k * k)) ** 0.5) for k in kernels)
        self.names = [f'conv{k}x{k}' for k in kernels] + [f'avgpool{p}x{p}' for p in pools]
        self.logits = nn.Parameter(torch.zeros(len(self.names)))
        self.fuse = nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels))

    def branch_weights(self) -> torch.Tensor:
        return self.logits.softmax(0)                              # (n_branches,)

    def branch_kernels(self) -> list[torch.Tensor]:
        """K_b padded to (C, 1, size, size), in ``names`` order."""
        pad = lambda k, n: F.pad(k, [(self.size - n) // 2] * 4)  # noqa: E731
        pools = [torch.full((self.channels, 1, p, p), 1.0 / p ** 2, device=self.logits.device)
                 for p in self.pools]
        return ([pad(w, w.shape[-1]) for w in self.weights] + [pad(k, k.shape[-1]) for k in pools])

    def branch_shares(self) -> torch.Tensor:
        mass = torch.stack([k.abs().sum() for k in self.branch_kernels()]) * self.branch_weights()
        return mass / mass.sum()                                   # (n_branches,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:           # (B, C, h, w)
        w = self.branch_weights()
        kernel = sum(w[i] * k for i, k in enumerate(self.branch_kernels()))   # (C, 1, s, s)
        mixed = F.conv2d(x, kernel.to(x.dtype), padding=self.size // 2, groups=self.channels)
        return self.fuse(mixed)                                    # (B, C, h, w)

    def forward_branches(self, x: torch.Tensor) -> torch.Tensor:
        """The same output computed branch by branch (reference for the fused kernel)."""
        w, outs = self.branch_weights(), []
        for weight in self.weights:
            outs.append(F.conv2d(x, weight, padding=weight.shape[-1] // 2, groups=self.channels))
        for p in self.pools:
            outs.append(F.avg_pool2d(x, p, stride=1, padding=p // 2, count_include_pad=True))
        return self.fuse(sum(w[i] * o for i, o in enumerate(outs)))


def similarity_matrix(f: torch.Tensor) -> torch.Tensor:
    """Eq. (3): S = F F^T with F (b, c*h*w); rows L2-normalised -> (b, b)."""
    return batch_similarity(f)                                     # Eq. (3), fp32 under AMP


class _RowEmbed(nn.Module):
    """One similarity row -> linear -> ReLU -> LayerNorm -> L2 norm (Section 3.3)."""

    def __init__(self, batch: int, dim: int):
        super().__init__()
        self.batch = batch
        self.net = nn.Sequential(nn.Linear(batch, dim), nn.ReLU(inplace=True), nn.LayerNorm(dim))

    def forward(self, sim: torch.Tensor) -> torch.Tensor:         # (b, b)
        b = sim.shape[0]
        if b > self.batch:
            raise ValueError(f'WA was built for batches of at most {self.batch} samples, got {b}: '
                             f'set method param wa_batch >= the training batch size')
        sim = F.pad(sim, (0, self.batch - b))                      # (b, wa_batch)
        return F.normalize(self.net(sim), dim=1)                   # (b, dim)


class WeightAllocation(nn.Module):
    """Attention weights gamma^i(t_l, s_m) over the cross-stage pairs (Eq. 3-4)."""

    def __init__(self, num_teacher: int, num_student: int, pairs, batch: int = 32, dim: int = 64,
                 temperature: float = 1.0):
        super().__init__()
        self.pairs, self.temperature = list(pairs), temperature
        self.student_embed = nn.ModuleList(_RowEmbed(batch, dim) for _ in range(num_student))
        self.teacher_embed = nn.ModuleList(_RowEmbed(batch, dim) for _ in range(num_teacher))

    def forward(self, s_stages, t_stages) -> torch.Tensor:
        s_rows = [emb(similarity_matrix(f.detach())) for emb, f in zip(self.student_embed, s_stages)]
        t_rows = [emb(similarity_matrix(f)) for emb, f in zip(self.teacher_embed, t_stages)]
        logits = torch.stack([(s_rows[m] * t_rows[l]).sum(1) for l, m in self.pairs], dim=1)  # (b, P)
        return (logits / self.temperature).softmax(dim=1)          # Eq. (4): sums to 1 per sample


@dataclass(frozen=True)
class Params:
    """``method_params`` of 'ekr' (the module docstring says why each open choice is what it is)."""
    alpha: float = ALPHA               # Eq. (8) weight of L_fkd, Section 4.1
    beta: float = BETA                 # Eq. (8) weight of L_vkd, Section 4.1
    cross_stage: bool = True           # Table 4: L_fkd at all
    mft: bool = True                   # Table 4: multi-scale feature transform (Fig. 3a)
    wa: bool = True                    # Table 4: weight allocation (Eq. 3-4)
    vkd: bool = True                   # Table 4: SimCC vanilla KD (L_vkd)
    fusion: str = 'abf'                # ReviewKD's attention-based fusion | 'none'
    temperature: float = 1.0           # of L_vkd's softmax (1: the printed formula)
    distance: str = 'mse'              # D of Eq. (1): MSE (Section 3.1) | 'hcl' (ReviewKD)
    hcl_levels: tuple = (4, 2, 1)      # 'hcl' only: ReviewKD's pooled grids
    vkd_reduction: str = 'paper'       # L_vkd's reduction (module docstring)
    stage_key: str = 'stage_pyramid'   # which stage maps (module docstring)
    mft_kernels: tuple = (1, 3, 5)     # MFT's depthwise branches (Fig. 3a)
    mft_pools: tuple = (3,)            # MFT's average-pool branch
    wa_batch: int = 64                 # WA's row length (SemCKD: a batch-sized row)
    wa_dim: int = 64                   # WA's projection width (SemCKD)
    wa_temperature: float = 1.0        # WA's softmax temperature (SemCKD)
    abf_channels: int = 32             # ABF's middle width (ReviewKD: min(512, C))

    def __post_init__(self):
        if self.fusion not in ('abf', 'none'):
            raise ValueError(f"fusion must be 'abf' or 'none', got {self.fusion!r}")
        if self.distance not in DISTANCES:
            raise ValueError(f'distance must be one of {DISTANCES}, got {self.distance!r}')
        if self.vkd_reduction not in VKD_REDUCTIONS:
            raise ValueError(f'vkd_reduction must be one of {VKD_REDUCTIONS}, got {self.vkd_reduction!r}')


class EKR(Method):
    """Cross-stage review distillation + MFT + WA + SimCC vanilla KD (Eq. 1-8).

    Switches (Table 4): ``cross_stage`` (L_fkd at all), ``mft``, ``wa``, ``vkd`` (L_vkd); Table 4's
    first row is the undistilled student (method 'supervised'). Only the enabled parts are built,
    so every parameter receives a gradient (DDP without ``find_unused_parameters``).
    Each training step adds its gamma (b, P) to a running per-epoch mean (``training_gamma``).
    """

    def __init__(self, s_shapes, t_shapes, **params):
        """``s_shapes`` / ``t_shapes``: (C, h, w) of each student / teacher stage; ``params``:
        ``Params``' fields."""
        super().__init__()
        p = method_params(Params, params, 'EKR')
        alpha, beta, temperature, cross_stage, mft, wa, vkd = (p.alpha, p.beta, p.temperature, p.cross_stage,
                                                               p.mft, p.wa, p.vkd)
        distance, hcl_levels, vkd_reduction, stage_key = p.distance, p.hcl_levels, p.vkd_reduction, p.stage_key
        fusion, abf_channels, mft_kernels, mft_pools = p.fusion, p.abf_channels, p.mft_kernels, p.mft_pools
        wa_batch, wa_dim, wa_temperature = p.wa_batch, p.wa_dim, p.wa_temperature
        self.alpha, self.beta, self.temperature = alpha, beta, temperature
        self.cross_stage, self.use_mft, self.use_wa, self.vkd = cross_stage, mft, wa, vkd
        self.distance, self.hcl_levels = distance, tuple(hcl_levels)
        self.vkd_reduction, self.stage_key = vkd_reduction, stage_key
        self.s_shapes, self.t_shapes = [tuple(s) for s in s_shapes], [tuple(t) for t in t_shapes]
        self.pairs = cross_stage_pairs(len(t_shapes), len(s_shapes)) if cross_stage else []
        self.align = nn.ModuleDict({f'{l}_{m}': FeatureAlign(self.s_shapes[m], self.t_shapes[l])
                                    for l, m in self.pairs})
        self.abf = nn.ModuleDict({f'{l}_{m}': self._abf(self.t_shapes[l][0], abf_channels,
                                                        fuse=m < len(s_shapes) - 1)
                                  for l, m in self.pairs}) if fusion == 'abf' and cross_stage else None
        self.mft = (nn.ModuleList(MFT(t[0], mft_kernels, mft_pools) for t in self.t_shapes)
                    if mft and cross_stage else None)
        self.wa = (WeightAllocation(len(t_shapes), len(s_shapes), self.pairs, wa_batch, wa_dim,
                                    wa_temperature) if wa and cross_stage else None)
        self.register_buffer('gamma_sum', torch.zeros(max(1, len(self.pairs))))
        self.register_buffer('gamma_count', torch.zeros(()))
        self.gamma_history: list[list[float]] = []                # per-epoch mean gamma (P,)
        self.last_gamma = None

    @staticmethod
    def _abf(channels, mid, fuse):
        return ABF(channels, min(mid, channels), channels, fuse)

    # -- Eq. (1): per-pair student features at the teacher's shape ------------------------------
    def pair_features(self, s_stages) -> dict[tuple[int, int], torch.Tensor]:
        feats = {}
        for l in range(len(self.t_shapes)):
            residual = None
            for m in reversed([m for ll, m in self.pairs if ll == l]):        # deep -> shallow
                x = self.align[f'{l}_{m}'](s_stages[m])                    # (B, C_t, h_t, w_t)
                if self.abf is not None:
                    x, residual = self.abf[f'{l}_{m}'](x, residual)        # review fusion
                feats[(l, m)] = self.mft[l](x) if self.mft is not None else x
        return feats

    def distance_per_sample(self, fs: torch.Tensor, ft: torch.Tensor) -> torch.Tensor:
        """D of Eq. (1) per sample: MSE = mean over (C, h, w) (ReviewKD's ``F.mse_loss``), or HCL -> (B,)."""
        if self.distance == 'hcl':
            return hcl_loss(fs, ft, self.hcl_levels, per_sample=True)
        return (fs.float() - ft.float()).pow(2).mean((1, 2, 3))   # (B,)

    def pair_distances(self, s_stages, t_stages) -> torch.Tensor:
        """D(F_{t_l}[i] - f_align(F_{s_m}[i])) for every pair -> (B, P)."""
        feats = self.pair_features(s_stages)
        return torch.stack([self.distance_per_sample(feats[(l, m)], t_stages[l])
                            for l, m in self.pairs], dim=1)       # (B, P)

    def pair_weights(self, s_stages, t_stages) -> torch.Tensor:
        if self.wa is None:
            b = s_stages[0].shape[0]
            return s_stages[0].new_full((b, len(self.pairs)), 1.0 / len(self.pairs))
        return self.wa(s_stages, t_stages)                         # (B, P), Eq. (4)

    def feature_loss(self, s_stages, t_stages) -> torch.Tensor:
        dist = self.pair_distances(s_stages, t_stages)             # (B, P)
        gamma = self.pair_weights(s_stages, t_stages)              # (B, P)
        self._record(gamma.detach())
        return (gamma * dist).sum(1).mean()                        # Eq. (5), batch sum -> mean (Eq. 8 / N)

    def _record(self, gamma):
        self.last_gamma = gamma
        if self.training:
            self.gamma_sum += gamma.sum(0)
            self.gamma_count += gamma.shape[0]

    def forward(self, batch, student, teachers):
        teacher = single_teacher(teachers)
        s_out = student(batch['image'])
        with torch.no_grad():
            t_out = teacher(batch['image'])
        terms = task_loss(s_out, batch)                            # Eq. (6), mean over N
        if self.cross_stage:
            fkd = self.feature_loss(s_out[self.stage_key], t_out[self.stage_key])     # Eq. (5)
            terms['fkd'] = self.alpha * fkd                                           # Eq. (8)
        if self.vkd:
            vkd = vanilla_kd(s_out, t_out, self.temperature, self.vkd_reduction)     # Eq. (7)
            terms['vkd'] = self.beta * vkd                                            # Eq. (8)
        return terms, s_out

    def on_epoch_start(self, epoch: int, num_epochs: int, lr: float) -> None:
        """Close the previous epoch's mean gamma (P,) into ``gamma_history``."""
        if self.gamma_count > 0:
            self.gamma_history.append((self.gamma_sum / self.gamma_count).tolist())
        self.gamma_sum.zero_()
        self.gamma_count.zero_()

    def training_gamma(self) -> list[list[float]]:
        """Mean gamma of every finished epoch plus the running one (the run's last epoch)."""
        running = [(self.gamma_sum / self.gamma_count).tolist()] if self.gamma_count > 0 else []
        return self.gamma_history + running

    def get_extra_state(self):                                     # resumed runs keep the history
        return {'gamma_history': self.gamma_history}

    def set_extra_state(self, state):
        self.gamma_history = list(state.get('gamma_history', []))

    # -- inspection helpers for the notebook ------------------------------------------------------
    @torch.no_grad()
    def attention_weights(self, student, teacher, images) -> torch.Tensor:
        """gamma (B, P) for a batch of images, WA in eval mode (uniform when WA is off)."""
        s, t = student(images)[self.stage_key], teacher(images)[self.stage_key]
        return self.pair_weights(s, t)

    def mft_branch_weights(self) -> dict[str, list[float]]:
        """Each teacher stage's MFT branch shares (``MFT.branch_shares``): {branch: [per stage]}."""
        if self.mft is None:
            return {}
        w = torch.stack([m.branch_shares().detach().cpu() for m in self.mft])     # (L, n_branches)
        return {name: w[:, i].tolist() for i, name in enumerate(self.mft[0].names)}

    def gamma_matrix(self, gamma) -> torch.Tensor:
        """Mean gamma (P,) or (B, P) -> (L teacher stages, M student stages), NaN where m < l."""
        g = torch.as_tensor(gamma, dtype=torch.float32)
        g = g.mean(0) if g.dim() == 2 else g
        out = torch.full((len(self.t_shapes), len(self.s_shapes)), float('nan'))
        for p, (l, m) in enumerate(self.pairs):
            out[l, m] = g[p]
        return out


def build_method(params: dict, student, teachers, train_set) -> EKR:
    """EKR from ``params``: ``Params``' fields (+ ``input_size``, else the train set's)."""
    params = dict(params or {})
    given = {'input_size': params.pop('input_size')} if 'input_size' in params else {}
    key = method_params(Params, params, 'EKR').stage_key     # checked before the shapes cost a forward
    size = input_size_of(given, train_set)
    s_shapes = stage_shapes(student, size, key)
    t_shapes = stage_shapes(single_teacher(teachers), size, key)
    return EKR(s_shapes, t_shapes, **params)


