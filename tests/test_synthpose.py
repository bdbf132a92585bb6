"""SynthPose: body model, determinism, round trip through the real-format loaders, domains,
difficulty ingredients, and the cached `ensure_*` entry points."""
import importlib
import json
from pathlib import Path

import numpy as np
import pytest

from kdlib.data.formats import load_coco, load_crowdpose, load_halpe, load_mpii
from kdlib.data.synthpose import DOMAINS, NoiseBank, ensure_root, generate, render_scene
from kdlib.data.synthpose.body import J, forward_kinematics, sample_pose, sample_proportions
from kdlib.data.synthpose.generate import STAMP
from kdlib.skeletons import SKELETONS, index_map

KW = dict(num_train=10, num_val=6, image_size=(96, 128), seed=3)


@pytest.fixture(scope='module')
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp('synth') / 'sp'
    generate(root, **KW, workers=1)
    return root


def render_many(domain, n, h=96, w=128, seed=0):
    noise = NoiseBank(h, w, seed)
    return [render_scene(np.random.default_rng([seed, i]), DOMAINS[domain], h, w, noise)
            for i in range(n)]


def test_body_model_is_upright_and_left_is_plus_x():
    rng = np.random.default_rng(0)
    X = forward_kinematics(sample_proportions(rng), sample_pose(rng, 'stand'))
    assert X[J['head_top'], 1] == X[:, 1].max()
    assert X[J['left_shoulder'], 0] > 0 > X[J['right_shoulder'], 0]
    assert X[J['nose'], 2] > X[J['left_ear'], 2]                     # the face looks along +z
    assert abs(X[J['head_top'], 1] - 1.0) < 0.15                       # height ~ 1
    squat = forward_kinematics(sample_proportions(rng), sample_pose(rng, 'squat'))
    assert squat[J['pelvis'], 1] < X[J['pelvis'], 1] - 0.1


def test_layout_and_stamp(synth):
    for path in ('coco/annotations/person_keypoints_train2017.json',
                 'coco/person_detection_results/COCO_val2017_detections_AP_H_56_person.json',
                 'mpii/annot/train.json', 'mpii/annot/valid.json', 'mpii/annot/gt_valid.mat',
                 'crowdpose/json/crowdpose_test.json', 'halpe/annotations/halpe_val_v1.json'):
        assert (synth / path).is_file(), path
    assert len(list((synth / 'coco/images/train2017').glob('*.jpg'))) == KW['num_train']
    assert len(list((synth / 'halpe/images/val').glob('*.jpg'))) == KW['num_val']
    assert len(list((synth / 'crowdpose/images').glob('*.jpg'))) == KW['num_train'] + 2 * KW['num_val']


def test_round_trip_generate_then_load(synth):
    """The loaders return exactly the joints the renderer produced (coco-domain val images)."""
    noise = NoiseBank(*KW['image_size'], KW['seed'])
    sup = SKELETONS['superset']
    records, info = load_coco(synth / 'coco', 'val')
    halpe, _ = load_halpe(synth / 'halpe', 'val')
    by_image = {}
    for i in range(KW['num_val']):
        rng = np.random.default_rng([KW['seed'], 1, 2, i])       # (seed, coco domain, val, index)
        _, people = render_scene(rng, DOMAINS['coco'], *KW['image_size'], noise)
        by_image[1_000_001 + i] = [p for p in people if p['area'] > 0 and p['joints'][:, 2].max() > 0]
    assert len(records) == sum(len(v) for v in by_image.values()) == len(halpe)
    for name, recs in (('coco', records), ('halpe', halpe)):
        m = index_map(sup, SKELETONS[name])
        for rec in recs:
            match = [p for p in by_image[rec['image_id']]
                     if np.allclose(p['joints'][m, :2], rec['joints'][:, :2], atol=0.006)]
            assert len(match) >= 1, f'{name} record {rec["ann_id"]} not found among rendered people'
            assert np.array_equal(match[0]['joints'][m, 2], rec['joints'][:, 2])
            assert Path(rec['image_file']).is_file()


def test_mpii_and_crowdpose_files_load(synth):
    valid, info = load_mpii(synth / 'mpii', 'valid')
    assert valid and all(r['head_box'][2] > r['head_box'][0] for r in valid)
    for r in valid:
        labelled = r['joints'][:, 2] > 0
        x, y, w, h = r['bbox']
        inside = (r['joints'][labelled, :2] >= [x, y]) & (r['joints'][labelled, :2] <= [x + w, y + h])
        assert inside.mean() > 0.9, 'the MPII box must contain the labelled joints'
    crowd, info = load_crowdpose(synth / 'crowdpose', 'train')
    assert crowd and len(info['crowd_index']) == KW['num_train']


def test_coco_gt_is_pycocotools_valid_and_perfect_predictions_score_1(synth):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    ann_file = synth / 'coco/annotations/person_keypoints_val2017.json'
    gt = COCO(str(ann_file))
    res = [dict(image_id=a['image_id'], category_id=1, keypoints=a['keypoints'], score=1.0)
           for a in gt.dataset['annotations'] if a['num_keypoints'] > 0]
    ev = COCOeval(gt, gt.loadRes(res), 'keypoints')
    ev.evaluate(), ev.accumulate(), ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)
    dets = json.loads((synth / 'coco/person_detection_results/'
                       'COCO_val2017_detections_AP_H_56_person.json').read_text())
    assert dets and set(dets[0]) == {'image_id', 'category_id', 'bbox', 'score'}


