"""TwoStage-GCN: stage-1 losses (Eq. 1-5), the IGP-GCN refiner and stage-2 loss (Eq. 6-7),
the frozen stage-1 student, and the paper's tables."""
from __future__ import annotations


import copy

import numpy as np
import pytest
import torch
from torch import nn

from kdlib.methods import METHODS
from kdlib.methods.two_stage import (ProgressiveGCNDistill, TwoStageDistill, bone_lengths,
                                     edge_weights_from_joints, feature_distill_loss,
                                     gamma_schedule, pose_distill_loss, progressive_gcn_loss,
                                     simcc_softargmax, structure_loss)
from kdlib.models.igp_gcn import (IGPGCN, IGPRefiner, SemGraphConv, simcc_argmax,
                                  skeleton_adjacency, to_normalised, to_pixels)

torch.set_num_threads(1)


# ------------------------------------------------------------------ stage 1, Eq. (1)-(5)

def test_gamma_schedule_eq4():
    assert gamma_schedule(1, 210) == 1.0
    assert gamma_schedule(106, 210) == pytest.approx(1 - 105 / 210)
    assert gamma_schedule(210, 210) == pytest.approx(1 / 210)
    assert gamma_schedule(3, 4) == pytest.approx(0.5)
    with pytest.raises(ValueError, match='1 <= t <= T'):
        gamma_schedule(0, 210)


def test_feature_loss_eq1_mean_over_chw():
    s, t = torch.zeros(2, 3, 4, 5), torch.full((2, 3, 4, 5), 2.0)
    assert feature_distill_loss(s, t).item() == pytest.approx(4.0)
    with pytest.raises(ValueError, match='equal shapes'):
        feature_distill_loss(torch.zeros(2, 3, 4, 5), torch.zeros(2, 4, 4, 5))


def test_structure_loss_eq3_hand_made_poses():
    # teacher: a 3-4-5 right triangle chain 0-1-2; student: bones of length 3 and 2
    teacher = torch.tensor([[[0., 0.], [3., 0.], [3., 4.]]])
    student = torch.tensor([[[0., 0.], [0., 3.], [2., 3.]]])
    limbs = torch.tensor([[0, 1], [1, 2]])
    assert bone_lengths(teacher, limbs).tolist() == [[3.0, 4.0]]
    w = torch.tensor([0.25, 0.75])
    # |3-3| * 0.25 + |4-2| * 0.75 = 1.5
    assert structure_loss(student, teacher, limbs, w).item() == pytest.approx(1.5)
    # the structure term ignores rigid motion; the L1 term does not
    moved = teacher + torch.tensor([10., -5.])
    assert structure_loss(moved, teacher, limbs, w).item() == pytest.approx(0.0)
    l1_only = pose_distill_loss(moved, teacher, limbs, w, use_l1=True, use_structure=False)
    assert l1_only.item() == pytest.approx(7.5)                # mean(|10|, |-5|)
    both = pose_distill_loss(student, teacher, limbs, w)
    l1 = (student - teacher).abs().mean()
    assert both.item() == pytest.approx(l1.item() + 1.5)       # Eq. (2) = L1 + L_cst


def test_edge_weights_inverse_length_and_uniform():
    joints = np.array([[[0, 0, 2], [10, 0, 2], [10, 40, 2]]], np.float32)
    boxes = np.array([[0, 0, 10, 10]], np.float32)             # sqrt(area) = 10
    w = edge_weights_from_joints(joints, boxes, [(0, 1), (1, 2)], 'inverse_length')
    np.testing.assert_allclose(w, [0.8, 0.2], rtol=1e-6)       # lengths 1 and 4 -> 1 : 1/4
    np.testing.assert_allclose(edge_weights_from_joints(joints, boxes, [(0, 1), (1, 2)], 'uniform'),
                               [0.5, 0.5])
    with pytest.raises(ValueError, match='inverse_length'):
        edge_weights_from_joints(joints, boxes, [(0, 1)], 'bogus')


def test_softargmax_matches_argmax_on_peaked_logits_and_has_grad():
    x = torch.full((1, 2, 20), -1e4)
    y = torch.full((1, 2, 30), -1e4)
    x[0, 0, 6], x[0, 1, 13], y[0, 0, 9], y[0, 1, 21] = 0, 0, 0, 0
    coords = simcc_softargmax(x, y, split_ratio=2.0)
    assert coords.tolist() == [[[3.0, 4.5], [6.5, 10.5]]]
    hard, _ = simcc_argmax(x, y, 2.0)
    assert torch.equal(hard, coords)
    logits = torch.randn(1, 2, 20, requires_grad=True)
    simcc_softargmax(logits, torch.randn(1, 2, 30)).sum().backward()
    assert logits.grad.abs().sum() > 0


# ------------------------------------------------------------------ IGP-GCN and stage 2

LIMBS = ((0, 1), (1, 2), (2, 3), (1, 4))


def test_adjacency_symmetric_with_self_loops():
    a = skeleton_adjacency(LIMBS, 5)
    assert torch.equal(a, a.T) and torch.all(a.diagonal() == 1) and a.sum() == 5 + 2 * 4
    with pytest.raises(ValueError, match='outside'):
        skeleton_adjacency(((0, 7),), 5)


