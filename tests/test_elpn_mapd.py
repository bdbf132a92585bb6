"""ELPN-MAPD: Eq. (1)-(3) on hand-made tensors (golden values), ELPN block shapes, a few MAPD steps,
the paper-table module, and the notebook on the smoke profile."""
from __future__ import annotations


import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from kdlib.losses import joints_mse
from kdlib.methods import METHODS
from kdlib.methods.base import task_loss
from kdlib.methods.mapd import (DEFAULTS, MAPD, build_method, heatmap_log_distribution, kpd_loss,
                                kpd_pixel_terms, mapd_loss, mapd_weights, mpd_loss)
from kdlib.paper_tables import Effect, evaluate_claim
from kdlib.paper_tables import elpn_mapd as tables
from kdlib.paper_tables.assemble import assemble_table, with_derived

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


def realistic_heatmaps(batch=2, joints=16, size=64, seed=0):
    """Fixed, realistic (B, K, 64, 64) heatmaps (MPII 256x256 input): GT Gaussians (sigma 2);
    teacher close to GT (peak 0.9, shifted ~0.5 px, noise 0.01); student GT-like but worse (peak
    0.7, shifted ~1.5 px, noise 0.05, so about half its pixels are <= 0, as early in training)."""
    gen = torch.Generator().manual_seed(seed)
    centre = torch.rand(batch, joints, 2, generator=gen) * (size - 16) + 8  # (B, K, 2) x, y

    def gauss(c, amp):
        grid = torch.arange(size).float()
        dx = grid.view(1, 1, 1, size) - c[..., 0, None, None]
        dy = grid.view(1, 1, size, 1) - c[..., 1, None, None]
        return amp * torch.exp(-(dx ** 2 + dy ** 2) / (2 * 2.0 ** 2))  # (B, K, H, W)

    noise = lambda std: std * torch.randn(batch, joints, size, size, generator=gen)  # noqa: E731
    gt = gauss(centre, 1.0)
    teacher = gauss(centre + 0.5 * torch.randn(batch, joints, 2, generator=gen), 0.9) + noise(0.01)
    student = gauss(centre + 1.5 * torch.randn(batch, joints, 2, generator=gen), 0.7) + noise(0.05)
    return student, teacher, gt, torch.ones(batch, joints)


def printed_equations(student, teacher, gt, alpha=0.15, beta=0.075, eps=1e-4):
    """Eq. (1)-(3) as printed, written out with numpy loops: per heatmap a squared norm (sum over
    the pixels) or a KL summed over the pixels, (1/K) over the heatmaps, mean over the batch.
    Distributions: p = (max(o, 0) + eps) / sum (the kit's reading of Eq. 2, module docstring)."""
    s, t, g = (x.double().numpy() for x in (student, teacher, gt))
    batch, joints = s.shape[:2]
    mpd = kpd = mse = 0.0
    for b in range(batch):
        for k in range(joints):
            mpd += ((s[b, k] - t[b, k]) ** 2).sum() / joints                       # Eq. (1)
            mse += ((s[b, k] - g[b, k]) ** 2).sum() / joints                       # "almost the same"
            p_t = np.maximum(t[b, k], 0) + eps
            p_s = np.maximum(s[b, k], 0) + eps
            p_t, p_s = p_t / p_t.sum(), p_s / p_s.sum()
            kpd += (p_t * (np.log(p_t) - np.log(p_s))).sum() / joints               # Eq. (2)
    return {'mse_gt': (1 - alpha - beta) * mse / batch, 'mpd': alpha * mpd / batch,  # Eq. (3)
            'kpd': beta * kpd / batch}


# ----------------------------------------------------------------------------- Eq. (1)-(3) balance
def test_weighted_terms_stand_in_the_printed_ratio():
    """The three weighted terms of the default MAPD are the printed Eq. (1)-(3) times one common
    factor 1/(2HW) (JointsMSELoss's), so their ratios are the printed ones. Measured here: printed
    kpd/mpd = 0.078, kpd/mse_gt = 0.015; with the old 'batchmean' KL they were 2HW = 8192x that
    (~640x and ~120x)."""
    student, teacher, gt, weight = realistic_heatmaps()
    assert 0.4 < (student <= 0).float().mean() < 0.6
    kit = {k: v.item() for k, v in mapd_loss(student, teacher, gt, weight).items()}
    ref = printed_equations(student, teacher, gt)
    assert kit['kpd'] / kit['mpd'] == pytest.approx(ref['kpd'] / ref['mpd'], rel=1e-4)
    assert kit['mse_gt'] / kit['mpd'] == pytest.approx(ref['mse_gt'] / ref['mpd'], rel=1e-4)
    pixels = student.shape[2] * student.shape[3]
    for name in ref:                                       # the common factor: JointsMSELoss's
        assert kit[name] == pytest.approx(ref[name] / (2 * pixels), rel=1e-4)
    old = mapd_loss(student, teacher, gt, weight, kl_reduction='batchmean')
    assert (old['kpd'] / old['mpd']).item() == pytest.approx(2 * pixels * ref['kpd'] / ref['mpd'], rel=1e-4)
    assert (old['kpd'] / old['mpd']).item() > 100


