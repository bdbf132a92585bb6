"""SDP (kdlib/methods/sdp.py) and its FPD baseline (kdlib/methods/fpd.py): equations on hand-made
tensors, the ring buffer, stepping, a few training steps, and the notebook on the smoke profile."""
from __future__ import annotations


from pathlib import Path

import pytest
import torch
from torch import nn

from kdlib.methods import fpd, sdp

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- helpers

class TinyNet(nn.Module):
    """A 1-conv heatmap 'network' that records every input batch it sees."""

    def __init__(self, num_joints: int = 2):
        super().__init__()
        self.conv = nn.Conv2d(3, num_joints, 3, padding=1)
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x)
        return {'heatmaps': self.conv(x[:, :, ::4, ::4]), 'feature': x.mean(1, keepdim=True)}


def make_batch(step: int, b: int = 2, k: int = 2, size: int = 16) -> dict:
    g = torch.Generator().manual_seed(step)
    heatmap = torch.zeros(b, k, size // 4, size // 4)
    heatmap[:, :, 1, 2] = 1.0
    return {'image': torch.randn(b, 3, size, size, generator=g), 'heatmap': heatmap,
            'target_weight': torch.ones(b, k), 'index': torch.arange(b) + 100 * step,
            'joints': torch.zeros(b, k, 3)}


def entry(step: int) -> sdp.BufferEntry:
    batch = make_batch(step)
    return sdp.BufferEntry(step, batch['image'], batch['heatmap'], batch['target_weight'],
                           torch.full_like(batch['heatmap'], float(step)))


# ----------------------------------------------------------------------------- equations

def test_eq3_self_distillation_loss_hand_made():
    pred = torch.ones(1, 2, 2, 2)                      # (B, K, h, w)
    soft = torch.zeros(1, 2, 2, 2)
    soft[0, 0, 0, 0] = 3.0                              # one pixel differs by 2 in joint 0
    weight = torch.tensor([[1.0, 0.0]])                 # joint 1 ignored
    # joint 0: squared errors 4 + 1 + 1 + 1 = 7 over 8 elements of (B, K, h, w); 0.5 * mean
    assert sdp.self_distillation_loss(pred, soft, weight).item() == pytest.approx(0.5 * 7 / 8)
    # unweighted: joint 1 adds 4 ones
    assert sdp.self_distillation_loss(pred, soft, None).item() == pytest.approx(0.5 * 11 / 8)


def test_eq3_soft_target_is_detached():
    pred = torch.zeros(1, 1, 2, 2, requires_grad=True)
    soft = torch.ones(1, 1, 2, 2, requires_grad=True)
    sdp.self_distillation_loss(pred, soft).backward()
    assert pred.grad is not None and soft.grad is None


def test_eq2_weights_both_columns_equally():
    fresh, backup = torch.rand(3, 2, 4, 4), torch.rand(3, 2, 4, 4)
    gt_f, gt_b = torch.rand(3, 2, 4, 4), torch.rand(3, 2, 4, 4)
    w = torch.ones(6, 2)
    joint = sdp.ground_truth_loss(torch.cat([fresh, backup]), torch.cat([gt_f, gt_b]), w)
    per_column = (sdp.ground_truth_loss(fresh, gt_f, w[:3]) + sdp.ground_truth_loss(backup, gt_b, w[3:]))
    assert joint.item() == pytest.approx(per_column.item() / 2)        # a mean, not a sum


def test_eq4_eq5_and_refined_target():
    assert sdp.stepped(1e-3, 1, 10) == (pytest.approx(1e-4), 10)
    assert sdp.total_loss(torch.tensor(1.0), torch.tensor(2.0), alpha=3).item() == 7.0
    gt, soft = torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)
    assert torch.allclose(sdp.refined_target(gt, soft, alpha=3), torch.full_like(gt, 0.75))


# ----------------------------------------------------------------------------- ring buffer

def test_buffer_returns_exactly_the_batch_from_s_steps_earlier():
    buf = sdp.BatchRingBuffer(distance=3)
    pushed = {}
    for t in range(10):
        backup = buf.backup(t)
        if t < 3:
            assert backup is None
        else:
            assert backup is pushed[t - 3]                          # the very same tensors
            assert torch.equal(backup.image, make_batch(t - 3)['image'])
        pushed[t] = entry(t)
        buf.push(pushed[t])
        assert len(buf) == min(t + 1, 3)


def test_buffer_refills_at_the_old_distance_after_growing():
    buf = sdp.BatchRingBuffer(distance=2)
    used = []
    for t in range(12):
        if t == 4:
            buf.grow(5)                                             # Eq. (4) at a milestone
        backup = buf.backup(t)
        used.append(None if backup is None else t - backup.step)
        buf.push(entry(t))
    # first 2 steps: empty; then distance 2 until the buffer holds 5 batches, then 5
    assert used == [None, None, 2, 2, 2, 2, 2, 5, 5, 5, 5, 5]
    with pytest.raises(ValueError, match='only grow'):
        buf.grow(1)


