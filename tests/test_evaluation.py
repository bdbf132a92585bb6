"""COCO-style AP through pycocotools (COCO, CrowdPose) and MPII PCKh on hand-made cases."""
import json

import numpy as np
import pytest

from kdlib.data.formats import load_coco, load_crowdpose
from kdlib.data.topdown import PipelineConfig, TopDownDataset
from kdlib.evaluation import metrics_table, oks_nms, rescore
from kdlib.evaluation.pckh import pckh_per_joint
from kdlib.skeletons import SKELETONS


def write_cocolike(path, num_joints, num_images=6, seed=0, crowd=False):
    """A small COCO-style GT file: 1-3 people per image, a few unlabelled joints."""
    rng = np.random.default_rng(seed)
    images, anns = [], []
    for i in range(1, num_images + 1):
        img = dict(id=i, file_name=f'{i:012d}.jpg', width=320, height=240)
        if crowd:
            img['crowdIndex'] = [0.05, 0.5, 0.9][i % 3]
        images.append(img)
        for p in range(rng.integers(1, 4)):
            x0, y0, w, h = 20 + 100 * p, rng.uniform(10, 40), rng.uniform(50, 80), rng.uniform(120, 180)
            kpts = np.c_[rng.uniform(x0, x0 + w, num_joints), rng.uniform(y0, y0 + h, num_joints),
                         rng.choice([0, 1, 2], num_joints, p=[0.15, 0.15, 0.7])]
            kpts[kpts[:, 2] == 0, :2] = 0
            ann = dict(id=len(anns) + 1, image_id=i, category_id=1, iscrowd=0, bbox=[x0, y0, w, h],
                       keypoints=kpts.reshape(-1).round(2).tolist(),
                       num_keypoints=int((kpts[:, 2] > 0).sum()))
            if not crowd:
                ann['area'] = w * h * 0.6
            anns.append(ann)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(images=images, annotations=anns,
                                    categories=[dict(id=1, name='person')])))


def perfect_predictions(records):
    """GT coordinates for labelled joints, the box centre for unlabelled ones; scores 1."""
    coords = np.stack([r['joints'][:, :2] for r in records]).astype(np.float64)
    for c, r in zip(coords, records):
        x, y, w, h = r['bbox']
        c[r['joints'][:, 2] <= 0] = (x + w / 2, y + h / 2)
    return coords, np.ones(coords.shape[:2]), np.arange(len(records))


@pytest.fixture
def coco_set(tmp_path):
    write_cocolike(tmp_path / 'coco/annotations/person_keypoints_val2017.json', 17)
    records, info = load_coco(tmp_path / 'coco', 'val')
    return TopDownDataset(records, info['skeleton'], PipelineConfig(), info)


def test_coco_ap_perfect_is_100_and_perturbed_lower(coco_set):
    coords, scores, idx = perfect_predictions(coco_set.records)
    perfect = coco_set.evaluate(coords, scores, idx)
    assert perfect['AP'] == pytest.approx(100.0) and perfect['AR'] == pytest.approx(100.0)
    noisy = coords + np.random.default_rng(0).normal(0, 6, coords.shape)
    worse = coco_set.evaluate(noisy, scores, idx)
    assert 0 < worse['AP'] < 95 and worse['AP50'] >= worse['AP75']
    table = coco_set.evaluate_table(noisy, scores, idx)
    assert list(table.columns) == ['AP', 'AP50', 'AP75', 'APM', 'APL', 'AR']


def test_missing_predictions_lower_recall(coco_set):
    coords, scores, idx = perfect_predictions(coco_set.records)
    half = coco_set.evaluate(coords[::2], scores[::2], idx[::2])
    assert half['AR'] < 70