def test_alpha_beta_zero_is_the_supervised_loss():
    student, _, gt, weight = realistic_heatmaps(seed=1)
    weight[0, :3] = 0.0
    terms = mapd_loss(student, None, gt, weight, alpha=0.0, beta=0.0)
    baseline = task_loss({'heatmaps': student}, {'heatmap': gt, 'target_weight': weight})
    assert terms['mse_gt'].item() == baseline['heatmap_mse'].item()


def test_kl_gradient_reaches_nonpositive_pixels():
    """Default 'straight_through': same value as the clip, and Eq. (2)'s gradient also reaches the
    pixels where the student outputs o <= 0; 'clip' (the old behaviour) gives them none."""
    student, teacher, _, _ = realistic_heatmaps(batch=1, joints=4, seed=2)
    grads, values = {}, {}
    for clamp in ('straight_through', 'clip'):
        s = student.clone().requires_grad_(True)
        loss = kpd_loss(s, teacher, clamp=clamp)
        loss.backward()
        grads[clamp], values[clamp] = s.grad, loss.item()
    assert values['straight_through'] == values['clip']
    below = student < 0                                     # (B, K, H, W)
    assert (grads['clip'][below] == 0).all()
    assert (grads['straight_through'][below] != 0).all()
    above = student > 0
    assert torch.allclose(grads['straight_through'][above], grads['clip'][above])
    assert DEFAULTS['kl_clamp'] == 'straight_through' and DEFAULTS['kl_reduction'] == 'mse_scale'


# ----------------------------------------------------------------------------- Eq. (2)
@pytest.mark.parametrize('mode,temperature', [('normalize', 1.0), ('normalize', 2.0), ('softmax', 1.0),
                                              ('softmax', 0.1)])
def test_kpd_zero_for_identical_positive_otherwise(mode, temperature):
    a, b = gaussian_heatmaps(seed=0), gaussian_heatmaps(seed=1)
    assert kpd_loss(a, a.clone(), mode=mode, temperature=temperature).abs() < 1e-6
    assert kpd_loss(a, b, mode=mode, temperature=temperature, reduction='batchmean') > 1e-3
    terms = kpd_pixel_terms(a, b, mode, temperature)
    assert terms.shape == a.shape
    assert torch.allclose(terms.flatten(2).sum(-1).mean() * temperature ** 2,
                          kpd_loss(a, b, mode=mode, temperature=temperature, reduction='batchmean'))


def test_kpd_golden_value():
    """p_t = (.75, .25), p_s = (.25, .75): KL = .75 ln 3 + .25 ln(1/3) = 0.5 ln 3 (H*W = 2)."""
    assert kpd_loss(S, T, eps=0.0, reduction='batchmean').item() == pytest.approx(0.5 * math.log(3), rel=1e-6)
    assert kpd_loss(S, T, eps=0.0).item() == pytest.approx(0.5 * math.log(3) / 4, rel=1e-6)
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
    assert kpd_loss(a, b, weight, reduction='batchmean').item() == pytest.approx(full[:, 0].sum().item() / 6,
                                                                                rel=1e-5)
    assert mpd_loss(a, b, weight).item() == pytest.approx(joints_mse(a, b, weight).item())


# ----------------------------------------------------------------------------- Eq. (1), (3)
def test_mapd_golden_terms():
    """alpha = .15, beta = .075: L_mse = .5*(.04+.16)/2 = .05, L_mpd = .5*(.16+.16)/2 = .08,
    L_kpd = 0.5 ln 3 / (2 * 2): every term is its printed value / (2HW), HW = 2."""
    terms = mapd_loss(S, T, G, W, alpha=0.15, beta=0.075, eps=0.0)
    assert terms['mse_gt'].item() == pytest.approx(0.775 * 0.05, rel=1e-6)
    assert terms['mpd'].item() == pytest.approx(0.15 * 0.08, rel=1e-6)
    assert terms['kpd'].item() == pytest.approx(0.075 * 0.5 * math.log(3) / 4, rel=1e-6)


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
    with pytest.raises(ValueError, match='kl_clamp'):
        MAPD(kl_clamp='relu')
    with pytest.raises(ValueError, match='kl_reduction'):
        MAPD(kl_reduction='sum')
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
def paper_numbers(table) -> dict[str, dict[str, float]]:
    """r[row label][column] from the rows' ``paper`` dicts, derived columns included."""
    paper = {row.label: dict(row.paper) for row in table.rows}
    for column, derive in table.derived.items():
        for label, value in derive(paper).items():
            paper[label][column] = value
    return paper


