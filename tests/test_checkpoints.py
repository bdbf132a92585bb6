"""Released checkpoints: key mappings against the references' manifests, mismatch errors, load
reports, checkpoint teachers in ExperimentConfig (hash by content, round trip, missing files).

The manifests (`tests/fixtures/manifests/<model>.json`) hold the key names and shapes of a
checkpoint saved by each reference architecture (MMPose 1.x RTMPose / HRNet / Lite-HRNet,
bearpaw/pytorch-pose Hourglass), recorded once when the mapping was verified by output equality
against the reference code (see kdlib/models/checkpoints.py).
"""
import json
import warnings
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from kdlib.experiment import (ExperimentConfig, build_run, cached_result, config_hash, load_trained,
                              run_experiment)
from kdlib.models import build_model
from kdlib.models.checkpoints import (FORMATS, CheckpointMismatchError, load_checkpoint_into, map_state_dict,
                                     read_state_dict)
from kdlib.models.pretrained import CheckpointRef

MANIFESTS = Path(__file__).parent / 'fixtures' / 'manifests'
NAMES = sorted(p.stem for p in MANIFESTS.glob('*.json'))


def _manifest(name):
    return json.loads((MANIFESTS / f'{name}.json').read_text())


def _kit_state(manifest, device='meta'):
    b = manifest['build']
    with torch.device(device):
        model = build_model(manifest['architecture'], b['num_joints'], head=b['head'],
                            input_size=tuple(b['input_size']), variant=b['variant'])
    return model


def _meta_state(manifest):
    return {k: torch.empty(shape, device='meta') for k, shape in manifest['keys'].items()}


def _release_file(manifest, path, seed=0):
    """A file in the release's format with the manifest's keys and shapes, random values."""
    g = torch.Generator().manual_seed(seed)
    state = {k: torch.rand(shape, generator=g) + 0.5 if shape else torch.tensor(1)
             for k, shape in manifest['keys'].items()}
    meta = {'dataset_meta': {'sigmas': np.array([0.026, 0.025], np.float32), 'num_keypoints': np.int64(17)}}
    torch.save({'state_dict': state, 'meta': meta}, path)   # MMPose 1.x: numpy in meta; bearpaw keys: 'module.'
    return state


def test_manifests_cover_every_architecture():
    assert set(NAMES) >= {'rtmpose_t', 'rtmpose_s', 'rtmpose_m', 'litehrnet_18', 'litehrnet_30',
                          'hrnet_w32', 'hrnet_w48', 'hourglass2', 'hourglass4', 'hourglass8'}


@pytest.mark.parametrize('name', NAMES)
def test_release_keys_map_one_to_one(name):
    """Every tensor of the release fills one kit tensor of the same shape; none unused, none unfilled."""
    manifest = _manifest(name)
    own = _kit_state(manifest).state_dict()
    loaded, report = map_state_dict(_meta_state(manifest), own, name, complete=True)
    assert report.format == manifest['release_format']
    assert report.unused == [] and report.unfilled == []
    assert len(loaded) == len(manifest['keys'])


def test_missing_extra_and_misshapen_tensors_are_named():
    manifest = _manifest('rtmpose_t')
    own = _kit_state(manifest).state_dict()
    state = _meta_state(manifest)
    partial = {k: v for k, v in state.items() if k != 'head.gau.uv.weight'}
    with pytest.raises(CheckpointMismatchError, match=r"unfilled \(first: 'head\.gau\.uv\.weight'\)"):
        map_state_dict(partial, own, 'rtmpose_t', 'x.pth', complete=True)
    _, report = map_state_dict(partial, own, 'rtmpose_t', 'x.pth', complete=False)   # an init: reported
    assert report.unfilled == ['head.gau.uv.weight'] and report.unused == []
    extra = {**state, 'head.gau.w': torch.empty(31, device='meta')}    # use_rel_bias=True: not this build
    with pytest.raises(CheckpointMismatchError, match=r"x\.pth .*rtmpose_t.*first mismatching key 'head\.gau\.w'"):
        map_state_dict(extra, own, 'rtmpose_t', 'x.pth')
    mpii = build_model('hrnet_w32', 16, variant='smoke').state_dict()
    coco = {k: torch.empty_like(v, device='meta')
            for k, v in build_model('hrnet_w32', 17, variant='smoke').state_dict().items()}
    with pytest.raises(CheckpointMismatchError,
                       match=r"'head\.final\.weight'.*\(17, 4, 1, 1\) in the file, \(16, 4, 1, 1\)"):
        map_state_dict(coco, mpii, 'hrnet_w32', 'coco.pth')