def test_crowdpose_easy_medium_hard(tmp_path):
    write_cocolike(tmp_path / 'crowdpose/json/crowdpose_val.json', 14, num_images=9, crowd=True)
    records, info = load_crowdpose(tmp_path / 'crowdpose', 'val')
    ds = TopDownDataset(records, info['skeleton'], PipelineConfig(), info)
    coords, scores, idx = perfect_predictions(records)
    m = ds.evaluate(coords, scores, idx)
    assert {'AP', 'AP50', 'AP75', 'APE', 'APM', 'APH'} <= set(m)
    assert all(m[k] == pytest.approx(100.0) for k in ('AP', 'APE', 'APM', 'APH'))
    # spoil only the hard images (crowdIndex 0.9): AP^H drops, AP^E stays
    hard = np.array([info['crowd_index'][r['image_id']] >= 0.8 for r in records])
    coords[hard] += 25.0
    m = ds.evaluate(coords, scores, idx)
    assert m['APE'] == pytest.approx(100.0) and m['APH'] < 50 and m['AP'] < 100


def test_rescore_and_oks_nms():
    joint_scores = np.array([[0.9, 0.1, 0.5], [0.1, 0.1, 0.1]])
    assert np.allclose(rescore(joint_scores, np.array([0.5, 1.0])), [0.5 * 0.7, 0.0])
    sig = SKELETONS['coco'].sigmas[:3]
    pose = np.array([[10.0, 10.0], [20.0, 10.0], [15.0, 30.0]])
    kpts = np.stack([pose, pose + 0.1, pose + 50])
    keep = oks_nms(kpts, np.array([0.5, 0.9, 0.7]), np.full(3, 400.0), sig)
    assert keep == [1, 2]                                      # near-duplicate of #1 suppressed


def test_pckh_hand_computed():
    # head box 10 x 10 -> head size 0.6 * 14.142 = 8.485; @0.5 -> 4.243 px, @0.1 -> 0.849 px
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], np.float64)
    gt = np.zeros((2, 3, 2))
    pred = gt.copy()
    pred[0, :, 0] = [0.5, 3.0, 5.0]
    pred[1, :, 0] = [4.0, 4.5, 0.0]
    visible = np.array([[1, 1, 1], [1, 1, 0]], bool)
    pck, count = pckh_per_joint(pred, gt, visible, boxes, 0.5)
    assert count.tolist() == [2, 2, 1]
    assert np.allclose(pck, [100.0, 50.0, 0.0])
    pck01, _ = pckh_per_joint(pred, gt, visible, boxes, 0.1)
    assert np.allclose(pck01, [50.0, 0.0, 0.0])


def test_mpii_table_excludes_pelvis_and_thorax():
    sk = SKELETONS['mpii']
    rng = np.random.default_rng(0)
    records = []
    for i in range(4):
        joints = np.c_[rng.uniform(50, 150, (16, 2)), np.full(16, 2.0)].astype(np.float32)
        records.append(dict(image_file='x.jpg', image_id=i, ann_id=i, dataset='mpii', score=1.0,
                            bbox=np.array([40, 40, 120, 120], np.float32), joints=joints, area=1.0,
                            head_box=np.array([0, 0, 20, 20], np.float32)))
    ds = TopDownDataset(records, sk, PipelineConfig(input_size=(64, 64)), {})
    coords = np.stack([r['joints'][:, :2] for r in records]).astype(np.float64)
    for name in ('pelvis', 'thorax'):                           # wrong, but not in the Mean
        coords[:, sk.index(name)] += 100
    coords[:, sk.index('left_wrist')] += 100                    # wrong: Wri. = 50
    m = ds.evaluate(coords, np.ones((4, 16)), np.arange(4))
    assert m['Head'] == 100 and m['Wri.'] == 50 and m['Sho.'] == 100
    assert m['Mean'] == pytest.approx(100 * 13 / 14)
    table = metrics_table(m, 'mpii')
    assert list(table.columns) == ['Head', 'Sho.', 'Elb.', 'Wri.', 'Hip', 'Kne.', 'Ank.', 'Mean',
                                   'Mean@0.1']


def test_bad_prediction_shapes_are_explained(coco_set):
    with pytest.raises(ValueError, match=r'coords should be \(N, 17, 2\)'):
        coco_set.evaluate(np.zeros((3, 16, 2)), np.zeros((3, 16)), np.arange(3))


