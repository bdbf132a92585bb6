"""The kit's SimCC distillation KL (DWPose KDLoss reduction) and the loss-balance table."""
import math

import numpy as np
import pytest
from scipy.special import logsumexp
import torch
from torch import nn

from kdlib.balance import last_layer_parameters, loss_balance, run_balance
from kdlib.experiment import ExperimentConfig, run_experiment
from kdlib.losses import simcc_kd, simcc_kd_per_joint, simcc_kl
from kdlib.methods.base import Method, task_loss


def _logits(seed, b=4, k=17, bins=384):
    """Realistic SimCC logits: a peak near a per-joint location plus noise."""
    g = torch.Generator().manual_seed(seed)
    centre = torch.randint(40, bins - 40, (b, k, 1), generator=g).float()
    grid = torch.arange(bins).float()
    peak = 8.0 * torch.exp(-((grid - centre) ** 2) / (2 * 6.0 ** 2))  # (b, k, bins)
    return peak + 0.3 * torch.randn(b, k, bins, generator=g)


def _dwpose_kdloss_reference(sx, sy, tx, ty, beta=1.0):
    """mmpose models/losses/logit_dis_loss.py::KDLoss, written out with numpy loops."""
    def axis(s, t):
        n, k, _ = s.shape
        total = 0.0
        for i in range(n):
            per_person = 0.0
            for j in range(k):
                log_s = s[i, j] * beta - logsumexp(s[i, j] * beta)
                log_t = t[i, j] * beta - logsumexp(t[i, j] * beta)
                per_person += float((np.exp(log_t) * (log_t - log_s)).sum())   # KL summed over bins
            total += per_person                                           # summed over K
        return total / n                                                  # mean over N
    arrays = [a.double().numpy() for a in (sx, sy, tx, ty)]
    return (axis(arrays[0], arrays[2]) + axis(arrays[1], arrays[3])) / sx.shape[1]   # / num_joints


@pytest.mark.parametrize('beta', [1.0, 10.0])
def test_simcc_kd_equals_dwpose_kdloss(beta):
    sx, sy, tx, ty = _logits(0), _logits(1, bins=512), _logits(2), _logits(3, bins=512)
    got = simcc_kd(sx, sy, tx, ty, beta=beta).item()
    assert got == pytest.approx(_dwpose_kdloss_reference(sx, sy, tx, ty, beta), rel=1e-5)


def test_simcc_kd_bin_reduction_and_temperature():
    s, t = _logits(4), _logits(5)
    total = simcc_kd_per_joint(s, t, bins='sum')                    # (B, K)
    assert total.shape == (4, 17)
    assert torch.allclose(simcc_kd_per_joint(s, t, bins='mean'), total / s.shape[-1])
    # Hinton's T^2: KL of softmax(z / T) times T^2
    p = torch.softmax(t / 2.0, -1)
    ref = (p * (p.log() - torch.log_softmax(s / 2.0, -1))).sum(-1) * 4.0
    assert torch.allclose(simcc_kd_per_joint(s, t, temperature=2.0), ref, atol=1e-5)
    assert simcc_kd_per_joint(t, t).abs().max() < 1e-5
    with pytest.raises(ValueError, match="bins"):
        simcc_kd_per_joint(s, t, bins='batchmean')


def test_simcc_kd_is_on_the_task_losss_scale():
    """DWPose's KD term (sum over bins, mean over joints) against SimCC's task loss (mean over
    bins, mean over joints): with a teacher near the labels the ratio is ~ the bin count, not
    ~ the bin count x K (what a sum over joints gives)."""
    b, k, bins = 4, 17, 384
    labels = torch.softmax(_logits(6, b, k, bins), -1)
    student, teacher = _logits(7, b, k, bins), _logits(6, b, k, bins)
    w = torch.ones(b, k)
    task = simcc_kl(student, student, labels, labels, w).item()
    kd = simcc_kd(student, student, teacher, teacher).item()
    assert 0.1 * bins < kd / task < 10 * bins


class _TwoTerms(Method):
    """Task loss on the head plus a term on an inner feature only."""

    def forward(self, batch, student, teachers):
        out = student(batch['image'])
        terms = task_loss(out, batch)
        terms['feature'] = 0.5 * out['feature'].pow(2).mean()
        return terms, out


def _tiny_batch(num_joints=4, size=(64, 48)):
    g = torch.Generator().manual_seed(0)
    h, w = size[0] // 4, size[1] // 4
    return {'image': torch.randn(2, 3, *size, generator=g),
            'heatmap': torch.rand(2, num_joints, h, w, generator=g),
            'target_weight': torch.ones(2, num_joints)}


def test_loss_balance_shares_and_gradients():
    from kdlib.models import build_model
    torch.manual_seed(0)
    student = build_model('sbl_r50', 4, head='heatmap', input_size=(64, 48), variant='smoke')
    before = {k: v.clone() for k, v in student.state_dict().items()}
    table = loss_balance(_TwoTerms(), _tiny_batch(), student)
    assert list(table.index) == ['heatmap_mse', 'feature']
    assert table['share'].sum() == pytest.approx(1.0)
    assert table['grad_share'].sum() == pytest.approx(1.0)
    # the feature term never reaches the last layer, but does reach the backbone
    assert table.loc['feature', 'grad_norm'] == 0.0 and table.loc['feature', 'grad_norm_all'] > 0
    # independent value of the task term: HRNet's 0.5 * mean squared error
    batch = _tiny_batch()
    assert all(torch.equal(v, before[k]) for k, v in student.state_dict().items())   # untouched
    out = student.train()(batch['image'])
    ref = 0.5 * float(((out['heatmaps'].detach() - batch['heatmap']) ** 2).mean())
    assert table.loc['heatmap_mse', 'value'] == pytest.approx(ref, rel=1e-5)


def test_last_layer_is_the_output_layer():
    from kdlib.models import build_model
    model = build_model('litehrnet_18', 4, head='simcc', input_size=(64, 48), variant='smoke')
    params = last_layer_parameters(model, {'simcc_x': None, 'simcc_y': None})
    assert {id(p) for p in params} == {id(p) for p in (*model.head.simcc_x.parameters(),
                                                        *model.head.simcc_y.parameters())}
    with pytest.raises(ValueError, match='no .head'):
        last_layer_parameters(nn.Linear(2, 2), {'heatmaps': None})


def test_run_balance_at_init_and_after_training(isolated_runs):
    teacher = ExperimentConfig(profile='smoke', dataset='coco', model='sbl_r50', epochs=1)
    cfg = ExperimentConfig(profile='smoke', dataset='coco', model='litehrnet_18', method='fpd',
                           teachers={'teacher': teacher}, epochs=1)
    start = run_balance(cfg)
    assert set(start.index) == {'heatmap_mse', 'kd'}
    assert math.isclose(start['share'].sum(), 1.0, rel_tol=1e-6)
    # FPD's kd_alpha = 0.5: both terms are JointsMSE, so their values are the two MSEs halved
    assert (start['value'] > 0).all()
    assert run_balance(cfg).equals(start)                           # same batch, same init
    end = run_balance(cfg, run_experiment(cfg, show_progress=False))
    assert not end['value'].equals(start['value'])
