"""Bad input is caught at load, before training, naming the file and the annotation (issue 15).

Each test feeds one fault to a `tmp_path` copy of the real-format fixtures (tests/fixtures/):
NaN/null joints (train and val), a truncated JPEG, a 1x1 px box with every joint on one pixel,
a val file without `categories`, duplicate ids.
"""
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from scipy.io import loadmat, savemat

from kdlib.data import PipelineConfig, TopDownDataset, build_dataset
from kdlib.data.formats import (DatasetError, DatasetWarning, load_coco, load_crowdpose, load_halpe,
                                load_mpii)
from kdlib.data.topdown import check_image_files, image_file_problem, read_rgb
from kdlib.data.transforms import upper_body_mask
from kdlib.skeletons import SKELETONS

FIX = Path(__file__).parent / 'fixtures'
COCO_FILES = {'train': 'annotations/person_keypoints_train2017.json',
              'val': 'annotations/person_keypoints_val2017.json'}


def copy_fixture(tmp_path, name):
    return Path(shutil.copytree(FIX / name, tmp_path / name))


def edit_json(path: Path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))          # json writes NaN / Infinity as such, None as null
    return path


def coco_with_images(tmp_path) -> Path:
    """The COCO fixture plus a small gray JPEG per image entry of both splits."""
    root = copy_fixture(tmp_path, 'coco')
    for split, rel in COCO_FILES.items():
        for img in json.loads((root / rel).read_text())['images']:
            path = root / f'images/{split}2017' / img['file_name']
            path.parent.mkdir(parents=True, exist_ok=True)
            shape = (img['height'], img['width'], 3)
            pixels = np.random.default_rng(img['id']).integers(0, 255, shape)
            cv2.imwrite(str(path), pixels.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return root


# ---------------------------------------------------------------------------- NaN / null joints
@pytest.mark.parametrize('bad', [float('nan'), None, float('inf')], ids=['NaN', 'null', 'Infinity'])
def test_non_finite_joint_in_train_annotation_names_file_and_id(tmp_path, bad):
    root = copy_fixture(tmp_path, 'coco')
    path = root / COCO_FILES['train']
    edit_json(path, lambda d: d['annotations'][0]['keypoints'].__setitem__(3 * 5, bad))
    with pytest.raises(DatasetError) as err:
        load_coco(root, 'train')
    msg = str(err.value)
    assert str(path) in msg and 'annotation id=2001' in msg
    assert 'joint 5 (left_shoulder) x=' in msg and 'must be a number' in msg


def set_val_keypoint(dataset, root):
    """Put NaN in one val joint of `dataset`'s fixture; return (path, what the error must name)."""
    if dataset == 'mpii':
        path = root / 'annot/valid.json'
        edit_json(path, lambda d: d[1]['joints'][4].__setitem__(1, float('nan')))
        return path, 'entry #1 (image 052475643.jpg) has a non-finite keypoint value: joint 4'
    rel = {'coco': COCO_FILES['val'], 'crowdpose': 'json/crowdpose_val.json',
           'halpe': 'annotations/halpe_val_v1.json'}[dataset]
    path = root / rel
    edit_json(path, lambda d: d['annotations'][0]['keypoints'].__setitem__(1, float('nan')))
    first_id = json.loads((FIX / dataset / rel).read_text())['annotations'][0]['id']
    return path, f'annotation id={first_id} has a non-finite keypoint value: joint 0'


@pytest.mark.parametrize('dataset,loader', [('coco', load_coco), ('crowdpose', load_crowdpose),
                                            ('halpe', load_halpe), ('mpii', load_mpii)])
def test_nan_joint_in_val_annotations_is_an_error_naming_it(tmp_path, dataset, loader):
    """Before: COCO AP jumped 0.0 -> 9.9 with one NaN joint (100.0 with all NaN)."""
    root = copy_fixture(tmp_path, dataset)
    path, named = set_val_keypoint(dataset, root)
    with pytest.raises(DatasetError) as err:
        loader(root, 'val')
    assert str(path) in str(err.value) and named in str(err.value)


def test_nan_in_a_skipped_crowd_annotation_is_still_an_error(tmp_path):
    """COCOeval reads every annotation of the val file, crowd regions included."""
    root = copy_fixture(tmp_path, 'coco')
    edit_json(root / COCO_FILES['val'], lambda d: d['annotations'][3]['bbox'].__setitem__(2, None))
    with pytest.raises(DatasetError, match=r'annotation id=1004 has a non-finite bbox'):
        load_coco(root, 'val')


def test_nan_area_detection_and_mpii_values_are_errors(tmp_path):
    root = copy_fixture(tmp_path, 'coco')
    edit_json(root / COCO_FILES['val'],
              lambda d: d['annotations'][0].__setitem__('area', float('nan')))
    with pytest.raises(DatasetError, match='annotation id=1001 has a non-finite area'):
        load_coco(root, 'val')
    root = copy_fixture(tmp_path / 'det', 'coco')
    det = root / 'person_detection_results/COCO_val2017_detections_AP_H_56_person.json'
    edit_json(det, lambda d: d[2]['bbox'].__setitem__(3, float('nan')))
    with pytest.raises(DatasetError, match=r'detection #2 has a non-finite bbox') as err:
        load_coco(root, 'val', boxes='det')
    assert str(det) in str(err.value)
    mpii = copy_fixture(tmp_path, 'mpii')
    edit_json(mpii / 'annot/train.json', lambda d: d[1].__setitem__('scale', 0))
    with pytest.raises(DatasetError, match=r'entry #1 \(image 015601864.jpg\) has scale 0.0'):
        load_mpii(mpii, 'train')
    mat = loadmat(str(mpii / 'annot/gt_valid.mat'))
    mat['headboxes_src'][0, 0, 1] = np.nan
    savemat(str(mpii / 'annot/gt_valid.mat'),
            {k: v for k, v in mat.items() if not k.startswith('__')})
    with pytest.raises(DatasetError, match=r'gt_valid.mat .*headboxes_src of person 1 \(entry #1'):
        load_mpii(mpii, 'valid')


# ---------------------------------------------------------------------------- truncated JPEG
def test_truncated_jpeg_is_named_at_load_and_at_decode(tmp_path):
    root = coco_with_images(tmp_path)
    image = root / 'images/val2017/000000000872.jpg'
    data = image.read_bytes()
    image.write_bytes(data[:len(data) // 2])
    assert cv2.imread(str(image)) is not None          # libjpeg: a half-gray image, no file named
    with pytest.raises(DatasetError) as err:
        build_dataset('coco', 'val', root, PipelineConfig())
    msg = str(err.value)
    assert 'truncated (1)' in msg and str(image) in msg and 'FF D9' in msg and '1 of the 2' in msg
    with pytest.raises(DatasetError, match='is truncated'):
        read_rgb(str(image))                            # replaced after load: still named
    image.write_bytes(b'')
    assert image_file_problem(str(image)) == 'empty'
    image.unlink()
    with pytest.raises(FileNotFoundError, match=r'missing \(1\): .*000000000872.jpg'):
        build_dataset('coco', 'val', root, PipelineConfig())


def test_complete_jpegs_pass_including_padding_after_the_end_marker(tmp_path):
    root = coco_with_images(tmp_path)
    image = root / 'images/val2017/000000000785.jpg'
    plain = read_rgb(str(image))
    assert np.array_equal(plain, cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB))
    image.write_bytes(image.read_bytes() + b'\x00' * 64)      # zero padding after FF D9
    assert image_file_problem(str(image)) is None and np.array_equal(read_rgb(str(image)), plain)
    ds = build_dataset('coco', 'val', root, PipelineConfig(input_size=(64, 48)))
    assert ds[0]['image'].shape == (3, 64, 48)
    check_image_files(ds.records)


# ---------------------------------------------------------------------------- 1x1 px box, one pixel
def one_pixel_person(ann, x=300.0, y=200.0):
    ann['bbox'] = [x, y, 1.0, 1.0]
    ann['keypoints'] = [x, y, 2] * 17


def test_one_pixel_box_is_skipped_at_load_with_a_warning_naming_it(tmp_path):
    """Before: ZeroDivisionError inside the DataLoader (val: after a full training epoch)."""
    root = coco_with_images(tmp_path)
    path = edit_json(root / COCO_FILES['val'], lambda d: one_pixel_person(d['annotations'][2]))
    with pytest.warns(DatasetWarning, match=r'skipped 1 annotation\(s\).*id=1003: bbox') as rec:
        ds = build_dataset('coco', 'val', root, PipelineConfig(input_size=(64, 48)))
    assert str(path) in str(rec[0].message)
    assert [r['ann_id'] for r in ds.records] == [1001] and ds.info['skipped'][0][0] == 1003
    assert ds.info['images_without_records'] == [872]      # its person still counts in COCOeval
    assert all(np.isfinite(ds[i]['image']).all() for i in range(len(ds)))
    det = root / 'person_detection_results/COCO_val2017_detections_AP_H_56_person.json'
    edit_json(det, lambda d: d[1].__setitem__('bbox', [9.0, 11.0, 0.0, 0.0]))
    with pytest.warns(DatasetWarning) as rec:               # the GT file's warning, then this
        records, _ = load_coco(root, 'val', boxes='det')
    assert 'skipped 1 detection(s)' in str(rec[-1].message) and '#1: bbox' in str(rec[-1].message)
    assert [r['ann_id'] for r in records] == [0, 2, 3]


def test_records_that_cannot_be_cropped_are_refused_by_the_dataset():
    records, info = load_coco(FIX / 'coco', 'val')
    bad = dict(records[1], bbox=np.array([5, 5, 0, 0], np.float32))
    with pytest.raises(DatasetError, match=r'ann_id=1003 of .*000000000872.jpg: bbox'):
        TopDownDataset([records[0], bad], info['skeleton'], PipelineConfig(), info)


@pytest.mark.parametrize('collapsed', ['all', 'upper'])
def test_half_body_on_joints_at_one_pixel_falls_back_to_the_box(tmp_path, collapsed):
    """Before: half body on joints at one pixel made a crop of size 0 -> ZeroDivisionError."""
    sk = SKELETONS['coco']
    image = tmp_path / 'person.jpg'
    cv2.imwrite(str(image), np.full((240, 320, 3), 100, np.uint8))
    joints = np.zeros((17, 3), np.float32)
    joints[:, :2] = np.c_[np.linspace(120, 180, 17), np.linspace(40, 220, 17)]
    joints[:, 2] = 2
    upper = upper_body_mask(sk.joint_names)
    joints[upper if collapsed == 'upper' else slice(None), :2] = (150, 100)
    rec = dict(image_file=str(image), image_id=1, ann_id=7, dataset='coco', joints=joints,
               bbox=np.array([110, 30, 80, 200], np.float32), score=1.0, area=16000.0)
    cfg = PipelineConfig(input_size=(64, 48), train=True, half_body_prob=1.0)
    ds = TopDownDataset([rec], sk, cfg, {})
    torch.manual_seed(0)
    samples = [ds[0] for _ in range(40)]
    assert all((s['scale'] > 0).all() and np.isfinite(s['image']).all() for s in samples)
    torch.manual_seed(0)
    again = [ds[0] for _ in range(40)]
    assert all(np.array_equal(a['joints'], b['joints']) for a, b in zip(samples, again))


# ---------------------------------------------------------------------------- categories, ids
def test_val_json_without_person_category_is_refused_at_load(tmp_path):
    """Before: KeyError 'categories' in COCOeval's loadRes after epoch 1 (the epoch lost)."""
    root = copy_fixture(tmp_path, 'coco')
    path = edit_json(root / COCO_FILES['val'], lambda d: d.pop('categories'))
    with pytest.raises(DatasetError, match='no "categories" key.*"id": 1') as err:
        load_coco(root, 'val')
    assert str(path) in str(err.value)
    edit_json(path, lambda d: d.__setitem__('categories', [dict(id=3, name='car')]))
    with pytest.raises(DatasetError, match='"categories" = .*car'):
        load_coco(root, 'val')


def test_duplicate_annotation_and_image_ids_are_refused_at_load(tmp_path):
    """Before: pycocotools indexed both annotations under one id and AP came out nan."""
    root = copy_fixture(tmp_path, 'crowdpose')
    path = root / 'json/crowdpose_val.json'
    edit_json(path, lambda d: d['annotations'][2].__setitem__('id', 1))
    with pytest.raises(DatasetError, match=r'1 duplicate annotation id\(s\): id=1 \(2x\)') as err:
        load_crowdpose(root, 'val')
    assert str(path) in str(err.value)
    edit_json(path, lambda d: (d['annotations'][2].__setitem__('id', 3),
                               d['images'][1].__setitem__('id', 100000)))
    with pytest.raises(DatasetError, match=r'duplicate image id\(s\): id=100000'):
        load_crowdpose(root, 'val')