def test_detector_boxes_count_people_on_images_without_a_detection(tmp_path):
    """Two images, one labelled person each; the detector boxes only the first and its pose is
    perfect. Recall stops at 1/2 with precision 1: AP = 51 of COCO's 101 recall points = 50.5
    (HRNet's COCOeval covers every GT image; evaluating only detected images gives 100)."""
    root = tmp_path / 'coco'
    write_cocolike(root / 'annotations/person_keypoints_val2017.json', 17, num_images=2, seed=3)
    gt = json.loads((root / 'annotations/person_keypoints_val2017.json').read_text())
    gt['annotations'] = [next(a for a in gt['annotations'] if a['image_id'] == i) for i in (1, 2)]
    (root / 'annotations/person_keypoints_val2017.json').write_text(json.dumps(gt))
    first = gt['annotations'][0]
    det = root / 'person_detection_results/COCO_val2017_detections_AP_H_56_person.json'
    det.parent.mkdir(parents=True)
    det.write_text(json.dumps([dict(image_id=1, category_id=1, bbox=first['bbox'], score=0.9)]))
    records, info = load_coco(root, 'val', boxes='det')
    assert len(records) == 1 and info['images_without_records'] == [2]
    ds = TopDownDataset(records, info['skeleton'], PipelineConfig(), info)
    kpts = np.asarray(first['keypoints'], np.float64).reshape(17, 3)
    x, y, w, h = first['bbox']
    kpts[kpts[:, 2] <= 0, :2] = (x + w / 2, y + h / 2)
    m = ds.evaluate(kpts[None, :, :2], np.ones((1, 17)), np.arange(1))
    assert m['AP'] == pytest.approx(100 * 51 / 101) and m['AR'] == pytest.approx(50.0)


def test_results_keep_unrounded_keypoints():
    """HRNet json-dumps the float keypoints as they are; a 3-decimal rounding moves OKS matches."""
    from kdlib.evaluation.coco import make_results
    records = [dict(image_id=1, score=1.0)]
    coords = np.full((1, 17, 2), 10.123456789)
    res = make_results(records, coords, np.full((1, 17), 0.5), np.arange(1), SKELETONS['coco'].sigmas,
                       np.ones(1))
    assert res[0]['keypoints'][:3] == [10.123456789, 10.123456789, 0.5]


def test_smoke_run_validates_on_synthpose_detector_boxes(isolated_runs, monkeypatch):
    """ExperimentConfig.val_dataset_params={'boxes': 'det'}: train on GT boxes, validate on
    SynthPose's detections file, evaluated over every GT val image."""
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    from kdlib.evaluation import evaluation_image_ids
    from kdlib.experiment import ExperimentConfig, build_datasets, ensure_data, run_experiment
    cfg = ExperimentConfig(profile='smoke', dataset='coco', model='litehrnet_18', head='simcc',
                           val_dataset_params={'boxes': 'det'})
    profile = cfg.resolved_profile()
    ensure_data(profile)
    train_set, val_set, _ = build_datasets(cfg, profile)
    assert train_set.info['boxes'] == 'gt' and val_set.info['boxes'] == 'det'
    dets = json.loads(open(val_set.info['det_file']).read())
    assert len(val_set.records) == len(dets) and any(r['score'] < 1 for r in val_set.records)
    assert evaluation_image_ids(val_set.records, val_set.info) == sorted(val_set.info['images'])
    result = run_experiment(cfg, show_progress=False)
    assert set(result['metrics']) >= {'AP', 'AR'} and np.isfinite(result['metrics']['AP'])


def test_gt_file_without_categories_names_the_file(tmp_path):
    import json
    from kdlib.data.formats.errors import DatasetFormatError
    from kdlib.evaluation.coco import load_gt
    path = tmp_path / 'person_keypoints_val2017.json'
    path.write_text(json.dumps({'images': [], 'annotations': []}))
    with pytest.raises(DatasetFormatError, match=r"person_keypoints_val2017.json.*'categories'"):
        load_gt(str(path), 17)
