"""ELPN-MAPD: Eq. (1)-(3) on hand-made tensors (golden values), ELPN block shapes, a few MAPD steps,
the paper-table module, and the notebook on the smoke profile."""
from __future__ import annotations


import math
from pathlib import Path

import pytest
import torch
from torch import nn

from kdlib.losses import joints_mse
from kdlib.methods import METHODS
from kdlib.methods.mapd import (MAPD, build_method, heatmap_log_distribution, kpd_loss, kpd_pixel_terms,
                                mapd_loss, mapd_weights, mpd_loss)
from kdlib.paper_tables import elpn_mapd as tables

REPO = Path(__file__).resolve().parents[1]
# Hand-made (1, 1, 1, 2) heatmaps: student, teacher, ground truth.
S = torch.tensor([[[[0.2, 0.6]]]])
T = torch.tensor([[[[0.6, 0.2]]]])
G = torch.tensor([[[[0.0, 1.0]]]])
W = torch.ones(1, 1)


def gaussian_heatmaps(batch=2, joints=3, h=16, w=12, sigma=1.5, seed=0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    cy = torch.randint(2, h - 2, (batch, joints, 1, 1), generator=gen).float()
    cx = torch.randint(2, w - 2, (batch, joints, 1, 1), generator=gen).float()
    ys, xs = torch.arange(h).view(1, 1, h, 1).float(), torch.arange(w).view(1, 1, 1, w).float()
    return torch.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * sigma ** 2))  # (B, K, H, W)


# ----------------------------------------------------------------------------- Eq. (2)
@pytest.mark.parametrize('mode,temperature', [('normalize', 1.0), ('normalize', 2.0), ('softmax', 1.0),
                                              ('softmax', 0.1)])
def test_kpd_zero_for_identical_positive_otherwise(mode, temperature):
    a, b = gaussian_heatmaps(seed=0), gaussian_heatmaps(seed=1)
    assert kpd_loss(a, a.clone(), mode=mode, temperature=temperature).abs() < 1e-6
    assert kpd_loss(a, b, mode=mode, temperature=temperature) > 1e-3
    terms = kpd_pixel_terms(a, b, mode, temperature)
    assert terms.shape == a.shape
    assert torch.allclose(terms.flatten(2).sum(-1).mean() * temperature ** 2,
                          kpd_loss(a, b, mode=mode, temperature=temperature))


def test_kpd_golden_value():
    """p_t = (.75, .25), p_s = (.25, .75): KL = .75 ln 3 + .25 ln(1/3) = 0.5 ln 3."""
    assert kpd_loss(S, T, eps=0.0).item() == pytest.approx(0.5 * math.log(3), rel=1e-6)
    assert kpd_loss(S, T, eps=0.0, reduction='mean').item() == pytest.approx(0.25 * math.log(3), rel=1e-6)


def test_distributions_sum_to_one_and_softmax_t1_is_flat():
    heatmaps = gaussian_heatmaps(h=64, w=48, sigma=2.0)
    for mode, temp in [('normalize', 1.0), ('softmax', 1.0), ('softmax', 0.1)]:
        p = heatmap_log_distribution(heatmaps, mode, temp).exp()
        assert torch.allclose(p.sum(-1), torch.ones(2, 3), atol=1e-5)
    # heatmaps live in [0, 1]: at T = 1 the softmax peak is at most e times the background
    flat = heatmap_log_distribution(heatmaps, 'softmax', 1.0).exp()
    assert (flat.max(-1).values / flat.min(-1).values).max() <= math.e + 1e-4
    sharp = heatmap_log_distribution(heatmaps, 'normalize', 1.0).exp()
    assert sharp.max() > 30 * flat.max()          # ~1/(2 pi sigma^2) vs ~e/(H W)


def test_kd_target_weight_masks_joints():
    a, b = gaussian_heatmaps(seed=0), gaussian_heatmaps(seed=1)
    weight = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    full = kpd_pixel_terms(a, b).flatten(2).sum(-1)  # (B, K)
    assert kpd_loss(a, b, weight).item() == pytest.approx(full[:, 0].sum().item() / 6, rel=1e-5)
    assert mpd_loss(a, b, weight).item() == pytest.approx(joints_mse(a, b, weight).item())


# ----------------------------------------------------------------------------- Eq. (1), (3)
def test_mapd_golden_terms():
    """alpha = .15, beta = .075: L_mse = .5*(.04+.16)/2 = .05, L_mpd = .5*(.16+.16)/2 = .08."""
    terms = mapd_loss(S, T, G, W, alpha=0.15, beta=0.075, eps=0.0)
    assert terms['mse_gt'].item() == pytest.approx(0.775 * 0.05, rel=1e-6)
    assert terms['mpd'].item() == pytest.approx(0.15 * 0.08, rel=1e-6)
    assert terms['kpd'].item() == pytest.approx(0.075 * 0.5 * math.log(3), rel=1e-6)