def test_deterministic_from_seed_and_independent_of_workers(synth, tmp_path):
    generate(tmp_path / 'again', **KW, formats=('coco', 'mpii'), workers=2)
    for rel in ('coco/annotations/person_keypoints_train2017.json', 'mpii/annot/valid.json',
                'coco/images/val2017/000001000003.jpg'):
        assert (synth / rel).read_bytes() == (tmp_path / 'again' / rel).read_bytes(), rel
    generate(tmp_path / 'other', **dict(KW, seed=4), formats=('coco',), workers=1)
    rel = 'coco/annotations/person_keypoints_train2017.json'
    assert (synth / rel).read_bytes() != (tmp_path / 'other' / rel).read_bytes()


def test_domains_differ_in_appearance_and_pose():
    stats = {}
    for domain in ('coco', 'mpii'):
        scenes = render_many(domain, 40)
        people = [p for _, ps in scenes for p in ps if p['area'] > 0]
        bgr = np.mean([img.reshape(-1, 3).mean(0) for img, _ in scenes], 0)
        active = np.mean([p['pose_type'] in ('squat', 'arms_up', 'bend', 'kick') for p in people])
        height = np.mean([np.ptp(p['uv'][:, 1]) / 96 for p in people])
        stats[domain] = dict(blue_minus_red=bgr[0] - bgr[2], active=active, height=height,
                             people=np.mean([len(ps) for _, ps in scenes]))
    coco, mpii = stats['coco'], stats['mpii']
    assert coco['blue_minus_red'] > mpii['blue_minus_red'] + 10     # cool vs warm colour cast
    assert mpii['active'] > coco['active'] + 0.1                    # activity poses
    assert mpii['height'] > coco['height']                          # larger, centred people
    assert coco['people'] > mpii['people']


def test_difficulty_ingredients_present():
    scenes = render_many('coco', 60)
    people = [p for _, ps in scenes for p in ps if p['joints'][:, 2].max() > 0]
    vis = np.concatenate([p['joints'][:, 2] for p in people])
    occluded = (vis == 1).sum() / (vis > 0).sum()
    truncated = np.mean([((p['uv'] < 0) | (p['uv'] > [127, 95])).any() for p in people])
    multi = np.mean([len(ps) > 1 for _, ps in scenes])
    assert 0.08 < occluded < 0.5, occluded
    assert truncated > 0.1, truncated
    assert multi > 0.3, multi
    # face points: unlabelled when the head is turned away, labelled when it faces the camera
    nose = J['nose']
    away = [p for p in people if p['facing'] < -0.25]
    assert away and all(p['joints'][nose, 2] == 0 for p in away)
    toward = [p for p in people if p['facing'] > 0.5 and p['joints'][J['upper_neck'], 2] == 2]
    assert np.mean([p['joints'][nose, 2] > 0 for p in toward]) > 0.9


def test_front_and_back_can_be_told_apart():
    """Left and right are only learnable if a person's front differs from their back: most COCO
    people face the camera, some turn away, and a facing torso shows a shirt front."""
    from kdlib.data.synthpose.render import draw_part
    from kdlib.data.synthpose.scene import person_parts, sample_person
    people = [p for _, ps in render_many('coco', 60) for p in ps]
    away = np.mean([p['facing'] < 0 for p in people])
    assert 0.03 < away < 0.3, away
    person = sample_person(np.random.default_rng(0), DOMAINS['coco'], 80.0, (64, 48), depth=80.0)
    torso = person_parts(person, 0)[0]
    drawn = {}
    for facing in (0.8, -0.8):
        img, ids = np.zeros((96, 128, 3), np.uint8), np.zeros((96, 128), np.uint8)
        draw_part(img, ids, dict(torso, facing=facing), 1, 1.0)
        drawn[facing] = img
    inside = ids > 0
    changed = (drawn[0.8] != drawn[-0.8]).any(-1)
    assert changed.any() and not (changed & ~inside).any()     # a front mark, inside the torso


def test_crowd_split_is_crowded():
    from kdlib.data.synthpose.writers import crowd_index
    ci = {d: np.mean([crowd_index(ps) for _, ps in render_many(d, 30)]) for d in ('coco', 'crowd')}
    assert ci['crowd'] > 2 * ci['coco'] and ci['crowd'] > 0.3, ci


def test_ensure_root_caches_and_regenerates_on_change(tmp_path):
    kw = dict(num_train=4, num_val=2, image_size=(64, 64), seed=0, formats=('coco',))
    root = ensure_root(tmp_path / 'data', kw, workers=1, verbose=False)
    stamp = root / STAMP
    first = stamp.stat().st_mtime_ns
    assert ensure_root(tmp_path / 'data', kw, workers=1, verbose=False) == root
    assert stamp.stat().st_mtime_ns == first                          # cached, not regenerated
    ensure_root(tmp_path / 'data', dict(kw, num_train=5), workers=1, verbose=False)
    assert json.loads(stamp.read_text())['kwargs']['num_train'] == 5
    assert len(list((root / 'coco/images/train2017').glob('*.jpg'))) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ['.data.lock', 'data']   # no temp dirs


def test_ensure_synthpose_reads_the_profile(tmp_path, monkeypatch):
    profiles = importlib.import_module('kdlib.profiles')
    from kdlib.data.synthpose import ensure_synthpose
    monkeypatch.setitem(profiles.PROFILES, 'unit-test', dict(
        data_root=str(tmp_path / 'sp'), synthpose=dict(num_train=3, num_val=2, image_size=(64, 64),
                                                       seed=1, formats=('mpii',))))
    root = ensure_synthpose('unit-test', workers=1, verbose=False)
    assert root == (tmp_path / 'sp').resolve() and (root / 'mpii/annot/gt_valid.mat').is_file()
