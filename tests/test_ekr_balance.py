"""EKR's loss balance (Eq. 6-8) and RKD's distances, pinned against independent numpy computations.

The tensors are fixed and realistic for the paper's MPII setting: 256x256 input, SimCC split 2
(512 bins per axis), K = 16 joints, batch N = 32 (Section 4.1), normalised 1D Gaussian labels with
sigma = 6 bins, a student whose logits peak near the label (offset ~3 bins, broader, noisy), a
teacher closer to it; stage features are post-ReLU maps. The reference is written from the paper's
and mmpose's formulas with numpy loops, never with the kit's loss functions.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from kdlib.methods import distillers as D
from kdlib.methods import ekr as E

torch.set_num_threads(1)

N, K, BINS, SIGMA = 32, 16, 512, 6.0
T_SHAPES = [(64, 16, 16), (32, 16, 16), (32, 16, 16), (32, 16, 16)]   # HRNet-W32-like stages
S_SHAPES = [(32, 16, 16), (40, 16, 16), (40, 16, 16), (40, 16, 16)]   # Lite-HRNet-18-like stages


def _gauss(centre, sigma):
    grid = torch.arange(BINS).double()
    return torch.exp(-(grid - centre[..., None]) ** 2 / (2 * sigma ** 2))


def _realistic(seed=0):
    g = torch.Generator().manual_seed(seed)
    rand = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    out = {}
    for axis in 'xy':
        mu = 40 + torch.rand(N, K, generator=g, dtype=torch.float64) * (BINS - 80)
        out[f'label_{axis}'] = (_gauss(mu, SIGMA) / (SIGMA * (2 * np.pi) ** 0.5)).float()
        out[f's_{axis}'] = (6.0 * _gauss(mu + 3 * rand(N, K), 8.0) + 0.5 * rand(N, K, BINS)).float()
        out[f't_{axis}'] = (8.0 * _gauss(mu + 1.5 * rand(N, K), 6.0) + 0.3 * rand(N, K, BINS)).float()
    out['weight'] = (torch.rand(N, K, generator=g) > 0.12).float()
    out['t_stages'] = [torch.relu(0.3 + torch.randn(N, *s, generator=g)) for s in T_SHAPES]
    out['s_stages'] = [torch.relu(0.3 + torch.randn(N, *s, generator=g)) for s in S_SHAPES]
    return out


class _Fixed(nn.Module):
    """A 'network' returning fixed outputs (the method only reads its output dict)."""

    def __init__(self, out):
        super().__init__()
        self.out = out

    def forward(self, image):
        return dict(self.out)


def _ekr_terms(data, **params):
    torch.manual_seed(0)
    method = E.EKR(S_SHAPES, T_SHAPES, **params)
    student = _Fixed({'simcc_x': data['s_x'], 'simcc_y': data['s_y'], 'stage_pyramid': data['s_stages']})
    teacher = _Fixed({'simcc_x': data['t_x'], 'simcc_y': data['t_y'],
                      'stage_pyramid': data['t_stages']}).eval()
    batch = {'image': torch.zeros(N, 3, 8, 8), 'simcc_x': data['label_x'], 'simcc_y': data['label_y'],
             'target_weight': data['weight']}
    terms, _ = method(batch, student, {'teacher': teacher})
    return method, {k: float(v.detach()) for k, v in terms.items()}


# ------------------------------------------------------------------ independent reference (numpy)
def _log_softmax(z):
    z = z - z.max()
    return z - np.log(np.exp(z).sum())


def _kl(p, log_p, log_q):
    """KL(p || q) summed over the bins, 0 log 0 = 0."""
    return float(np.where(p > 0, p * (log_p - log_q), 0.0).sum())


def _paper_terms(data, gamma, aligned):
    """Eq. (6), (5), (7) with the reductions of the paper / mmpose, written out per person and joint.

    task  (Eq. 6, mmpose KLDiscretLoss): sum_n (1/K) sum_k M_nk [mean_bins KL(V||S)_x + (..)_y]
    fkd   (Eq. 5): sum_i sum_p gamma_ip * mean_{c,h,w} (F_t - f_align(F_s))^2
    vkd   (Eq. 7, DWPose KDLoss): (1/N) sum_n (1/K) sum_k [KL(T||S)_x + KL(T||S)_y], KL summed over bins
    """
    arr = {k: v.double().numpy() for k, v in data.items() if isinstance(v, torch.Tensor)}
    task = vkd = 0.0
    for n in range(N):
        for k in range(K):
            for axis in 'xy':
                label = arr[f'label_{axis}'][n, k]
                log_s = _log_softmax(arr[f's_{axis}'][n, k])
                log_t = _log_softmax(arr[f't_{axis}'][n, k])
                log_label = np.log(np.where(label > 0, label, 1.0))
                task += arr['weight'][n, k] * _kl(label, log_label, log_s) / BINS / K
                vkd += _kl(np.exp(log_t), log_t, log_s) / K / N
    fkd = 0.0
    for p, (l, m) in enumerate(sorted(aligned)):
        ft, fs = data['t_stages'][l].double().numpy(), aligned[(l, m)].double().numpy()
        for i in range(N):
            fkd += gamma[i, p] * np.mean((ft[i] - fs[i]) ** 2)
    return task, fkd, vkd


@pytest.mark.parametrize('params', [{}, {'mft': False, 'wa': False, 'fusion': 'none'}])
def test_ekr_term_ratios_match_the_paper(params):
    """alpha L_fkd / L_task and beta L_vkd / L_task as the paper's Eq. (5)-(8) give them.

    The kit trains Eq. (8) / N (task and fkd averaged over the batch, L_vkd / N), so both ratios
    equal the paper's; a sum over the joints or pixels, or a mean over the bins, in any term
    moves a ratio by a factor of 16, 256 or 512.
    """
    data = _realistic()
    method, terms = _ekr_terms(data, **params)
    with torch.no_grad():
        aligned = method.pair_features(data['s_stages'])           # f_align(F_s): the method's own maps
    gamma = method.last_gamma.double().numpy()                     # (N, P), Eq. (4) or 1/P
    task, fkd, vkd = _paper_terms(data, gamma, aligned)
    assert terms['simcc_kl'] * N == pytest.approx(task, rel=1e-4)  # Eq. (6) = N x the kit's mean
    assert terms['vkd'] / terms['simcc_kl'] == pytest.approx(E.BETA * vkd / task, rel=1e-4)
    assert terms['fkd'] / terms['simcc_kl'] == pytest.approx(E.ALPHA * fkd / task, rel=1e-4)
    # the measured balance (module docstring of kdlib.methods.ekr): KD ~0.9x, features ~4.3x
    assert terms['vkd'] / terms['simcc_kl'] == pytest.approx(0.907, rel=0.02)
    assert terms['fkd'] / terms['simcc_kl'] == pytest.approx(4.28, rel=0.02)


def test_vkd_reduction_batchmean_is_n_times_heavier():
    data = _realistic()
    _, paper = _ekr_terms(data, mft=False, wa=False, fusion='none')
    _, dwpose = _ekr_terms(data, mft=False, wa=False, fusion='none', vkd_reduction='batchmean')
    assert dwpose['vkd'] == pytest.approx(N * paper['vkd'], rel=1e-6)
    assert dwpose['vkd'] / dwpose['simcc_kl'] == pytest.approx(29.0, rel=0.02)
    with pytest.raises(ValueError, match='vkd_reduction'):
        E.EKR(S_SHAPES, T_SHAPES, vkd_reduction='sum')


def test_hcl_distance_option():
    """distance='hcl' (ReviewKD) is below the plain MSE on these maps: pooled grids differ less."""
    data = _realistic()
    _, mse = _ekr_terms(data, mft=False, wa=False, fusion='none')
    _, hcl = _ekr_terms(data, mft=False, wa=False, fusion='none', distance='hcl')
    assert hcl['fkd'] < mse['fkd'] and hcl['vkd'] == mse['vkd']
    with pytest.raises(ValueError, match='distance'):
        E.EKR(S_SHAPES, T_SHAPES, distance='l1')


def test_kd_distiller_is_ekr_vkd_alone():
    data = _realistic()
    _, ekr = _ekr_terms(data, cross_stage=False)
    s_out = {'simcc_x': data['s_x'], 'simcc_y': data['s_y']}
    t_out = {'simcc_x': data['t_x'], 'simcc_y': data['t_y']}
    kd = D.VanillaKD()
    assert float(kd.weight * kd.distill(s_out, t_out)) == pytest.approx(ekr["vkd"], rel=1e-6)


# --------------------------------------------------------------------------------------- RKD
def _huber(x):
    a = np.abs(x)
    return np.where(a < 1.0, 0.5 * x ** 2, a - 0.5)


def _rkd_reference(es, et, w_dist=25.0, w_angle=50.0):
    """Park et al. 2019 with explicit pairwise distances (float64)."""
    def dist(e):
        b = len(e)
        d = np.array([[np.linalg.norm(e[i] - e[j]) for j in range(b)] for i in range(b)])
        return d / d[~np.eye(b, dtype=bool)].mean()

    def angle(e):
        diff = e[None, :, :] - e[:, None, :]                       # diff[i, j] = e_j - e_i
        norm = np.linalg.norm(diff, axis=2, keepdims=True)
        unit = np.divide(diff, norm, out=np.zeros_like(diff), where=norm > 0)
        return np.einsum('ijd,ikd->ijk', unit, unit)
    return (w_dist * _huber(dist(es) - dist(et)).mean()
            + w_angle * _huber(angle(es) - angle(et)).mean())


@pytest.mark.parametrize('batch', [8, 64])
def test_rkd_matches_explicit_pairwise_distances(batch):
    """Above 25 rows the matrix-product distance leaves a non-zero diagonal; the kit zeroes it."""
    g = torch.Generator().manual_seed(3)
    # pooled stage embeddings: positive, offset from 0 (as global-average-pooled ReLU maps are)
    es = torch.relu(1.0 + 0.3 * torch.randn(batch, 40, generator=g))
    et = torch.relu(1.0 + 0.3 * torch.randn(batch, 32, generator=g))
    d = D.pairwise_distances(es)
    assert torch.equal(d.diagonal(), torch.zeros(batch))
    ref = np.linalg.norm(es.double().numpy()[:, None] - es.double().numpy()[None], axis=2)
    np.testing.assert_allclose(d.double().numpy(), ref, rtol=1e-4, atol=1e-5)
    got = float(D.rkd_loss(es, et))
    assert got == pytest.approx(_rkd_reference(es.double().numpy(), et.double().numpy()), rel=1e-4)
