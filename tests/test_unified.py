"""Unified skeleton + multi-teacher distillation (kdlib.data.unified, kdlib.methods.unified)."""
import numpy as np
import pytest
import torch

from kdlib.data.unified import (SHARED_JOINTS, UNIFIED, from_unified, halpe_thorax,
                                halpe_to_unified, teacher_view, to_unified)
from kdlib.methods.unified import (UnifiedMultiTeacher, conditional_keypoint_loss,
                                   distillation_loss, simcc_kd)
from kdlib.skeletons import SKELETONS, index_map


def test_union_skeleton_is_21_points_12_shared():
    assert UNIFIED.num_joints == 21
    assert len(SHARED_JOINTS) == 12
    coco, mpii = SKELETONS['coco'], SKELETONS['mpii']
    assert set(UNIFIED.joint_names) == set(coco.joint_names) | set(mpii.joint_names)   # Eq. (5)
    assert len(set(coco.joint_names) - set(mpii.joint_names)) == 5                      # Eq. (3)
    assert len(set(mpii.joint_names) - set(coco.joint_names)) == 4                      # Eq. (4)


@pytest.mark.parametrize('name', ['coco', 'mpii'])
def test_index_maps_are_injective_and_round_trip(name):
    skel = SKELETONS[name]
    m = index_map(skel, UNIFIED)
    assert len(set(m[m >= 0])) == skel.num_joints            # every source point lands once
    joints = np.random.default_rng(0).random((skel.num_joints, 3)).astype(np.float32)
    back = from_unified(to_unified(joints, skel)[None], skel)[0]
    np.testing.assert_array_equal(back, joints)


def test_halpe_map_covers_20_points_and_thorax_is_shoulder_midpoint():
    halpe = SKELETONS['halpe']
    m = index_map(halpe, UNIFIED)
    assert (m >= 0).sum() == 20 and UNIFIED.joint_names[m.tolist().index(-1)] == 'thorax'
    joints = np.zeros((26, 3), np.float32)
    joints[halpe.index('left_shoulder')] = (10, 20, 2)
    joints[halpe.index('right_shoulder')] = (30, 40, 1)
    u = halpe_to_unified(joints)
    np.testing.assert_allclose(u[UNIFIED.index('thorax')], (20, 30, 1))
    joints[halpe.index('right_shoulder'), 2] = 0             # one shoulder missing -> unlabelled
    assert halpe_thorax(joints)[2] == 0


def test_flip_pairs_stay_consistent_through_the_maps():
    for name in ('coco', 'mpii', 'halpe'):
        skel = SKELETONS[name]
        m = index_map(skel, UNIFIED)
        for a, b in skel.flip_pairs:
            ua, ub = np.where(m == a)[0], np.where(m == b)[0]
            if len(ua) and len(ub):
                assert UNIFIED.flip_index[ua[0]] == ub[0]


def test_sigmas_are_cocos_for_coco_points_and_documented_for_the_rest():
    coco = SKELETONS['coco']
    np.testing.assert_allclose(UNIFIED.sigmas[:17], coco.sigmas)   # no off-by-one shift
    s = dict(zip(UNIFIED.joint_names, UNIFIED.sigmas))
    assert s['head_top'] == pytest.approx(.026) and s['pelvis'] == pytest.approx(.066)
    assert s['thorax'] == pytest.approx(s['left_shoulder'])


def _batch(b=3, k=21, lx=24, ly=32, weight=None):
    g = torch.Generator().manual_seed(0)
    return {'simcc_x': torch.softmax(torch.randn(b, k, lx, generator=g), -1),
            'simcc_y': torch.softmax(torch.randn(b, k, ly, generator=g), -1),
            'target_weight': torch.ones(b, k) if weight is None else weight}


def test_conditional_loss_gives_no_gradient_to_unlabelled_points():
    weight = torch.ones(3, 21)
    weight[:, 17:] = 0                                        # a COCO image: MPII-only points unlabelled
    batch = _batch(weight=weight)
    out = {'simcc_x': torch.randn(3, 21, 24, requires_grad=True),
           'simcc_y': torch.randn(3, 21, 32, requires_grad=True)}
    conditional_keypoint_loss(out, batch).backward()
    assert out['simcc_x'].grad[:, 17:].abs().max() == 0
    assert out['simcc_x'].grad[:, :17].abs().max() > 0


def test_kd_is_zero_for_equal_distributions_and_positive_otherwise():
    logits = torch.randn(2, 5, 16)
    assert simcc_kd(logits, logits).abs().max() < 1e-6
    assert (simcc_kd(logits, torch.randn(2, 5, 16)) > 0).all()