def test_semgraphconv_only_mixes_neighbours():
    conv = SemGraphConv(1, 1, skeleton_adjacency(((0, 1),), 3))
    x = torch.zeros(1, 3, 1)
    x[0, 0] = 1.0
    y = conv(x) - conv(torch.zeros(1, 3, 1))
    assert y[0, 2].abs().item() == 0.0 and y[0, 1].abs().item() > 0   # 2 is not adjacent to 0


def test_igp_gcn_shapes_identity_start_and_coord_frames():
    k = 5
    gcn = IGPGCN(skeleton_adjacency(LIMBS, k), feature_channels=(16, 8, 4), hidden=32)
    pose = torch.rand(3, k, 3) * 2 - 1
    feats = [torch.randn(3, 16, 4, 3), torch.randn(3, 8, 8, 6), torch.randn(3, 4, 16, 12)]
    refined = gcn(pose, feats)
    assert len(refined) == 3 and all(p.shape == (3, k, 2) for p in refined)
    for p in refined:                              # zero-initialised offset heads: P_i = P_init
        torch.testing.assert_close(p, pose[..., :2])
    px = torch.tensor([[[0.0, 0.0], [191.0, 255.0]]])
    assert to_normalised(px, (256, 192)).abs().max() < 1
    torch.testing.assert_close(to_pixels(to_normalised(px, (256, 192)), (256, 192)), px)
    with pytest.raises(ValueError, match='3 feature maps'):
        gcn(pose, feats[:2])
    opec = IGPGCN(skeleton_adjacency(LIMBS, k), (16, 8, 4), hidden=32, predict='absolute', sample_at='initial')
    assert all(p.shape == (3, k, 2) and not torch.equal(p, pose[..., :2]) for p in opec(pose, feats))
    with pytest.raises(ValueError, match='predict'):
        IGPGCN(skeleton_adjacency(LIMBS, k), (16, 8, 4), predict='delta')


def test_progressive_loss_masks_unlabelled_joints_eq6_eq7():
    target = torch.zeros(1, 3, 2)
    p1 = torch.tensor([[[1., 1.], [2., 2.], [100., 100.]]])
    mask = torch.tensor([[1, 1, 0]])
    total, per_block = progressive_gcn_loss([p1, p1 / 2, p1 * 0], target, mask, (0.3, 0.5, 1.0))
    assert per_block[0].item() == pytest.approx(1.5)           # joint 2 (unlabelled) ignored
    assert per_block[1].item() == pytest.approx(0.75) and per_block[2].item() == 0
    assert total.item() == pytest.approx(0.3 * 1.5 + 0.5 * 0.75)
    assert progressive_gcn_loss([p1] * 3, target, torch.zeros(1, 3), (1, 1, 1))[0].item() == 0