def test_wrong_architecture_names_file_expected_architecture_and_first_key(tmp_path):
    import torchvision
    path = tmp_path / 'resnet18.pth'
    torch.save(torchvision.models.resnet18().state_dict(), path)
    model = build_model('rtmpose_t', 17, head='simcc', variant='smoke', input_size=(64, 48))
    with pytest.raises(CheckpointMismatchError) as err:
        load_checkpoint_into(model, path, 'rtmpose_t')
    message = str(err.value)
    assert str(path) in message and 'rtmpose_t' in message and 'MMPose RTMPose' in message
    assert "first mismatching key 'conv1.weight'" in message
    with pytest.raises(CheckpointMismatchError, match=r'resnet18\.pth is not a checkpoint of sbl_r50'):
        load_checkpoint_into(build_model('sbl_r50', 17), path, 'sbl_r50')   # ResNet-18 widths


def test_files_that_need_code_are_refused(tmp_path):
    import os
    torch.save({'state_dict': {'w': torch.ones(1)}, 'meta': {'hook': os.getcwd}}, tmp_path / 'code.pth')
    with pytest.raises(CheckpointMismatchError, match=r"code\.pth needs code to load .*getcwd"):
        read_state_dict(tmp_path / 'code.pth')
    (tmp_path / 'cut.pth').write_bytes((tmp_path / 'code.pth').read_bytes()[:50])
    with pytest.raises(CheckpointMismatchError, match=r'cut\.pth cannot be read'):
        read_state_dict(tmp_path / 'cut.pth')


def test_release_file_loads_every_value_and_reports(tmp_path):
    manifest = _manifest('rtmpose_t')
    state = _release_file(manifest, tmp_path / 'rtmpose-t.pth')
    ref = CheckpointRef(str(tmp_path / 'rtmpose-t.pth'), 'rtmpose_t', head='simcc', num_joints=17)
    teacher = ref.build(num_joints=99, input_size=(256, 192))              # num_joints: the ref's
    own = teacher.state_dict()
    translate = FORMATS['mmpose-rtmpose'].translate
    assert all(torch.equal(own[translate(k, set(own))], v) for k, v in state.items())
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    # an initialisation may leave tensors unfilled: returned and warned, not an error
    del state['head.cls_x.weight']
    torch.save({'state_dict': state}, tmp_path / 'partial.pth')
    model = _kit_state(manifest, device='cpu')
    with pytest.warns(UserWarning, match=r'left unfilled in the model: 1 \(head\.cls_x\.weight\)'):
        report = load_checkpoint_into(model, tmp_path / 'partial.pth', 'rtmpose_t')
    assert report.unfilled == ['head.cls_x.weight'] and report.format == 'mmpose-rtmpose'
    with pytest.raises(CheckpointMismatchError, match='unfilled'):
        replace(ref, path=str(tmp_path / 'partial.pth')).build(17, (256, 192))


def test_bearpaw_training_checkpoint_loads_as_teacher(tmp_path):
    """bearpaw's `save_checkpoint`: epoch, arch, DataParallel state_dict, best_acc, optimizer."""
    manifest = _manifest('hourglass2')
    g = torch.Generator().manual_seed(0)
    state = {k: torch.rand(shape, generator=g) if shape else torch.tensor(3) for k, shape in manifest['keys'].items()}
    torch.save({'epoch': 150, 'arch': 'hg', 'state_dict': state, 'best_acc': torch.tensor(0.88),
                'optimizer': {'state': {}, 'param_groups': [{'lr': 2.5e-4, 'params': [0, 1]}]}},
               tmp_path / 'model_best.pth.tar')
    teacher = CheckpointRef(str(tmp_path / 'model_best.pth.tar'), 'hourglass2').build(16, (256, 256))
    assert torch.equal(teacher.head.final.weight, state['module.score.1.weight'])
    assert torch.equal(teacher.scores[0].bias, state['module.score.0.bias'])
    assert torch.equal(teacher.hourglasses[1].inner.inner.inner.inner[0].body[8].weight,
                       state['module.hg.1.hg.0.3.0.conv3.weight'])


def test_litehrnet_release_needs_the_reference_fusion(tmp_path):
    """The release fuses in place (branch 0 twice); a kit model without it cannot be its teacher."""
    manifest = _manifest('litehrnet_18')
    _release_file(manifest, tmp_path / 'litehrnet18.pth')
    ref = CheckpointRef(str(tmp_path / 'litehrnet18.pth'), 'litehrnet_18', num_joints=17)
    if getattr(_kit_state(manifest), 'reference_fuse', False):
        assert not ref.build(17, (256, 192)).training
    else:
        with pytest.raises(CheckpointMismatchError, match='in place'):
            ref.build(17, (256, 192))
        with pytest.warns(UserWarning, match='in place'):
            load_checkpoint_into(_kit_state(manifest, 'cpu'), ref.file(), 'litehrnet_18')


# ----------------------------------------------------------------------------- checkpoint teachers
def _student(teacher, **kw):
    return ExperimentConfig(profile='smoke', dataset='coco', model='litehrnet_18', method='fpd',
                            teachers={'teacher': teacher}, **kw)


def _kit_teacher_file(path, seed=0):
    torch.manual_seed(seed)
    model = build_model('sbl_r50', 17, variant='smoke', input_size=(64, 48))
    torch.save({'state_dict': model.state_dict()}, path)
    return model


