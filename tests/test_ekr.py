"""EKR (paper 002) and the Table 1 distillers: formulas on hand-made tensors, shapes, training steps."""
from __future__ import annotations


from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from kdlib.methods import distillers as D
from kdlib.methods import ekr as E

ROOT = Path(__file__).resolve().parents[1]

torch.set_num_threads(1)


class TinyPose(nn.Module):
    """A 3-stage SimCC pose net on a non-square input; stage maps at 1/2, 1/4, 1/8 (or all 1/2)."""

    def __init__(self, widths=(8, 12, 16), num_joints=4, input_size=(32, 24), pyramid=True, k=2):
        super().__init__()
        layers, cin = [], 3
        for i, w in enumerate(widths):
            stride = 2 if (i == 0 or pyramid) else 1
            layers.append(nn.Sequential(nn.Conv2d(cin, w, 3, stride, 1), nn.BatchNorm2d(w), nn.ReLU()))
            cin = w
        self.stages = nn.ModuleList(layers)
        h, w = input_size
        self.head_x = nn.Linear(cin * 4, w * k)
        self.head_y = nn.Linear(cin * 4, h * k)
        self.joint = nn.Conv2d(cin, num_joints * 4, 1)
        self.num_joints = num_joints

    def forward(self, x):
        stages = []
        for stage in self.stages:
            x = stage(x)
            stages.append(x)
        b = x.shape[0]
        tokens = nn.functional.adaptive_avg_pool2d(self.joint(x), 1).view(b, self.num_joints, 4)
        tokens = tokens.repeat(1, 1, x.shape[1])                   # (B, K, 4*C)
        return {'simcc_x': self.head_x(tokens), 'simcc_y': self.head_y(tokens), 'stages': stages,
                'stage_pyramid': stages, 'feature': x}