def test_mapd_switches_and_weights():
    assert mapd_weights(0.15, 0.075) == pytest.approx((0.15, 0.075, 0.775))
    assert mapd_weights(0.15, 0.075, klt=False) == pytest.approx((0.15, 0.0, 0.85))
    assert mapd_weights(0.15, 0.075, mset=False) == pytest.approx((0.0, 0.075, 0.925))
    only_gt = mapd_loss(S, None, G, W, alpha=0.0, beta=0.0)
    assert set(only_gt) == {'mse_gt'} and only_gt['mse_gt'].item() == pytest.approx(0.05)
    assert set(mapd_loss(S, T, G, W, mset=False)) == {'mse_gt', 'kpd'}
    with pytest.raises(ValueError, match='alpha'):
        mapd_weights(0.7, 0.4)
    with pytest.raises(ValueError, match='teacher'):
        mapd_loss(S, None, G, W)
    with pytest.raises(ValueError, match='same shape'):
        mpd_loss(S, torch.zeros(1, 1, 2, 2))
    with pytest.raises(ValueError, match='kl_mode'):
        MAPD(kl_mode='sigmoid')
    with pytest.raises(ValueError, match='unknown MAPD'):
        build_method({'gamma': 1.0}, None, {}, None)
    with pytest.raises(ValueError, match='needs a teacher'):
        build_method({}, None, {}, None)
    assert METHODS['mapd'] is build_method


# ----------------------------------------------------------------------------- ELPN
def test_elpn_blocks_and_sizes():
    from kdlib.models import build_model, summary
    from kdlib.models.blocks import BasicBlock, Bottleneck, GlobalContext
    for name, eus, params_m in [('elpn_v1', (1, 2, 2), 1.1), ('elpn_v2', (1, 4, 3), 4.7)]:
        model = build_model(name, 16, input_size=(256, 256), variant='paper')
        assert tuple(len(stage) for stage in model.stages) == eus               # Section 3.2, Table 1
        assert all(isinstance(b.gc, GlobalContext) for b in model.stage1 if isinstance(b, Bottleneck))
        assert isinstance(model.gc_final, GlobalContext)                          # Fig. 5
        basics = [m for m in model.stages.modules() if isinstance(m, BasicBlock)]
        assert all(b.conv1[0][0].groups == b.conv1[0][0].in_channels for b in basics)  # Fig. 4(d)
        assert all(len(branch) == 2 for unit in model.stages[0] for branch in unit.branches)
        assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(params_m, abs=0.06)
        if name == 'elpn_v1':                                                     # Table 6: 1.6G
            assert summary(model, (256, 256))['gflops_paper'] == pytest.approx(1.6, abs=0.06)
        out = build_model(name, 17, input_size=(64, 48), variant='smoke')(torch.zeros(2, 3, 64, 48))
        assert out['heatmaps'].shape == (2, 17, 16, 12)
        assert out['feature'].shape[2:] == (16, 12)


# ----------------------------------------------------------------------------- training
class _Tiny(nn.Module):
    def __init__(self, joints=3, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, joints, 3, padding=1))

    def forward(self, x):
        return {'heatmaps': self.net(x)}


def test_a_few_mapd_steps_reduce_the_loss():
    torch.manual_seed(0)
    student, teacher = _Tiny(seed=0), _Tiny(seed=1).eval().requires_grad_(False)
    batch = {'image': torch.randn(4, 3, 16, 12), 'heatmap': gaussian_heatmaps(4, 3, 16, 12),
             'target_weight': torch.ones(4, 3)}
    method = build_method({}, student, {'teacher': teacher}, None)
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        terms, out = method(batch, student, {'teacher': teacher})
        loss = sum(terms.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert set(terms) == {'mse_gt', 'mpd', 'kpd'} and out['heatmaps'].shape == (4, 3, 16, 12)
    assert losses[-1] < 0.7 * losses[0]


# ----------------------------------------------------------------------------- paper tables
def test_paper_tables_rows_and_claims_on_the_papers_numbers():
    for name, table in tables.TABLES.items():
        for row in table.run_rows():
            cfg = tables.experiment_config(profile='smoke', seed=1, **row.params)
            assert (cfg.method == 'mapd') == bool(cfg.teachers), row.label
            if cfg.teachers:
                assert cfg.teachers['teacher'].seed == tables.TEACHER_SEED
        paper = {row.label: row.paper for row in table.rows}
        for column, derive in table.derived.items():
            for label, value in derive(paper).items():
                paper[label] = {**paper[label], column: value}
        for claim in table.claims:
            if 'kit-only' in claim.text or 'paper shows it on MPII only' in claim.text:
                continue
            assert claim.check(paper), f'{name}: {claim.text!r} fails on the paper\'s own numbers'
    t6, t7 = tables.TABLES['table6'], tables.TABLES['table7']
    assert t7.rows[0].params == t6.rows[0].params                # alpha = 0 is the plain baseline
    assert t7.rows[3].params == t6.rows[3].params                # alpha = 0.15 is MSET+KLT
    assert tables.HEADLINE in tables.TABLES


def test_experiment_config_expresses_the_paper_recipe():
    cfg = tables.experiment_config(profile='paper', dataset='coco', network='elpn_v2')
    assert cfg.pipeline == {'rot_factor': 40.0, 'scale_factor': 0.30}            # Section 6
    assert cfg.method_params['alpha'] == 0.15 and cfg.method_params['beta'] == 0.075
    profile = cfg.resolved_profile()
    assert (profile['epochs'], tuple(profile['lr_milestones']), profile['batch_size']) == (210, (170, 200), 32)
    assert cfg.recipe == 'adam_step'                                               # Adam 1e-3
    mpii = tables.experiment_config(profile='paper', network='hrnet', method='supervised', width=8,
                                    eus=[1, 2, 2])
    assert mpii.pipeline == {'rot_factor': 30.0, 'scale_factor': 0.40}             # Section 7
    assert mpii.model_params == {'width': 8, 'eus': [1, 2, 2]}


# ----------------------------------------------------------------------------- notebook
def test_notebook_runs_on_smoke(run_notebook):
    metrics, _ = run_notebook('05_elpn_mapd.ipynb', figures=True)
    assert {'Mean', 'params_M', 'gflops_paper'} <= set(metrics)
