"""The data path and its benchmark (`python -m kdlib.benchmarks data`): uint8 images normalised on the
device give the float pipeline's numbers bit for bit, the kit's stages do the reference's work,
the reduced-size decode lever crops the same place, and the harness / GPU-feed arithmetic."""
import json
import time

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from kdlib.benchmarks.data import (bench_data, decode_reduction, gpu_feed, read_bgr_reduced, reduced_matrix,
                         reference_decode, reference_tensor, reference_warp, time_pair)
from kdlib.data import build_dataset
from kdlib.data.topdown import (IMAGENET_MEAN, IMAGENET_STD, PipelineConfig, channels_first,
                                normalize_batch, normalize_image, read_bgr)
from kdlib.data.transforms import box_to_center_scale, crop_matrix, upper_body_mask
from kdlib.train.trainer import to_device

H, W = 480, 640                                      # SynthPose gpu-profile image size


def _scene(rng) -> np.ndarray:
    """(480, 640, 3) gradients and sharp-edged discs, lightly blurred (edges a half-pixel shift shows)."""
    yy, xx = np.mgrid[0:H, 0:W]
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 0], img[..., 1] = xx * 255 // W, yy * 255 // H
    for _ in range(30):
        centre = (int(rng.integers(0, W)), int(rng.integers(0, H)))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.circle(img, centre, int(rng.integers(8, 40)), colour, -1)
    return cv2.GaussianBlur(img, (0, 0), 1.0)


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    """Four 640x480 COCO-layout images with one labelled person each."""
    root = tmp_path_factory.mktemp('path') / 'coco'
    (root / 'images/train2017').mkdir(parents=True)
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in range(1, 5):
        cv2.imwrite(str(root / f'images/train2017/{i:012d}.jpg'), _scene(rng),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        kpts = np.c_[rng.uniform(220, 420, 17), rng.uniform(80, 420, 17), np.full(17, 2.0)]
        images.append(dict(id=i, file_name=f'{i:012d}.jpg', width=W, height=H))
        anns.append(dict(id=i, image_id=i, category_id=1, iscrowd=0, bbox=[200, 60, 240, 380],
                         area=50000.0, keypoints=kpts.reshape(-1).tolist(), num_keypoints=17))
    (root / 'annotations').mkdir()
    (root / 'annotations/person_keypoints_train2017.json').write_text(json.dumps(dict(
        images=images, annotations=anns, categories=[dict(id=1, name='person')])))
    return root


def test_normalize_batch_is_normalize_image_bit_for_bit():
    crops = np.random.default_rng(0).integers(0, 256, (3, 16, 12, 3), dtype=np.uint8)
    images = torch.from_numpy(np.stack([channels_first(c) for c in crops]))          # (B, 3, H, W)
    expected = np.stack([normalize_image(c) for c in crops])
    assert np.array_equal(channels_first(crops[0]), crops[0].transpose(2, 0, 1))
    assert torch.equal(normalize_batch(images), torch.from_numpy(expected))
    with pytest.raises(TypeError, match='uint8'):
        normalize_batch(images.float())


def test_uint8_pipeline_gives_the_float_pipeline_after_to_device(coco_root):
    """Same records, same draws: the uint8 batch, normalised by the trainer's to_device, equals the
    float32 pipeline's batch exactly; the other fields are untouched."""
    kw = dict(input_size=(256, 192), train=True, targets=('heatmap', 'simcc'))
    batches = {}
    for dtype in ('float32', 'uint8'):
        ds = build_dataset('coco', 'train', coco_root, PipelineConfig(image_dtype=dtype, **kw))
        torch.manual_seed(3)
        batches[dtype] = default_collate([ds[i] for i in range(4)])
    assert batches['uint8']['image'].dtype == torch.uint8
    assert batches['uint8']['image'].shape == (4, 3, 256, 192)
    moved = to_device(batches['uint8'], torch.device('cpu'), channels_last=False)
    for key, value in batches['float32'].items():
        assert torch.equal(moved[key], value), key
    with pytest.raises(ValueError, match='image_dtype'):
        PipelineConfig(image_dtype='float16')


def test_kit_stages_do_the_reference_work(coco_root):
    """Evaluation crop (no draw): the kit's decode + one warp (BGR, channels swapped on the crop)
    and its tensor equal the reference's decode, warp and ToTensor + Normalize."""
    ds = build_dataset('coco', 'train', coco_root, PipelineConfig(input_size=(256, 192)))
    rec, sk = ds.records[1], ds.skeleton
    crop, joints, _, _ = ds.crop(read_bgr(rec['image_file']), rec)
    ref_crop, ref_joints = reference_warp(reference_decode(rec['image_file']), rec, ds.cfg,
                                          sk.flip_pairs, upper_body_mask(sk.joint_names), None)
    assert np.array_equal(crop, ref_crop)
    np.testing.assert_allclose(joints, ref_joints, atol=1e-3)
    from torchvision.transforms import Normalize
    ref_image = reference_tensor(ref_crop, Normalize(IMAGENET_MEAN.tolist(), IMAGENET_STD.tolist()))
    np.testing.assert_allclose(normalize_image(crop), ref_image.numpy(), atol=1e-5)


@pytest.mark.parametrize('box,rot,flip', [([100, 40, 400, 420], 0.0, False),
                                          ([100, 40, 400, 420], 30.0, True),
                                          ([60, 20, 560, 450], 30.0, True)])
def test_reduced_decode_lever_crops_the_same_place(tmp_path, box, rot, flip):
    """Decoding at 1/r (libjpeg DCT scaling) with the crop matrix corrected for r: the crop differs
    from the full-decode crop by < 0.6 grey levels on average (measured 0.25-0.45 on this scene at
    r = 2, 2.6-3.7 source pixels per output pixel); without the half-pixel correction the
    difference is about twice as large (0.56-0.9), which the test must tell apart."""
    path = str(tmp_path / 'scene.jpg')
    cv2.imwrite(path, _scene(np.random.default_rng(1)), [cv2.IMWRITE_JPEG_QUALITY, 95])
    center, scale = box_to_center_scale(box, 0.75)
    r = decode_reduction(scale, (256, 192))
    assert r == 2
    trans = crop_matrix(center, scale, rot, (256, 192), flip, W)
    full = cv2.warpAffine(read_bgr(path), trans, (192, 256), flags=cv2.INTER_LINEAR).astype(float)
    reduced = read_bgr_reduced(path, r)
    assert reduced.shape == (H // 2, W // 2, 3)
    fixed = cv2.warpAffine(reduced, reduced_matrix(trans, r), (192, 256), flags=cv2.INTER_LINEAR)
    naive = cv2.warpAffine(reduced, trans @ np.diag([r, r, 1.0]), (192, 256), flags=cv2.INTER_LINEAR)
    err_fixed, err_naive = np.abs(fixed - full).mean(), np.abs(naive - full).mean()
    assert err_fixed < 0.6 and err_naive > 1.2 * err_fixed


def test_decode_reduction_needs_a_downsampling_crop():
    assert decode_reduction((192 * 1.9, 256), (256, 192)) == 1       # < 2 source px per output px
    assert decode_reduction((192 * 2.0, 256), (256, 192)) == 2
    assert decode_reduction((192 * 5.0, 256), (256, 192)) == 4
    assert decode_reduction((100, 133), (256, 192)) == 1             # upsampling crop


def test_time_pair_measures_a_known_ratio():
    """Sleeping stages (no CPU contention): a reference twice as slow reads 2x, rates per sample."""
    res = time_pair(lambda i: time.sleep(0.001), lambda i: time.sleep(0.002), n=4, per_call=1,
                    rounds=3, repeat_s=0.0, chunk=4, warmup=1)
    assert res['ratio'] == pytest.approx(2.0, rel=0.25)
    assert res['lo'] <= res['ratio'] <= res['hi']
    assert res['kit'] == pytest.approx(1000, rel=0.3)


def test_gpu_feed_arithmetic():
    """Iteration = max(step, batch / rate): wait share 1 - step * rate / batch, fed at <= 10 %."""
    step, batch = 0.1, 32
    need = 0.9 * batch / step                                          # 288 samples/s
    assert gpu_feed(need, step, batch)['ok'] and gpu_feed(need, step, batch)['wait'] == pytest.approx(0.1)
    assert not gpu_feed(need * 0.99, step, batch)['ok']
    assert gpu_feed(1000, step, batch)['wait'] == 0.0
    assert gpu_feed(160, step, batch)['wait'] == pytest.approx(0.5)
    assert gpu_feed(need, step, batch)['min_step_s'] == pytest.approx(step)


def test_bench_data_reports_every_stage_and_lever(coco_root):
    ds = build_dataset('coco', 'train', coco_root,
                       PipelineConfig(input_size=(256, 192), train=True, targets=('heatmap', 'simcc')))
    threads = torch.get_num_threads()
    try:
        res = bench_data(ds, samples=4, rounds=2, batch=4, repeat_s=0.0)
    finally:
        torch.set_num_threads(threads)
    assert set(res['stages']) == {'decode', 'warp', 'tensor', 'targets', 'collate', 'whole'}
    assert len(res['levers']) == 4 and 0.0 <= res['reducible'] <= 1.0
    for row in [*res['stages'].values(), *res['levers'].values()]:
        assert row['kit'] > 0 and row['reference'] > 0 and row['lo'] <= row['ratio'] <= row['hi']


def test_loader_rows_state_the_assumed_step_and_verdict(coco_root, capsys):
    """The DataLoader row (main process here) and the verdict, against the quoted GPU step."""
    import argparse

    from kdlib.benchmarks.data import QUOTED_GPU_STEP_S, report_loader
    ds = build_dataset('coco', 'train', coco_root, PipelineConfig(input_size=(64, 48), train=True))
    args = argparse.Namespace(workers=[0], gpu_step_ms=1000 * QUOTED_GPU_STEP_S, gpu_batch=32,
                              batch_size=2, loader_batches=2)
    row = report_loader(ds, args)[0]
    assert row['rate'] > 0 and row['ok'] == (row['rate'] >= 0.9 * 32 / QUOTED_GPU_STEP_S)
    out = capsys.readouterr().out
    assert 'QUOTED' in out and 'verdict' in out and '270 ms' in out
