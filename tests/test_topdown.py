"""TopDownDataset samples: shapes, collation, and joints that land on the right pixels."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from kdlib.data import DATASETS, build_dataset
from kdlib.data.topdown import IMAGENET_MEAN, IMAGENET_STD, PipelineConfig, paper_pipeline
from kdlib.skeletons import SKELETONS

SK = SKELETONS['coco']
LW, RW = SK.index('left_wrist'), SK.index('right_wrist')
RED, GREEN = (255, 0, 0), (0, 255, 0)


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    """Two 160x200 images, one person each; the wrists are a red (left) and a green (right) disc."""
    root = tmp_path_factory.mktemp('toy') / 'coco'
    (root / 'images/val2017').mkdir(parents=True)
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in (1, 2):
        img = np.full((160, 200, 3), 90, np.uint8)
        kpts = np.c_[rng.uniform(70, 130, 17), rng.uniform(30, 130, 17), np.full(17, 2.0)]
        kpts[LW, :2], kpts[RW, :2] = (75, 60 + 10 * i), (125, 95)
        for j, colour in ((LW, RED), (RW, GREEN)):
            cv2.circle(img, (int(kpts[j, 0]), int(kpts[j, 1])), 7, colour[::-1], -1)   # BGR file
        cv2.imwrite(str(root / f'images/val2017/{i:012d}.jpg'), img, [cv2.IMWRITE_JPEG_QUALITY, 98])
        images.append(dict(id=i, file_name=f'{i:012d}.jpg', width=200, height=160))
        anns.append(dict(id=i, image_id=i, category_id=1, iscrowd=0, bbox=[65, 25, 70, 110],
                         area=5000.0, keypoints=kpts.reshape(-1).tolist(), num_keypoints=17))
    (root / 'annotations').mkdir()
    (root / 'annotations/person_keypoints_val2017.json').write_text(
        json.dumps(dict(images=images, annotations=anns, categories=[dict(id=1, name='person')])))
    return root


def colour_at(sample, joint):
    """RGB uint8 of the de-normalised crop at a sample joint."""
    rgb = (sample['image'].transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN) * 255
    x, y = np.round(sample['joints'][joint, :2]).astype(int)
    return rgb[y, x]


def test_sample_shapes_and_collation(coco_root):
    cfg = PipelineConfig(input_size=(128, 96), targets=('heatmap', 'simcc'))
    ds = build_dataset('coco', 'val', coco_root, cfg)
    s = ds[0]
    assert s['image'].shape == (3, 128, 96) and s['image'].dtype == np.float32
    assert s['heatmap'].shape == (17, 32, 24)
    assert s['simcc_x'].shape == (17, 192) and s['simcc_y'].shape == (17, 256)
    assert s['target_weight'].shape == (17,) and s['joints'].shape == (17, 3)
    assert s['center'].shape == (2,) and s['scale'].shape == (2,) and int(s['index']) == 0
    batch = torch.utils.data.default_collate([ds[0], ds[1]])
    assert batch['image'].shape == (2, 3, 128, 96) and batch['index'].tolist() == [0, 1]


@pytest.mark.parametrize('flip', [False, True])
def test_joints_land_on_their_pixels_with_flip_and_rotation(coco_root, flip):
    cfg = PipelineConfig(input_size=(128, 96), train=True, flip=flip, flip_prob=1.0,
                         rot_factor=30.0, rot_prob=1.0, scale_factor=0.2, half_body_prob=0.0)
    ds = build_dataset('coco', 'val', coco_root, cfg)
    torch.manual_seed(0)
    left_colour, right_colour = (GREEN, RED) if flip else (RED, GREEN)   # labels swap on a flip
    for _ in range(6):
        s = ds[0]
        assert np.abs(colour_at(s, LW) - left_colour).max() < 60
        assert np.abs(colour_at(s, RW) - right_colour).max() < 60


def test_eval_crop_is_deterministic_and_targets_peak_at_joints(coco_root):
    ds = build_dataset('coco', 'val', coco_root, PipelineConfig(input_size=(128, 96)))
    a, b = ds[1], ds[1]
    assert np.array_equal(a['image'], b['image'])
    k = LW
    y, x = np.unravel_index(a['heatmap'][k].argmax(), a['heatmap'][k].shape)
    assert np.abs(np.array([x, y]) * 4 - a['joints'][k, :2]).max() <= 2.0


def test_paper_pipelines_and_registry():
    assert paper_pipeline('coco').input_size == (256, 192)
    assert paper_pipeline('mpii').input_size == (256, 256)
    assert paper_pipeline('mpii').rot_factor == 30 and paper_pipeline('coco').rot_factor == 45
    assert set(DATASETS) == {'coco', 'mpii', 'crowdpose', 'halpe'}
    with pytest.raises(ValueError, match='unknown'):
        PipelineConfig(targets=('heatmaps',))


def test_missing_image_is_a_clear_error(coco_root, tmp_path):
    ds = build_dataset('coco', 'val', coco_root, PipelineConfig(input_size=(64, 48)))
    ds.records = [dict(ds.records[0], image_file=str(tmp_path / 'nope.jpg'))]
    with pytest.raises(FileNotFoundError, match='nope.jpg'):
        ds[0]


ROOT = Path(__file__).resolve().parents[1]


def test_notebook_00_runs_on_smoke(run_notebook):
    metrics, out = run_notebook('00_data_and_metrics.ipynb', seed=0)
    text = out.read_text()
    assert 'noise / size' in text and 'Mean@0.1' in text
    assert metrics['coco AP at noise 0'] == 100.0 and metrics['coco AP at noise 0.1'] < 100.0