def _swap(a, b, column='Mean'):
    def reverse(r):
        r[a][column], r[b][column] = r[b][column], r[a][column]
    return reverse


def _share(part, whole, column, share):
    def reverse(r):
        r[part][column] = share * r[whole][column]
    return reverse


def _shift(label, reference, delta, column='Mean'):
    def reverse(r):
        r[label][column] = r[reference][column] + delta
    return reverse


def _reverse_order(labels, column='Mean'):
    def reverse(r):
        values = [r[label][column] for label in labels]
        for label, value in zip(labels, reversed(values)):
            r[label][column] = value
    return reverse


V1, V2, HR = tables.OURS_V1, tables.OURS_V2, tables.TEACHER_COCO_LABEL
# Per table, one entry per claim: the paper's numbers changed so that the claim must fail.
REVERSED = {
    'table1': [_share(V1, HR, 'AP', 0.92), _swap(V1, V2, 'AP')],    # keeps 92% < 93%; V1 above V2
    'table2': [_swap(V1, V2, 'AP')],
    'table3': [_swap(V1, V2)],
    'table4': [_share('32', '64', 'Mean', 0.975), _reverse_order(['8', '16', '32', '64'])],
    'table5': [_shift('(1, 2, 2)', '(1, 4, 3)', -0.6),                # worse by more than the margin
               _shift('(1, 3, 1)', '(1, 2, 2)', -0.05 * 89.5)],     # spread 5% of the best
    'table6': [_swap('ELPN+KLT', 'ELPN'), _swap('ELPN+MSET', 'ELPN+KLT'), _swap('ELPN+MSET+KLT', 'ELPN+MSET'),
               _swap('ELPN+MSET+KLT', 'ELPN', 'Mean at 1/4')],
    'table7': [_swap('0.0', '0.45'), _swap('0.15', '0.35')],
}
CONVERGENCE = {'ELPN': {'Mean at 1/4': 40.0}, 'ELPN+MSET+KLT': {'Mean at 1/4': 45.0}}  # no paper curve


def test_every_claim_is_an_effect_that_holds_on_the_paper_and_fails_reversed():
    """Each claim has an effect (no legacy boolean check), > 0 on the paper's own numbers, <= 0
    once the numbers it reads are reversed, and blind to Params/GFLOPs (fixed by the architecture)."""
    for name, table in tables.TABLES.items():
        assert len(REVERSED[name]) == len(table.claims), name
        for claim, reverse in zip(table.claims, REVERSED[name]):
            assert isinstance(claim.effect, Effect), (name, claim.text)
            assert 'Sec.' in claim.text or 'Table' in claim.text or 'Ablation Study' in claim.text, claim.text
            paper = paper_numbers(table)
            if 'converges faster' in claim.text:            # kit-measured column, no paper number
                with pytest.raises(KeyError, match='Mean at 1/4'):
                    claim.effect(paper)
                paper = {label: dict(values) for label, values in CONVERGENCE.items()}
            assert claim.effect(paper) > 0, f'{name}: {claim.text!r} fails on the paper\'s own numbers'
            without = {label: {c: v for c, v in values.items() if c not in tables.COST_COLUMNS}
                       for label, values in paper.items()}
            assert claim.effect(without) == claim.effect(paper), (name, claim.text)
            reverse(paper)
            assert claim.effect(paper) <= 0, f'{name}: {claim.text!r} still holds reversed'


