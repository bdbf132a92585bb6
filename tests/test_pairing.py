"""Paired seeds: rows of a table at the same seed start from the same weights and see the same
batches, whatever their method or teachers (the claims ledger tests per-seed differences)."""
import torch

from kdlib.experiment import ExperimentConfig, build_run, run_experiment
from kdlib.train import ddp
from kdlib.train.checkpoint import seed_everything
from kdlib.train.trainer import make_loader


def _first_batch(run, seed):
    seed_everything(seed)                                      # what fit() does before epoch 0
    return next(iter(make_loader(run.train_set, run.train_cfg, 0, True, ddp.current())))


def _runs(seed, isolated):
    teacher = ExperimentConfig(profile='smoke', dataset='coco', model='sbl_r50', epochs=1)
    baseline = ExperimentConfig(profile='smoke', dataset='coco', model='litehrnet_18', seed=seed)
    distilled = ExperimentConfig(profile='smoke', dataset='coco', model='litehrnet_18', seed=seed,
                                 method='fpd', teachers={'teacher': teacher})
    teachers = {'teacher': run_experiment(teacher, show_progress=False)}
    return build_run(baseline, {}, None), build_run(distilled, teachers, None)


def test_rows_at_one_seed_share_initialisation_and_batches(isolated_runs):
    base, kd = _runs(0, isolated_runs)
    a, b = base.student.state_dict(), kd.student.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    batch_a, batch_b = _first_batch(base, 0), _first_batch(kd, 0)
    assert torch.equal(batch_a['index'], batch_b['index'])
    assert torch.equal(batch_a['image'], batch_b['image'])            # same augmentation too
    assert torch.equal(batch_a['heatmap'], batch_b['heatmap'])
    other, _ = _runs(1, isolated_runs)                                # another seed: another start
    c = other.student.state_dict()
    assert not all(torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())
    assert not torch.equal(_first_batch(other, 1)['index'], batch_a['index'])