def test_buffer_memory_is_reported():
    buf = sdp.BatchRingBuffer(distance=2)
    e = entry(0)
    buf.push(e)
    assert buf.nbytes() == e.nbytes() > 0
    assert sdp.buffer_bytes(32, (256, 256), 16, distance=100) > 2 * 2**30    # paper scale, s=100


# ----------------------------------------------------------------------------- the method

@pytest.mark.parametrize('stepping', [True, False])
def test_s_grows_at_milestones_only_when_stepping(stepping):
    method = sdp.build_method({'s': 1, 'stepping': stepping}, None, {}, None)
    method.on_epoch_start(0, 3, 1e-3)
    assert method.distance == 1
    method.on_lr_milestone(1, 0.1)                 # trainer convention: lr *= 0.1
    assert method.distance == (10 if stepping else 1)
    method.on_lr_milestone(2, 10)                  # paper convention: lr /= 10
    assert method.distance == (100 if stepping else 1)


def test_method_trains_on_both_columns_and_distils_the_old_prediction():
    torch.manual_seed(0)
    student, method = TinyNet(), sdp.SDP(alpha=3.0, distance=2)
    soft_at = {}
    for t in range(5):
        batch = make_batch(t)
        terms, outputs = method(batch, student, {})
        seen = student.seen[-1]
        assert outputs['heatmaps'].shape[0] == 2                     # fresh column only
        if t < 2:                                                    # empty buffer: fresh only
            assert seen.shape[0] == 2 and terms['sd'].item() == 0.0
        else:
            assert torch.equal(seen[2:], make_batch(t - 2)['image'])    # Eq. (1): I^{t-s}
            pred_backup = student.conv(seen[2:, :, ::4, ::4])
            expect = 3.0 * sdp.self_distillation_loss(pred_backup, soft_at[t - 2],
                                                     torch.ones(2, 2))
            assert terms['sd'].item() == pytest.approx(expect.item(), rel=1e-5)   # Eq. (3), (5)
            assert expect.item() > 0
            pred = student.conv(seen[:, :, ::4, ::4])                    # both columns
            target = torch.cat([batch['heatmap'], make_batch(t - 2)['heatmap']])
            l_gt = sdp.ground_truth_loss(pred, target, torch.ones(4, 2))
            assert terms['heatmap_mse'].item() == pytest.approx(l_gt.item(), rel=1e-5)   # Eq. (2)
        soft_at[t] = outputs['heatmaps'].detach()
        with torch.no_grad():                       # stand-in for an optimiser step: Theta changes
            student.conv.weight.add_(0.1 * torch.randn_like(student.conv.weight))
    history = method.history()
    assert history['distance_used'] == [0, 0, 2, 2, 2]
    assert history['l_sd'][:2] == [0.0, 0.0] and history['l_sd'][2] > 0


def test_evaluation_mode_leaves_the_buffer_alone():
    student, method = TinyNet(), sdp.SDP(distance=1)
    student.eval()
    method(make_batch(0), student, {})
    assert len(method.buffer) == 0 and method.step == 0


def test_a_few_sdp_steps_reduce_the_loss():
    torch.manual_seed(0)
    student, method = TinyNet(), sdp.SDP(alpha=3.0, distance=1)
    opt = torch.optim.Adam(student.parameters(), lr=0.05)
    batches = [make_batch(i % 3) for i in range(40)]
    losses = []
    for batch in batches:
        terms, _ = method(batch, student, {})
        loss = sum(terms.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[1:6]) / 5


def test_state_round_trip_and_snapshots():
    student, method = TinyNet(), sdp.SDP(distance=1, track_index=101)
    for epoch in range(3):
        method.on_epoch_start(epoch, 3, 1e-3)
        method(make_batch(1), student, {})             # index 100, 101
    assert [s['epoch'] for s in method.snapshots] == [0, 1, 2]
    assert method.snapshots[0]['soft'].shape == (2, 4, 4)
    method.on_lr_milestone(2, 0.1)
    clone = sdp.SDP()
    clone.load_state_dict(method.state_dict())
    assert clone.distance == 10 and clone.step == 3 and clone.history()['step'] == [0, 1, 2]


def test_memory_guard_raises_a_clear_error():
    student, method = TinyNet(), sdp.SDP(distance=4, max_buffer_gb=1e-9)
    with pytest.raises(MemoryError, match='max_buffer_gb'):
        method(make_batch(0), student, {})


