"""Loaders of the real annotation formats, on the hand-made fixtures in tests/fixtures/."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from kdlib.data.formats import (DatasetError, load_coco, load_crowdpose, load_halpe, load_mpii)
from kdlib.data.formats.mpii import square_box

FIX = Path(__file__).parent / 'fixtures'
RECORD_KEYS = {'image_file', 'image_id', 'ann_id', 'dataset', 'bbox', 'joints', 'score', 'area'}


def check_record(rec, num_joints, dataset):
    assert RECORD_KEYS <= set(rec)
    assert rec['dataset'] == dataset and Path(rec['image_file']).is_absolute()
    assert rec['bbox'].dtype == np.float32 and rec['bbox'].shape == (4,)
    assert rec['joints'].dtype == np.float32 and rec['joints'].shape == (num_joints, 3)
    assert set(np.unique(rec['joints'][:, 2])) <= {0.0, 1.0, 2.0}


def test_coco_gt_records_follow_hrnet_rules():
    records, info = load_coco(FIX / 'coco', 'val')
    ann = json.loads((FIX / 'coco/annotations/person_keypoints_val2017.json').read_text())
    # 4 annotations: one has no keypoints, one is a crowd region -> both skipped (HRNet).
    assert [r['ann_id'] for r in records] == [1001, 1003]
    for r in records:
        check_record(r, 17, 'coco')
    first = records[0]
    kp = np.array(ann['annotations'][0]['keypoints'], dtype=np.float32).reshape(17, 3)
    assert np.array_equal(first['joints'], kp)
    assert first['joints'][3, 2] == 1 and first['joints'][0, 2] == 2
    assert first['image_file'].endswith('images/val2017/000000000785.jpg')
    # HRNet clean_bbox: w - 1, h - 1, clipped to the image
    assert np.allclose(first['bbox'], [270, 80, 59.5, 259])
    assert np.allclose(records[1]['bbox'], [0, 120, 299, 219])     # x < 0 clipped
    assert first['area'] == ann['annotations'][0]['area'] and first['score'] == 1.0
    assert info['skeleton'].name == 'coco' and Path(info['ann_file']).is_file()


def test_coco_detection_boxes_and_threshold():
    records, info = load_coco(FIX / 'coco', 'val', boxes='det')
    assert len(records) == 4 and Path(info['det_file']).is_file()
    r = records[0]
    check_record(r, 17, 'coco')
    assert np.allclose(r['bbox'], [268.1, 79.4, 63.0, 262.2]) and r['score'] == pytest.approx(0.9987)
    assert not r['joints'].any()
    assert r['image_file'].endswith('val2017/000000000785.jpg')
    kept, _ = load_coco(FIX / 'coco', 'val', boxes='det', score_threshold=0.1)
    assert len(kept) == 3 and min(k['score'] for k in kept) >= 0.1


def hrnet_mpii_center_scale(center, scale):
    """HRNet lib/dataset/mpii.py: c[1] += 15 s; s *= 1.25; c -= 1 (crop side 200 s)."""
    c = np.array(center, float)
    c[1] += 15 * scale
    return c - 1, scale * 1.25


def test_mpii_box_reproduces_hrnet_crop_with_pipeline_padding():
    entries = json.loads((FIX / 'mpii/annot/valid.json').read_text())
    records, info = load_mpii(FIX / 'mpii', 'valid')
    assert len(records) == 2 and Path(info['gt_file']).is_file()
    for e, r in zip(entries, records):
        check_record(r, 16, 'mpii')
        c, s = hrnet_mpii_center_scale(e['center'], e['scale'])
        x, y, w, h = r['bbox']
        assert w == h
        assert np.allclose([x + w / 2, y + h / 2], c, atol=1e-3)      # pipeline: center = x + w/2
        assert np.isclose(w * 1.25, 200 * s, rtol=1e-5)                # pipeline pads by 1.25
        vis = np.array(e['joints_vis']) > 0
        assert np.allclose(r['joints'][vis, :2], np.array(e['joints'])[vis] - 1)   # 1-based -> 0
        assert np.array_equal(r['joints'][:, 2] > 0, vis)
    assert records[1]['joints'][10, 2] == 0 and not records[1]['joints'][10, :2].any()
    assert np.allclose(square_box([11.0, 21.0], 1.0), [-90, -65, 200, 200])


def test_mpii_head_boxes_come_from_gt_valid_mat():
    from scipy.io import loadmat
    mat = loadmat(str(FIX / 'mpii/annot/gt_valid.mat'))
    records, _ = load_mpii(FIX / 'mpii', 'val')                       # 'val' is an alias of 'valid'
    for n, r in enumerate(records):
        (x1, y1), (x2, y2) = mat['headboxes_src'][:, :, n]
        assert np.allclose(r['head_box'], [x1 - 1, y1 - 1, x2 - 1, y2 - 1])
    train, _ = load_mpii(FIX / 'mpii', 'train')
    assert len(train) == 2 and 'head_box' not in train[0]
    assert train[0]['image_id'] == train[1]['image_id'] and train[1]['ann_id'] == 1   # same image


def test_crowdpose_area_and_crowd_index():
    records, info = load_crowdpose(FIX / 'crowdpose', 'val')
    assert len(records) == 3
    for r in records:
        check_record(r, 14, 'crowdpose')
    w, h = records[0]['bbox'][2] + 1, records[0]['bbox'][3] + 1      # the file's w, h
    assert records[0]['area'] == pytest.approx(0.53 * w * h)          # crowdposetools
    assert info['crowd_index'] == {100000: 0.48, 100001: 0.09}
    assert records[1]['joints'][2, 2] == 1 and records[1]['joints'][10, 2] == 0   # l_elbow, l_ankle
    test, _ = load_crowdpose(FIX / 'crowdpose', 'test')
    assert len(test) == 3


def test_halpe_keeps_the_first_26_of_136_keypoints():
    ann = json.loads((FIX / 'halpe/annotations/halpe_val_v1.json').read_text())['annotations'][0]
    assert len(ann['keypoints']) == 136 * 3
    records, info = load_halpe(FIX / 'halpe', 'val')
    check_record(records[0], 26, 'halpe')
    assert np.array_equal(records[0]['joints'].ravel(), np.array(ann['keypoints'][:78], np.float32))
    assert records[0]['image_file'].endswith('halpe/images/val/000000532481.jpg')


# ---------------------------------------------------------------------------- errors
def copy_fixture(tmp_path, name):
    return Path(shutil.copytree(FIX / name, tmp_path / name))


@pytest.mark.parametrize('loader,name,split,where', [
    (load_coco, 'coco', 'val', 'cocodataset.org'),
    (load_mpii, 'mpii', 'train', 'human-pose.mpi-inf.mpg.de'),
    (load_crowdpose, 'crowdpose', 'train', 'github.com/Jeff-sjtu/CrowdPose'),
    (load_halpe, 'halpe', 'train', 'github.com/Fang-Haoshu/Halpe-FullBody')])
def test_missing_file_names_file_layout_and_source(tmp_path, loader, name, split, where):
    with pytest.raises(DatasetError) as err:
        loader(tmp_path / name, split)
    msg = str(err.value)
    assert str(tmp_path / name) in msg and f'data/{name}/' in msg and where in msg
    assert isinstance(err.value, FileNotFoundError)


def test_malformed_json_is_a_clear_error(tmp_path):
    root = copy_fixture(tmp_path, 'coco')
    path = root / 'annotations/person_keypoints_val2017.json'
    path.write_text(path.read_text()[:200])
    with pytest.raises(DatasetError, match='not valid JSON') as err:
        load_coco(root, 'val')
    assert str(path) in str(err.value) and isinstance(err.value, ValueError)


def test_wrong_keypoint_count_names_annotation_and_expectation(tmp_path):
    root = copy_fixture(tmp_path, 'crowdpose')
    path = root / 'json/crowdpose_val.json'
    data = json.loads(path.read_text())
    data['annotations'][1]['keypoints'] = data['annotations'][1]['keypoints'][:-3]
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=r'id=2 has 39 keypoint values; expected 42'):
        load_crowdpose(root, 'val')


def test_structure_errors(tmp_path):
    root = copy_fixture(tmp_path, 'coco')
    path = root / 'annotations/person_keypoints_train2017.json'
    path.write_text(json.dumps({'images': []}))
    with pytest.raises(DatasetError, match="lacks key.*annotations"):
        load_coco(root, 'train')
    det = root / 'person_detection_results/COCO_val2017_detections_AP_H_56_person.json'
    det.write_text(json.dumps({'boxes': []}))
    with pytest.raises(DatasetError, match='JSON list'):
        load_coco(root, 'val', boxes='det')


def test_mpii_errors(tmp_path):
    root = copy_fixture(tmp_path, 'mpii')
    entries = json.loads((root / 'annot/train.json').read_text())
    entries[0]['joints'] = entries[0]['joints'][:15]
    (root / 'annot/train.json').write_text(json.dumps(entries))
    with pytest.raises(DatasetError, match=r'entry #0: joints \(15, 2\)'):
        load_mpii(root, 'train')
    (root / 'annot/gt_valid.mat').write_bytes(b'not a mat file')
    with pytest.raises(DatasetError, match='gt_valid.mat'):
        load_mpii(root, 'valid')
    (root / 'annot/gt_valid.mat').unlink()
    with pytest.raises(DatasetError, match='gt_valid.mat not found|not found: .*gt_valid.mat'):
        load_mpii(root, 'valid')
    with pytest.raises(ValueError, match='split'):
        load_mpii(root, 'test2')