def test_distillation_touches_only_the_teachers_keypoints():
    mpii_index = torch.as_tensor(index_map(UNIFIED, SKELETONS['mpii']))
    student = {'simcc_x': torch.randn(2, 21, 24, requires_grad=True),
               'simcc_y': torch.randn(2, 21, 32, requires_grad=True)}
    teacher = {'simcc_x': torch.randn(2, 16, 24), 'simcc_y': torch.randn(2, 16, 32)}
    distillation_loss(student, teacher, mpii_index, 21).backward()
    touched = student['simcc_x'].grad.abs().sum(dim=(0, 2)) > 0
    assert set(torch.nonzero(touched).flatten().tolist()) == set(mpii_index.tolist())


def test_teacher_view_pads_and_bins_shift_exactly():
    images = torch.randn(1, 3, 8, 6)
    padded = teacher_view(images, (8, 6), (8, 8))
    assert padded.shape == (1, 3, 8, 8)
    torch.testing.assert_close(padded[..., 1:7], images)
    method = UnifiedMultiTeacher({'mpii': 'mpii'}, (8, 6), {'mpii': (8, 8)}, split_ratio=2.0)
    assert method.x_offset('mpii') == 2                       # 1 pixel of padding = 2 bins


class _Fixed(torch.nn.Module):
    """A 'network' that outputs learnable SimCC logits, for a loss-falls check."""

    def __init__(self, k, lx, ly):
        super().__init__()
        self.x = torch.nn.Parameter(torch.zeros(1, k, lx))
        self.y = torch.nn.Parameter(torch.zeros(1, k, ly))

    def forward(self, images):
        b = images.shape[0]
        return {'simcc_x': self.x.expand(b, -1, -1), 'simcc_y': self.y.expand(b, -1, -1)}


def test_total_loss_weights_and_training_steps_reduce_it():
    torch.manual_seed(0)
    method = UnifiedMultiTeacher({'coco': 'coco', 'mpii': 'mpii'}, (16, 12),
                                 {'coco': (16, 12), 'mpii': (16, 16)}, split_ratio=1.0)
    student = _Fixed(21, 12, 16)
    teachers = {'coco': _Fixed(17, 12, 16), 'mpii': _Fixed(16, 16, 16)}
    for t in teachers.values():
        torch.nn.init.normal_(t.x), torch.nn.init.normal_(t.y)
    batch = dict(_batch(2, 21, 12, 16), image=torch.zeros(2, 3, 16, 12))
    terms, _ = method(batch, student, teachers)
    assert set(terms) == {'ck', 'kd_coco', 'kd_mpii'}
    plain = UnifiedMultiTeacher({'coco': 'coco', 'mpii': 'mpii'}, (16, 12),
                                {'coco': (16, 12), 'mpii': (16, 16)}, split_ratio=1.0, alpha=1.0)
    full_ck = plain(batch, student, teachers)[0]['ck']
    assert terms['ck'].item() == pytest.approx(0.30 * full_ck.item())                 # Eq. (8)
    opt = torch.optim.SGD(student.parameters(), lr=5.0)
    first = sum(terms.values()).item()
    for _ in range(20):
        opt.zero_grad()
        loss = sum(method(batch, student, teachers)[0].values())
        loss.backward()
        opt.step()
    assert loss.item() < first


def test_unified_table_rows_all_run_and_params_valid():
    from kdlib.paper_tables import unified as paper
    for table in paper.TABLES.values():
        for row in table.run_rows():
            cfg = paper.experiment_config('smoke', 0, **row.params)
            assert cfg.model in ('rtmpose_t', 'rtmpose_s')
            assert (cfg.dataset == 'unified') == (row.params['training'] == 'unified')
            if row.params['training'] == 'unified' and row.params['distill']:
                assert set(cfg.teachers) == {'coco', 'mpii'}


def test_notebook_runs_on_smoke(run_notebook):
    metrics, _ = run_notebook('04_unified_skeleton.ipynb')
    assert {'PCK', 'AP', 'Avg', 'Kpts', 'MPII (PCKh)', 'COCO (AP)', 'Average'} <= set(metrics)
    assert metrics['Kpts'] == 21


def test_paper_profile_uses_the_rtmpose_schedule():
    from kdlib.paper_tables import unified as paper
    cfg = paper.experiment_config('paper', 0, 'rtmpose_t', 'unified')
    assert (cfg.epochs, cfg.batch_size, cfg.recipe) == (420, 256, 'adamw_cosine')      # Section 4.2
    assert cfg.teachers['coco'].epochs == 420
    assert paper.experiment_config('smoke', 0, 'rtmpose_t', 'coco').epochs is None
