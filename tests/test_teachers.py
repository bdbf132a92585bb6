"""`kdlib.teachers.teacher_run`: every paper's teacher is one run per profile, trained longer."""
import dataclasses

import pytest

from kdlib.experiment import ExperimentConfig, config_hash
from kdlib.paper_tables import ekr, elpn_mapd, sdp, two_stage_gcn, unified
from kdlib.profiles import get_profile, scaled_milestones
from kdlib.teachers import TEACHER_SEED, teacher_run


def _teachers(profile: str, seed: int) -> dict[str, ExperimentConfig]:
    """The teacher each paper's tables distil from, built by the paper's own module."""
    return {
        'ekr': ekr.teacher_config(profile, 'coco'),
        'unified': unified.teacher_config(profile, 'coco'),
        'sdp': sdp.experiment_config(profile, seed, 'hourglass4', 'fpd', 'mpii').teachers['teacher'],
        'two_stage_gcn': two_stage_gcn.experiments('scheme6', 'crowdpose', profile, seed)['teacher'],
        'elpn_mapd': elpn_mapd.experiment_config(profile, seed, 'mpii').teachers['teacher'],
    }


@pytest.mark.parametrize('profile', ['quick', 'classroom'])
def test_every_paper_teacher_trains_for_the_profile_teacher_epochs_at_one_seed(profile):
    p = get_profile(profile)
    assert p['teacher_epochs'] > p['epochs']          # the small profiles' teachers train longer
    for paper, teacher in _teachers(profile, seed=2).items():
        assert teacher.seed == TEACHER_SEED, paper
        resolved = teacher.resolved_profile()
        assert resolved['epochs'] == p['teacher_epochs'], paper
        assert resolved['lr_milestones'] == scaled_milestones(p['teacher_epochs']), paper
        # one teacher per profile: the same run whatever the student's seed
        assert config_hash(teacher) == config_hash(_teachers(profile, seed=1)[paper]), paper


def test_smoke_and_recipe_schedules_are_kept():
    cfg = ExperimentConfig(profile='smoke', model='hrnet_w32', seed=3)
    assert teacher_run(cfg) == dataclasses.replace(cfg, seed=TEACHER_SEED)   # smoke: same epochs
    fixed = ExperimentConfig(profile='quick', model='hrnet_w32', epochs=7)
    assert teacher_run(fixed).epochs == 7                                     # a recipe's own epochs
    gpu = ExperimentConfig(profile='gpu', model='hrnet_w32', profile_overrides={'lr_milestones': (45, 55)})
    run = teacher_run(gpu)                                                    # recipe milestones scaled
    assert run.epochs == get_profile('gpu')['teacher_epochs'] == 120
    assert run.profile_overrides['lr_milestones'] == (90, 110)


def test_elpn_teacher_row_is_the_mapd_teacher():
    for dataset in ('mpii', 'coco'):
        row = elpn_mapd.experiment_config('classroom', 2, dataset, elpn_mapd.TEACHER, 'supervised')
        mapd = elpn_mapd.experiment_config('classroom', 1, dataset, augmentation='hrnet')
        assert config_hash(row) == config_hash(mapd.teachers['teacher'])