class TinySimCC(nn.Module):
    """A minimal SimCC network with HRNet-style outputs, for tests that need no model zoo."""

    def __init__(self, k=5, width=8, input_size=(32, 24), split=2.0):
        super().__init__()
        h, w = input_size
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 4, 1), nn.BatchNorm2d(width), nn.ReLU())
        self.down = nn.ModuleList(nn.Conv2d(width * 2 ** i, width * 2 ** (i + 1), 3, 2, 1) for i in range(2))
        self.head = nn.Conv2d(width, k, 1)
        self.fx, self.fy = nn.Linear(h * w // 16, int(w * split)), nn.Linear(h * w // 16, int(h * split))

    def forward(self, x):
        f = self.stem(x)
        ms = [f]
        for d in self.down:
            ms.append(d(ms[-1]))
        v = self.head(f).flatten(2)
        return {'feature': f, 'multiscale': ms, 'simcc_x': self.fx(v), 'simcc_y': self.fy(v)}


def _batch(b=4, k=5, size=(32, 24), split=2.0):
    h, w = size
    g = torch.Generator().manual_seed(0)
    joints = torch.cat([torch.rand(b, k, 1, generator=g) * (w - 1),
                        torch.rand(b, k, 1, generator=g) * (h - 1), torch.full((b, k, 1), 2.)], -1)
    return {'image': torch.randn(b, 3, h, w, generator=g), 'joints': joints,
            'target_weight': torch.tensor([[1., 1., 1., 0., 1.]]).repeat(b, 1),
            'simcc_x': torch.softmax(torch.randn(b, k, int(w * split), generator=g), -1),
            'simcc_y': torch.softmax(torch.randn(b, k, int(h * split), generator=g), -1)}


def test_refiner_output_dict_and_frozen_student_after_steps():
    torch.manual_seed(0)
    base = TinySimCC()
    with torch.no_grad():                                    # give BN non-trivial statistics
        base.train()(torch.randn(8, 3, 32, 24) * 3 + 1)
    frozen = copy.deepcopy(base.state_dict())
    refiner = IGPRefiner(base, LIMBS, 5, (32, 24), feature_levels=(2, 1, 0), hidden=16)
    teacher = TinySimCC().eval()
    method = ProgressiveGCNDistill(block_weights=(0.3, 0.5, 1.0), target='teacher')
    opt = torch.optim.Adam([p for p in refiner.parameters() if p.requires_grad], lr=1e-2)
    refiner.train()
    assert not base.training                                 # train() keeps the base in eval mode
    batch = _batch()
    first = None
    for _ in range(15):
        losses, out = method(batch, refiner, {'teacher': teacher})
        loss = sum(losses.values())
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert set(losses) == {'gcn1', 'gcn2', 'gcn3'} and loss.item() < first
    assert out['coords'].shape == (4, 5, 2) and out['scores'].shape == (4, 5)
    assert len(out['refined']) == 3 and torch.equal(out['coords'], out['refined'][-1])
    assert all(not p.requires_grad and p.grad is None for p in base.parameters())
    for name, value in base.state_dict().items():            # weights and BN buffers unchanged
        assert torch.equal(value, frozen[name]), name
    assert not torch.equal(out['coords'], out['init_coords'])  # the GCN did move the pose


def test_stage1_method_terms_and_weight_decay():
    torch.manual_seed(0)
    student, teacher = TinySimCC(width=8), TinySimCC(width=12).eval()
    method = TwoStageDistill(LIMBS, np.full(4, 0.25, np.float32), 8, 12, alpha=5e-5, beta=0.1,
                             feature_kd=True, pose_l1=True, pose_structure=True, weight_decay=True,
                             softargmax_beta=1.0)
    batch = _batch()
    method.on_epoch_start(0, 4, lr=1e-3)
    losses, out = method(batch, student, {'teacher': teacher})
    assert set(losses) == {'simcc_kl', 'feature', 'pose'} and 'simcc_x' in out
    method.on_epoch_start(2, 4, lr=1e-3)                     # t = 3 of T = 4 -> gamma = 0.5
    later, _ = method(batch, student, {'teacher': teacher})
    assert later['pose'].item() == pytest.approx(0.5 * losses['pose'].item(), rel=1e-5)
    assert later['feature'].item() == pytest.approx(0.5 * losses['feature'].item(), rel=1e-5)
    sum(later.values()).backward()
    assert method.align.weight.grad is not None              # the 1x1 conv of Eq. (1) learns


def test_methods_registered_and_reject_unknown_params():
    assert 'two_stage' in METHODS and 'two_stage_gcn' in METHODS
    with pytest.raises(ValueError, match='unknown'):
        METHODS['two_stage_gcn']({'blok_weights': (1, 1, 1)}, None, {'t': nn.Identity()}, None)


# ------------------------------------------------------------------ paper tables and schemes

def test_tables_transcribed_and_rows_map_to_schemes():
    from kdlib.paper_tables import two_stage_gcn as paper
    assert paper.HEADLINE in paper.TABLES
    t4 = paper.TABLES['table4']
    assert [r.paper['AP'] for r in t4.rows] == [66.7, 67.6, 67.3, 67.7, 68.2, 67.9, 68.7]
    assert paper.TABLES['table1'].rows[-1].paper['AP'] == 76.2
    assert paper.TABLES['table3'].rows[-1].paper['APH'] == 59.3
    for table in paper.TABLES.values():
        for row in table.run_rows():
            assert row.params['scheme'] in paper.SCHEMES and row.params['tables'] == ''
        # every claim holds on the paper's own numbers (the ledger reads the paper right)
        values = {r.label: r.paper for r in table.rows}
        for claim in table.claims:
            assert claim.check(values), claim.text


def test_scheme_chains():
    from kdlib.paper_tables import two_stage_gcn as paper
    s6 = paper.experiments('scheme6', 'crowdpose', 'smoke', 0)
    assert list(s6) == ['teacher', 'student', 'refiner']
    assert s6['student'].method_params == {'feature_kd': True, 'pose_l1': True, 'pose_structure': True}
    assert s6['refiner'].init_from == s6['student'] and s6['refiner'].student_builder == 'igp_gcn'
    assert s6['refiner'].lr == 1e-3 and s6['student'].teachers['teacher'] == s6['teacher']
    s1 = paper.experiments('scheme1', 'crowdpose', 'smoke', 0)
    assert s1['refiner'].method_params['target'] == 'gt' and s1['refiner'].teachers == {}
    assert s1['student'].method == 'supervised'
    assert paper.stage2_epochs(210) == 30 and paper.stage2_epochs(2) == 1
    with pytest.raises(KeyError, match='unknown scheme'):
        paper.experiments('scheme7')


# ------------------------------------------------------------------ notebook

ROOT = __import__('pathlib').Path(__file__).resolve().parents[1]


def test_notebook_runs_on_smoke(run_notebook):
    """The whole notebook on smoke, cold run cache: trains teacher, two students and a GCN
    (~30 s of CPU time; ~80 s wall on a busy 2-core machine)."""
    metrics, _ = run_notebook('02_two_stage_gcn.ipynb', figures=True)
    assert {'AP', 'APH', 'Params(M)', 'GFLOPs'} <= set(metrics)