@pytest.mark.parametrize('num_epochs, fails', [(10, True), (2, False)])
def test_a_milestone_that_would_overflow_the_buffer_fails_at_once(num_epochs, fails):
    """s = 1 -> 10 after one epoch of 3 steps: with 9 epochs left the buffer would reach 10 batches
    (> 5 allowed) and the milestone itself raises; with 1 epoch left it can only reach 1 + 3."""
    student = TinyNet()
    method = sdp.SDP(distance=1, max_buffer_gb=5.5 * entry(0).nbytes() / 2**30)
    method.on_epoch_start(0, num_epochs, 1e-3)
    for t in range(3):
        method(make_batch(t), student, {})
    if fails:
        with pytest.raises(MemoryError, match='s=10 '):
            method.on_lr_milestone(1, 0.1)
    else:
        method.on_lr_milestone(1, 0.1)
        assert method.distance == 10


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match='unknown SDP parameters'):
        sdp.build_method({'alhpa': 3}, None, {}, None)
    with pytest.raises(ValueError, match='>= 1'):
        sdp.SDP(distance=0)


# ----------------------------------------------------------------------------- FPD baseline

def test_fpd_loss_hand_made():
    student = torch.ones(1, 1, 2, 2)
    teacher = torch.zeros(1, 1, 2, 2)
    target = torch.full((1, 1, 2, 2), 3.0)
    l_gt = sdp.ground_truth_loss(student, target, torch.ones(1, 1))
    gt, kd = fpd.fpd_loss(l_gt, student, teacher, torch.ones(1, 1), kd_alpha=0.5)
    assert gt.item() == pytest.approx(0.5 * 0.5 * 4)      # (1 - a) * 0.5 * mean((1 - 3)^2)
    assert kd.item() == pytest.approx(0.5 * 0.5 * 1)      # a * 0.5 * mean((1 - 0)^2)


def test_fpd_method_uses_the_teacher_without_gradients():
    torch.manual_seed(0)
    student, teacher = TinyNet(), TinyNet().eval()
    method = fpd.build_method({}, student, {'teacher': teacher}, None)
    terms, _ = method(make_batch(0), student, {'teacher': teacher})
    sum(terms.values()).backward()
    assert teacher.conv.weight.grad is None and student.conv.weight.grad is not None
    with pytest.raises(ValueError, match='teacher'):
        fpd.build_method({}, student, {}, None)


# ----------------------------------------------------------------------------- notebook

def test_fpd_row_runs_on_smoke_and_counts_its_teacher(tmp_path, monkeypatch):
    """Table 3's FPD row end to end: the Hourglass-8 teacher is trained first, and its training
    time and GFLOPs are added to the student's."""
    monkeypatch.setenv('KDLIB_RUNS', str(tmp_path / 'runs'))
    from kdlib.experiment import run_experiment
    from kdlib.viz_sdp import row_config, row_metrics
    cfg = row_config('smoke', 'hourglass4', 'fpd', 'mpii', seed=0)
    result = run_experiment(cfg, show_progress=False)
    teacher = run_experiment(cfg.teachers['teacher'], show_progress=False)
    metrics = row_metrics(cfg, result)
    assert metrics['train_time_s'] == pytest.approx(result['train_time_s'] + teacher['train_time_s'])
    assert metrics['GFLOPs'] == pytest.approx(result['gflops_paper'] + teacher['gflops_paper'])
    assert teacher['gflops_paper'] > result['gflops_paper'] > 0          # HG-8 vs HG-4
    assert 'Mean' in metrics and 'Mean@0.1' in metrics


def test_paper_tables_are_complete():
    from kdlib.paper_tables.sdp import HEADLINE, TABLES
    assert set(TABLES) == {f'table{i}' for i in range(1, 8)} and HEADLINE in TABLES
    assert len(TABLES['table1'].rows) == 10 and len(TABLES['table5'].rows) == 6
    t3 = {r.label: r for r in TABLES['table3'].rows}
    assert t3['OKDHP [CVPR21]'].kind == 'quoted' and t3['FPD [CVPR19]'].params['method'] == 'fpd'
    ratio = TABLES['table3'].derived['Time ratio']({'HG-4Stacks': {'Training Time (h)': 2.0},
                                                    'SDP (Ours)': {'Training Time (h)': 3.0}})
    assert ratio == {'HG-4Stacks': 1.0, 'SDP (Ours)': 1.5}
    # the claims evaluate on the paper's own numbers as they should
    paper = {t: {r.label: r.paper for r in TABLES[t].rows} for t in TABLES}
    for name in ('table4', 'table5', 'table6', 'table7', 'table2'):
        assert all(c.check(paper[name]) for c in TABLES[name].claims), name


def test_notebook_runs_on_smoke(run_notebook):
    run_notebook('01_sdp.ipynb', save=False)                       # interactive: figures on
    # driver mode: the cached run is reused, figures are skipped, the metrics land in result_path
    saved, _ = run_notebook('01_sdp.ipynb', table='table4')
    assert {'Mean', 'Mean@0.1', 'train_time_s', 'GFLOPs'} <= set(saved)