def make_batch(b=4, k=4, size=(32, 24), split=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    h, w = size
    xs, ys = torch.randint(2, w * split - 2, (b, k), generator=g), torch.randint(2, h * split - 2, (b, k), generator=g)
    bins_x, bins_y = torch.arange(w * split).float(), torch.arange(h * split).float()
    gauss = lambda bins, c: torch.exp(-(bins - c[..., None].float()) ** 2 / (2 * 2.0 ** 2))  # noqa: E731
    return {'image': torch.randn(b, 3, h, w, generator=g), 'simcc_x': gauss(bins_x, xs),
            'simcc_y': gauss(bins_y, ys), 'target_weight': torch.ones(b, k)}


@pytest.fixture
def pair():
    torch.manual_seed(0)
    student = TinyPose(widths=(6, 10, 14))
    teacher = TinyPose(widths=(8, 12, 16), pyramid=False).eval()   # all teacher stages at 1/2
    for p in teacher.parameters():
        p.requires_grad_(False)
    return student, {'teacher': teacher}


# ------------------------------------------------------------------------------- unit: formulas
def test_similarity_rows_and_gamma_sum_to_one():
    f = torch.randn(5, 3, 4, 3)
    sim = E.similarity_matrix(f)                                    # Eq. (3)
    assert sim.shape == (5, 5)
    torch.testing.assert_close(sim.norm(dim=1), torch.ones(5))
    gram = torch.tensor([[float((f[i] * f[j]).sum()) for j in range(5)] for i in range(5)])
    torch.testing.assert_close(sim, gram / gram.norm(dim=1, keepdim=True), rtol=1e-4, atol=1e-5)
    pairs = E.cross_stage_pairs(3, 3)
    assert pairs == [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
    wa = E.WeightAllocation(3, 3, pairs, batch=8, dim=16)
    s = [torch.randn(5, 4, 6, 6) for _ in range(3)]
    t = [torch.randn(5, 7, 3, 3) for _ in range(3)]
    gamma = wa(s, t)                                                # Eq. (4)
    assert gamma.shape == (5, len(pairs)) and (gamma > 0).all()
    torch.testing.assert_close(gamma.sum(1), torch.ones(5))
    with pytest.raises(ValueError, match='wa_batch'):
        wa([torch.randn(9, 4, 6, 6)] * 3, [torch.randn(9, 7, 3, 3)] * 3)


@pytest.mark.parametrize('s_shape,t_shape', [((6, 4, 3), (8, 16, 12)),   # x4 transposed conv
                                              ((6, 8, 6), (8, 16, 6)),    # per-axis (2, 1)
                                              ((6, 16, 12), (8, 8, 6)),   # strided conv down
                                              ((6, 5, 3), (8, 16, 12)),   # non-integer: bilinear
                                              ((6, 16, 12), (8, 16, 12))])
def test_feature_align_shapes(s_shape, t_shape):
    align = E.FeatureAlign(s_shape, t_shape)
    assert align(torch.randn(2, *s_shape)).shape == (2, *t_shape)


def test_feature_align_every_pair(pair):
    student, teachers = pair
    method = E.build_method({'wa_batch': 8}, student, teachers, _FakeSet())   # size from a sample
    s = student(torch.randn(2, 3, 32, 24))['stages']
    feats = method.pair_features(s)
    assert sorted(feats) == method.pairs and len(method.pairs) == 6
    for (l, m), f in feats.items():
        assert f.shape[1:] == method.t_shapes[l], (l, m)


class _FakeSet:
    def __getitem__(self, i):
        return {'image': torch.zeros(3, 32, 24)}


def test_vanilla_kd_golden_and_reductions():
    """Eq. (7) on a hand-made case: KL summed over the bins, / K (DWPose), / N twice ('paper')."""
    s, t = torch.zeros(1, 1, 2), torch.tensor([[[0.0, 2.0]]])
    p = torch.softmax(t[0, 0], 0)
    kl = (p * (p.log() - torch.log(torch.tensor([0.5, 0.5])))).sum()
    out = lambda x: {'simcc_x': x, 'simcc_y': x}                   # noqa: E731
    torch.testing.assert_close(D.vanilla_kd(out(s), out(t)), 2 * kl)           # x + y, N = K = 1
    s4, t4 = s.expand(2, 2, 2).contiguous(), t.expand(2, 2, 2).contiguous()    # N = K = 2
    torch.testing.assert_close(D.vanilla_kd(out(s4), out(t4), reduction='batchmean'), 2 * kl)
    torch.testing.assert_close(D.vanilla_kd(out(s4), out(t4)), kl)             # / N
    p4 = torch.softmax(t[0, 0] / 4, 0)                              # T^2 factor
    kl4 = (p4 * (p4.log() - torch.log(torch.tensor([0.5, 0.5])))).sum()
    torch.testing.assert_close(D.vanilla_kd(out(s), out(t), temperature=4.0), 2 * 16 * kl4)
    x = torch.randn(3, 4, 20)
    assert D.vanilla_kd(out(x), out(x.clone())).abs() < 1e-6
    with pytest.raises(ValueError, match='reduction'):
        D.vanilla_kd(out(s), out(t), reduction='sum')
    assert not hasattr(D, 'simcc_kd') or D.simcc_kd.__module__ == 'kdlib.losses'   # one SimCC KL


def test_hcl_non_square_and_zero():
    f = torch.randn(2, 3, 16, 12)
    assert D.hcl_loss(f, f) == 0
    assert D._pyramid_sizes(64, 48, (4, 2, 1)) == [(5, 4), (3, 2), (1, 1)]
    g = f + 1.0                                                     # constant shift: every level = 1
    torch.testing.assert_close(D.hcl_loss(f, g), torch.tensor(1.0))
    assert D.hcl_loss(f, g, per_sample=True).shape == (2,)


def test_relation_losses_zero_for_identical_inputs():
    f = torch.randn(4, 5, 6, 4)
    assert D.sp_loss(f, f) < 1e-8
    assert D.at_loss(f, f) < 1e-8
    e = torch.randn(4, 7)
    assert D.rkd_loss(e, e) < 1e-6
    assert D.rkd_loss(e, 2 * e) < 1e-6                              # distances are mean-normalised
    assert D.sp_loss(f, torch.randn(4, 3, 2, 2)) > 0


def test_mft_branch_weights_and_shape():
    mft = E.MFT(6, kernels=(1, 3, 5), pools=(3,))
    assert mft(torch.randn(2, 6, 8, 6)).shape == (2, 6, 8, 6)
    torch.testing.assert_close(mft.branch_weights().sum(), torch.tensor(1.0))
    assert mft.names == ['conv1x1', 'conv3x3', 'conv5x5', 'avgpool3x3']


def test_ekr_rejects_unknown_params(pair):
    student, teachers = pair
    with pytest.raises(ValueError, match='unknown EKR parameters'):
        E.build_method({'input_size': (32, 24), 'alpah': 1.0}, student, teachers, None)


# ------------------------------------------------------------------- integration: a few steps
def _train(method, student, teachers, steps=8, lr=3e-3):
    params = list(student.parameters()) + list(method.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    batch, history = make_batch(4), []
    for _ in range(steps):
        terms, _ = method(batch, student, teachers)
        loss = sum(terms.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append({k: v.item() for k, v in terms.items()})
    return history


DISTILL_CASES = [('ekr', {}), ('ekr', {'mft': False, 'wa': False, 'fusion': 'none'}),
                 ('kd', {}), ('fitnet', {}), ('rkd', {}), ('at', {}), ('sp', {}), ('reviewkd', {})]


@pytest.mark.parametrize('name,params', DISTILL_CASES)
def test_distiller_trains(pair, name, params):
    student, teachers = pair
    params = {'input_size': (32, 24), **params}
    if name == 'ekr':
        method = E.build_method({'alpha': 1.0, 'beta': 1.0, 'wa_batch': 8, **params}, student, teachers, None)
    else:
        method = D.build_method({'distiller': name, **params}, student, teachers, None)
    history = _train(method, student, teachers)
    term = {'ekr': 'fkd'}.get(name, name)
    first, last = history[0], history[-1]
    assert term in first and 'simcc_kl' in first
    assert sum(last.values()) < sum(first.values()), history
    assert last[term] < first[term] or name in ('kd',), (term, first[term], last[term])


def test_ekr_records_gamma(pair):
    student, teachers = pair
    method = E.build_method({'input_size': (32, 24), 'wa_batch': 8}, student, teachers, None)
    _train(method, student, teachers, steps=2)
    method.on_epoch_start(1, 2, 1e-3)
    assert len(method.gamma_history) == 1
    assert abs(sum(method.gamma_history[0]) - 1) < 1e-5
    grid = method.gamma_matrix(method.gamma_history[0])
    assert grid.shape == (3, 3) and torch.isnan(grid[1, 0]) and not torch.isnan(grid[0, 2])
    gamma = method.attention_weights(student.eval(), teachers['teacher'], torch.randn(3, 3, 32, 24))
    torch.testing.assert_close(gamma.sum(1), torch.ones(3))
    assert set(method.mft_branch_weights()) == {'conv1x1', 'conv3x3', 'conv5x5', 'avgpool3x3'}


def test_inference_cost_cpu():
    from kdlib.models.cost import inference_cost
    model = TinyPose()
    cost = inference_cost(model, (32, 24), batch=4, device='cpu', warmup=1, iters=2)
    weights_mb = sum(p.numel() * 4 for p in model.parameters()) / 2 ** 20
    assert cost['infer_memory_MB'] >= weights_mb and cost['activation_MB'] > 0
    assert cost['images_per_s'] > 0 and cost['batch'] == 4 and cost['device'] == 'cpu'
    bigger = inference_cost(model, (64, 48), batch=4, device='cpu', warmup=1, iters=2)
    assert bigger['activation_MB'] > cost['activation_MB']         # activations grow with input


def test_mft_fused_kernel_equals_branches():
    mft = E.MFT(5, kernels=(1, 3, 5), pools=(3,)).eval()
    with torch.no_grad():
        mft.logits.copy_(torch.tensor([0.3, -1.0, 0.5, 0.1]))
    x = torch.randn(2, 5, 9, 7)
    torch.testing.assert_close(mft(x), mft.forward_branches(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mft.branch_shares().sum(), torch.tensor(1.0))


# ---------------------------------------------------------------------- tables and notebook
def _with_derived(table, numbers: dict) -> dict:
    r = {label: dict(values) for label, values in numbers.items()}
    for column, derive in table.derived.items():
        for label, value in derive(r).items():
            r[label][column] = value
    return r


COST_PAIRS = [('LiteHRNet18*(Multi-KD)', 'LiteHRNet18'), ('LiteHRNet30*(Multi-KD)', 'LiteHRNet30')]


def _reversed(name: str, numbers: dict) -> dict:
    """The paper's numbers turned against its claims: Tables 2-3 swap each SimDR row with its heatmap
    row (memory, speed and accuracy at once); the other tables negate every value (orderings flip)."""
    if name in ('table2', 'table3'):
        out = dict(numbers)
        for simdr, heat in COST_PAIRS:
            out[simdr], out[heat] = numbers[heat], numbers[simdr]
        return out
    return {label: {c: -v for c, v in values.items()} for label, values in numbers.items()}


# Fig. 4 and Fig. 5 print no numbers in the text: shaped as the caption / Sec. 4.3 state them
def _figure_numbers(name: str, table) -> dict:
    from kdlib.paper_tables import ekr as T
    if name == 'fig4':
        return {T.FIG4_BEFORE: {T.SHARPNESS_COLUMNS[0]: 20.0}, T.FIG4_AFTER: {T.SHARPNESS_COLUMNS[0]: 30.0}}
    return {r.label: {'Mean': 80.0 if r.label == table.baseline else 79.0} for r in table.rows}


def test_every_claim_is_an_effect_that_holds_on_the_paper_and_fails_reversed():
    from kdlib.paper_tables import ekr as T
    for name, table in T.TABLES.items():
        numbers = ({r.label: r.paper for r in table.rows} if name not in ('fig4', 'fig5')
                   else _figure_numbers(name, table))
        paper, against = _with_derived(table, numbers), _with_derived(table, _reversed(name, numbers))
        assert table.claims, name
        for claim in table.claims:
            assert claim.effect is not None, (name, claim.text)        # no legacy boolean check
            assert claim.effect(paper) > 0, (name, claim.text, claim.effect(paper))
            assert claim.effect(against) <= 0, (name, claim.text, claim.effect(against))
    t2 = _with_derived(T.TABLES['table2'], {r.label: r.paper for r in T.TABLES['table2'].rows})
    effects = [c.effect(t2) for c in T.TABLES['table2'].claims]
    assert effects == pytest.approx([100 * (1 - 2886 / 3334), 100 * (1 - 2473 / 2900) - 10, 0.03, 1.6])
    assert [c.effect.unit for c in T.TABLES['table2'].claims] == ['%', '%', 's', 'points']


def test_tables_have_their_baselines():
    from kdlib.paper_tables import ekr as T
    simdr = {'LiteHRNet18*(Multi-KD)': 'LiteHRNet18', 'LiteHRNet30*(Multi-KD)': 'LiteHRNet30'}
    assert {name: t.baseline for name, t in T.TABLES.items() if name != 'table4'} == {
        'headline': 'Lite-HRNet-18: baseline', 'table1': 'KD', 'table2': simdr,
        'table3': simdr, 'fig4': T.FIG4_BEFORE, 'fig5': T.fig5_label(0.005, 0.04)}
    table4 = T.TABLES['table4'].baselines()          # each student against its undistilled self
    assert table4['Lite-HRNet-18: + MFT'] == 'Lite-HRNet-18: baseline'
    assert table4['Lite-HRNet-30: + MFT + WA + VKD'] == 'Lite-HRNet-30: baseline'


def test_tables_and_shared_cells():
    from kdlib.paper_tables import ekr as T
    assert T.HEADLINE in T.TABLES
    saving = T.TABLES['table2'].derived['Memory saving (%)']({r.label: r.paper for r in T.TABLES['table2'].rows})
    assert abs(saving['LiteHRNet18*(Multi-KD)'] - 100 * (1 - 2473 / 2900)) < 1e-9
    # Fig. 5's centre and Table 1's "Ours" are one cached run
    a = T.experiment_config('smoke', 0, **T.TABLES['fig5'].rows[4].params)
    b = T.experiment_config('smoke', 0, **T.TABLES['table1'].rows[-1].params)
    from kdlib.experiment import config_hash
    assert config_hash(a) == config_hash(b)


NOTEBOOK = ROOT / 'notebooks' / '03_enhanced_knowledge_review.ipynb'


def test_notebook_runs_on_smoke(run_notebook):
    # one execution covers both modes: the figures of an interactive run, and a driver cell's
    # cost measurement and saved metrics (a Table 2 cell)
    saved, _ = run_notebook('03_enhanced_knowledge_review.ipynb', figures=True, table='table2',
                            measure_cost=True, cost_batch=4)
    assert {'Mean', 'params_M', 'Infer memory (MB)', 'Speed (s)', 'Peak probability (%)',
            'Entropy (nats)'} <= set(saved)
    assert saved['Infer memory (MB)'] > 0 and saved['Speed (s)'] > 0
    assert 0 < saved['Peak probability (%)'] <= 100 and saved['Entropy (nats)'] > 0


def test_ekr_vkd_only_builds_nothing_learnable(pair):
    student, teachers = pair
    method = E.build_method({'input_size': (32, 24), 'cross_stage': False, 'beta': 1.0},
                            student, teachers, None)
    assert sum(p.numel() for p in method.parameters()) == 0 and method.pairs == []
    history = _train(method, student, teachers, steps=6)
    assert set(history[0]) == {'simcc_kl', 'vkd'} and history[-1]['vkd'] < history[0]['vkd']


def test_runs_use_the_papers_augmentation():
    """Section 4.1: rotation within +-30 degrees, scale within 0.75..1.25, for students and teacher."""
    from kdlib.data.transforms import random_scale_rotation
    from kdlib.experiment import pipeline_config
    from kdlib.paper_tables import ekr as T
    from kdlib.profiles import get_profile
    for dataset in ('mpii', 'coco'):
        cfg = T.experiment_config('smoke', 0, dataset, 'litehrnet_18', 'simcc', 'ekr')
        for c in (cfg, cfg.teachers['teacher']):
            pipe = pipeline_config(c, get_profile('smoke'), dataset, train=True)
            rng = np.random.default_rng(0)
            draws = np.array([random_scale_rotation(rng, pipe.scale_factor, pipe.rot_factor, pipe.rot_prob)
                              for _ in range(4000)])
            assert draws[:, 0].min() >= 0.75 and draws[:, 0].max() <= 1.25
            assert np.abs(draws[:, 1]).max() <= 30.0 and np.abs(draws[:, 1]).max() > 25.0


def test_claims_name_the_missing_row_and_fig4_checks_sharpness():
    from kdlib.paper_tables import evaluate_claim
    from kdlib.paper_tables import ekr as T
    claim = T.TABLES['table1'].claims[0]
    verdict = evaluate_claim(claim, {'Ours': {0: {'Mean': 1.0}, 1: {'Mean': 2.0}}})
    assert verdict['status'] == 'not run' and "'KD'" in verdict['detail']
    fig4 = T.TABLES['fig4']
    peak = T.SHARPNESS_COLUMNS[0]

    def per_seed(before, after):                # paired seeds: the same shift at every seed
        return {T.FIG4_BEFORE: {s: {peak: v} for s, v in enumerate(before)},
                T.FIG4_AFTER: {s: {peak: v} for s, v in enumerate(after)}}
    lifted = evaluate_claim(fig4.claims[0], per_seed([5.0, 8.0, 6.0], [6.1, 9.0, 7.2]))
    assert lifted['status'] == 'reproduced' and lifted['unit'] == '% points'
    assert lifted['effect'] == pytest.approx((1.1 + 1.0 + 1.2) / 3)
    lowered = evaluate_claim(fig4.claims[0], per_seed([6.1, 9.0, 7.2], [5.0, 8.0, 6.0]))
    assert lowered['status'] == 'contradicted'
    one = evaluate_claim(fig4.claims[0], per_seed([5.0], [9.0]))
    assert one['status'] == 'inconclusive' and 'one seed' in one['detail']
    # Fig. 4's rows are Table 4's Lite-HRNet-18 baseline and full method: the same cells
    t4 = {r.label: r.params for r in T.TABLES['table4'].rows}
    assert fig4.rows[0].params == t4['Lite-HRNet-18: baseline']
    assert fig4.rows[1].params == t4['Lite-HRNet-18: + MFT + WA + VKD']
    texts = ' '.join(c.text for t in T.TABLES.values() for c in t.claims)
    assert '@' not in texts.replace('`PCKh@0.5`', '')                # bare @ renders as a mailto link


def test_simcc_sharpness_peaked_beats_flat():
    from kdlib.evaluation.sharpness import simcc_sharpness

    class Const(nn.Module):
        def __init__(self, height):
            super().__init__()
            self.height = nn.Parameter(torch.tensor(float(height)))

        def forward(self, image):
            logits = torch.zeros(image.shape[0], 2, 10)
            logits[..., 4] = self.height                           # one peak bin of 10
            return {'simcc_x': logits, 'simcc_y': logits}
    data = [{'image': torch.zeros(3, 4, 4), 'target_weight': torch.tensor([1.0, 0.0])} for _ in range(3)]
    flat, peaked = simcc_sharpness(Const(0.0), data, 2), simcc_sharpness(Const(5.0), data, 2)
    assert flat['Peak probability (%)'] == pytest.approx(10.0)
    assert flat['Entropy (nats)'] == pytest.approx(np.log(10.0))
    p = np.exp(5.0) / (np.exp(5.0) + 9)
    assert peaked['Peak probability (%)'] == pytest.approx(100 * p, rel=1e-5)
    assert peaked['Entropy (nats)'] < flat['Entropy (nats)']


def test_zoo_pyramid_runs_the_transposed_conv_alignment():
    """On HRNet-W32 -> Lite-HRNet-18 the default stage maps (`stage_pyramid`: 1/4 .. 1/32) make a
    deeper student stage smaller than the teacher stage it is compared with: Section 3.2's
    transposed conv upsamples it (2^(m - l))."""
    from kdlib.models import build_model
    from kdlib.methods import ekr as ekr_method
    size = (64, 48)
    student = build_model('litehrnet_18', 17, head='simcc', input_size=size, variant='smoke')
    teacher = build_model('hrnet_w32', 17, head='simcc', input_size=size, variant='smoke').eval()
    method = ekr_method.build_method({'input_size': size}, student, {'teacher': teacher}, None)
    assert [s[1:] for s in method.s_shapes] == [(16, 12), (8, 6), (4, 3), (2, 2)]   # 1/4 .. 1/32
    ups = {key: tuple(a.resize.stride) for key, a in method.align.items()
           if isinstance(a.resize, nn.ConvTranspose2d)}
    # every deeper student stage is upsampled to its teacher stage; 2_3 (4x3 <- 2x2 after the
    # 1/32 map's ceil) is not an integer ratio and falls back to bilinear resizing
    assert ups == {'0_1': (2, 2), '0_2': (4, 4), '0_3': (8, 6), '1_2': (2, 2), '1_3': (4, 3)}
    batch = make_batch(b=2, k=17, size=size)
    terms, _ = method(batch, student, {'teacher': teacher})
    assert torch.isfinite(terms['fkd']) and terms['fkd'] > 0


def test_kit_tables_show_paired_effects_and_verdicts(monkeypatch):
    """The notebook's tables on a SynthPose profile: each row's paired effect over the baseline
    beside the paper's, and the claim judged on the per-seed rows (not on aggregated means)."""
    from kdlib.figures import common
    from kdlib.paper_tables import ekr as T
    base, full = T.TABLES['headline'].baseline, 'Lite-HRNet-18: + MFT + WA + VKD'
    per_seed = {base: {0: {'Mean': 40.0}, 1: {'Mean': 50.0}, 2: {'Mean': 45.0}},
                full: {0: {'Mean': 40.5}, 1: {'Mean': 50.6}, 2: {'Mean': 45.4}}}
    monkeypatch.setattr(common, '_kit_values', lambda *args: per_seed)
    [item] = common.table_items('ekr', 'smoke', ['headline'], seeds=[0, 1, 2])
    assert '| base |' in item['markdown'] and '| +0.50 ± 0.06 | +1.80 |' in item['markdown']
    [verdict] = item['claims'].to_dict('records')
    assert verdict['status'] == 'reproduced' and verdict['seeds'] == [0, 1, 2]   # unpaired: inconclusive