def test_checkpoint_teacher_round_trip_and_content_hash(tmp_path, monkeypatch):
    monkeypatch.setenv('KDLIB_WEIGHTS', str(tmp_path))
    _kit_teacher_file(tmp_path / 'a.pth', seed=0)
    ref = CheckpointRef('a.pth', 'sbl_r50', variant='smoke', source='https://example.org/a.pth')
    nested = ExperimentConfig(profile='smoke', dataset='coco', model='sbl_r50', teachers={'t': ref})
    cfg = _student(ref, init_from=nested)
    back = ExperimentConfig.from_dict(json.loads(json.dumps(asdict(cfg))))
    assert back == cfg and isinstance(back.teachers['teacher'], CheckpointRef)
    assert isinstance(back.init_from.teachers['t'], CheckpointRef)
    key = config_hash(cfg)
    (tmp_path / 'b.pth').write_bytes((tmp_path / 'a.pth').read_bytes())     # same content elsewhere
    assert config_hash(_student(replace(ref, path=str(tmp_path / 'b.pth'), source=''), init_from=nested)) == key
    _kit_teacher_file(tmp_path / 'a.pth', seed=1)                              # new content, same path
    assert config_hash(cfg) != key
    assert config_hash(_student(replace(ref, variant='classroom'), init_from=nested)) != config_hash(cfg)


def test_missing_weight_files_stop_before_any_training(tmp_path, monkeypatch, isolated_runs):
    weights = tmp_path / 'weights'
    monkeypatch.setenv('KDLIB_WEIGHTS', str(weights))
    import kdlib.experiment as experiment
    monkeypatch.setattr(experiment, '_train', lambda *a, **k: pytest.fail('trained before checking weights'))
    trained_teacher = ExperimentConfig(profile='smoke', dataset='coco', model='sbl_r50', epochs=1)
    init = ExperimentConfig(profile='smoke', dataset='coco', model='hrnet_w32',
                            model_params={'pretrained': 'imagenet'})
    cfg = replace(_student(CheckpointRef('rtmpose-m_coco.pth', 'rtmpose_m', head='simcc', source='mmpose zoo')),
                  teachers={'kit': trained_teacher, 'released': CheckpointRef('rtmpose-m_coco.pth', 'rtmpose_m')},
                  init_from=init)
    with pytest.raises(FileNotFoundError) as err:
        run_experiment(cfg, show_progress=False)
    message = str(err.value)
    assert 'nothing was trained' in message and str(weights / 'rtmpose-m_coco.pth') in message
    assert 'KDLIB_WEIGHTS' in message and 'hrnet_w32-36af842e.pth' in message
    assert not (isolated_runs / 'runs').exists()


def test_checkpoint_teacher_trains_a_student(tmp_path, monkeypatch, isolated_runs):
    """End to end on smoke: the teacher is the file's network, frozen; the stored result round-trips."""
    teacher_model = _kit_teacher_file(tmp_path / 'teacher.pth')
    ref = CheckpointRef(str(tmp_path / 'teacher.pth'), 'sbl_r50', variant='smoke')
    cfg = _student(ref, epochs=1)
    assert run_experiment(ref) is ref                                # a released teacher needs no run
    assert cached_result(ref) is ref and cached_result(replace(ref, path=str(tmp_path / 'none.pth'))) is None
    with pytest.raises(ValueError, match='give num_joints and input_size'):
        load_trained(ref)                                            # no experiment to say them
    alone = load_trained(replace(ref, num_joints=17, input_size=(64, 48)))
    assert all(torch.equal(a, b) for a, b in zip(alone.state_dict().values(), teacher_model.state_dict().values()))
    run = build_run(cfg, {'teacher': ref}, None)
    teacher = run.teachers['teacher']
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(a, b) for a, b in zip(teacher.state_dict().values(),
                                                  teacher_model.state_dict().values()))
    result = run_experiment(cfg, show_progress=False)
    assert ExperimentConfig.from_dict(result['config']) == cfg
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        again = run_experiment(cfg, show_progress=False)                # cached: the stored result
    assert again['run_dir'] == result['run_dir'] and again['train_time_s'] == result['train_time_s']
    assert Path(result['run_dir']).name == config_hash(cfg)


def test_pretrained_file_is_keyed_by_content(tmp_path, monkeypatch):
    monkeypatch.setenv('KDLIB_WEIGHTS', str(tmp_path))
    cfg = ExperimentConfig(profile='smoke', dataset='coco', model='sbl_r50', model_params={'pretrained': 'init.pth'})
    missing = config_hash(cfg)                                   # absent file: a key, no error
    _kit_teacher_file(tmp_path / 'init.pth', seed=0)
    first = config_hash(cfg)
    _kit_teacher_file(tmp_path / 'init.pth', seed=1)
    assert len({missing, first, config_hash(cfg)}) == 3