def test_paired_verdicts_and_baselines():
    assert {name: t.baseline for name, t in tables.TABLES.items()} == {
        'table1': 'ELPN-V1, no MAPD (kit-only)', 'table2': V1, 'table3': V1, 'table4': '64',
        'table5': '(1, 4, 3)', 'table6': 'ELPN', 'table7': '0.0'}
    table6 = tables.TABLES['table6']
    paper = paper_numbers(table6)
    per_seed = {label: {s: {'Mean': v['Mean'] + 0.3 * s} for s in range(3)} for label, v in paper.items()}
    verdicts = [evaluate_claim(c, per_seed) for c in table6.claims]
    assert [v['status'] for v in verdicts] == ['reproduced'] * 3 + ['not run']
    assert verdicts[0]['effect'] == pytest.approx(83.6 - 78.2)     # paired: the shared seed shift cancels
    single = {label: {0: runs[0]} for label, runs in per_seed.items()}
    assert evaluate_claim(table6.claims[1], single)['status'] == 'inconclusive'
    for table in tables.TABLES.values():        # smoke scores 0: the share claims leave such seeds out
        zeros = {row.label: {s: {'Mean': 0.0, 'AP': 0.0} for s in range(2)} for row in table.run_rows()}
        zeros = with_derived(table, zeros)
        assemble_table(table, zeros, relative=True)
        for claim in table.claims:
            assert evaluate_claim(claim, zeros)['status'] in ('reproduced', 'inconclusive', 'not run')


def test_paper_tables_rows_on_the_papers_numbers():
    for table in tables.TABLES.values():
        for row in table.run_rows():
            cfg = tables.experiment_config(profile='smoke', seed=1, **row.params)
            assert (cfg.method == 'mapd') == bool(cfg.teachers), row.label
            if cfg.teachers:
                assert cfg.teachers['teacher'].seed == tables.TEACHER_SEED
    t6, t7 = tables.TABLES['table6'], tables.TABLES['table7']
    assert t7.rows[0].params == t6.rows[0].params                # alpha = 0 is the plain baseline
    assert t7.rows[3].params == t6.rows[3].params                # alpha = 0.15 is MSET+KLT
    assert t6.rows[3].params['alpha'] == DEFAULTS['alpha'] and t6.rows[3].params['beta'] == DEFAULTS['beta']
    assert tables.HEADLINE in tables.TABLES
    assert tables.table_order('mpii')[0] == 'table3'                # the run's dataset first
    assert tables.table_order('coco')[:2] == ['table1', 'table2']


def test_convergence_columns_from_the_run_history(tmp_path):
    """'Mean at 1/4': first validation at >= 1/4 of the epochs; 'Mean AUC': area under the
    validation curve (each value held since the previous validation) / epochs. Read from the
    trainer's per-epoch log <run_dir>/metrics.json (or a result's 'history')."""
    history = [{'epoch': 1}, {'epoch': 2, 'val/Mean': 10.0}, {'epoch': 3}, {'epoch': 4, 'val/Mean': 30.0},
               {'epoch': 5}, {'epoch': 6}, {'epoch': 7}, {'epoch': 8, 'val/Mean': 40.0}]
    (tmp_path / 'metrics.json').write_text(json.dumps(history))
    result = {'metrics': {'Mean': 40.0}, 'params_M': 1.0, 'gflops_paper': 1.0, 'run_dir': str(tmp_path)}
    values = tables.row_metrics({'row': result})
    assert values['Mean at 1/4'] == 10.0
    assert values['Mean AUC'] == pytest.approx((2 * 10 + 2 * 30 + 4 * 40) / 8)
    assert tables.row_metrics({'row': {**result, 'run_dir': '', 'history': history}}) == values
    assert set(tables.CONVERGENCE_COLUMNS) <= set(tables.TABLES['table6'].columns)
    # every profile gives a student run >= CURVE_POINTS validations (the teacher keeps its own)
    from kdlib.profiles import get_profile
    for profile in ('smoke', 'quick', 'classroom', 'gpu', 'paper'):
        p, cfg = get_profile(profile), tables.experiment_config(profile=profile)
        val_every = cfg.train.get('val_every', p['val_every'])
        assert p['epochs'] // val_every >= min(tables.CURVE_POINTS, p['epochs']), profile
        teacher = cfg.teachers['teacher']
        assert (teacher.train == {}) if profile != 'paper' else teacher.path == 'pose_hrnet_w32_256x256.pth'


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
    assert {'Mean', 'params_M', 'gflops_paper', *tables.CONVERGENCE_COLUMNS} <= set(metrics)


def test_paper_coco_tables_validate_on_detector_boxes():
    cfg = tables.experiment_config(profile='paper', dataset='coco', network='elpn_v1')
    assert cfg.val_dataset_params == {'boxes': 'det'} and not cfg.dataset_params
    assert tables.experiment_config(profile='paper', dataset='mpii').val_dataset_params == {}
    assert tables.experiment_config(profile='classroom', dataset='coco').val_dataset_params == {}
