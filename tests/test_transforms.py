"""Geometry of the top-down pipeline against HRNet's reference construction."""
import cv2
import numpy as np
import pytest

from kdlib.data.topdown import PipelineConfig
from kdlib.data.transforms import (affine_points, box_to_center_scale, crop_matrix, flip_joints,
                                   get_affine_transform, half_body_box, hrnet_affine_loop,
                                   random_scale_rotation, sample_augmentation, upper_body_mask)
from kdlib.skeletons import SKELETONS


@pytest.mark.parametrize('rot', [0.0, 17.0, -75.0])
def test_affine_matches_hrnet_three_point_construction(rot):
    rng = np.random.default_rng(0)
    for _ in range(20):
        c, s = rng.uniform(0, 500, 2), rng.uniform(50, 400, 2)
        for inv in (False, True):
            ours = get_affine_transform(c, s, rot, (192, 256), inv=inv)
            ref = hrnet_affine_loop(c, s, rot, (192, 256), inv=inv)
            assert np.allclose(ours, ref, rtol=1e-4, atol=1e-2)


def test_box_to_center_scale_fixed_aspect_and_padding():
    center, scale = box_to_center_scale([10, 20, 30, 100], aspect_ratio=0.75)
    assert np.allclose(center, [25, 70])
    assert np.allclose(scale, [75 * 1.25, 100 * 1.25])            # widened to w/h = 0.75
    _, scale = box_to_center_scale([0, 0, 300, 100], aspect_ratio=0.75)
    assert np.allclose(scale, [300 * 1.25, 400 * 1.25])           # heightened


def test_crop_maps_box_centre_to_crop_centre_and_box_inside():
    center, scale = box_to_center_scale([100, 50, 60, 120], 0.75)
    trans = crop_matrix(center, scale, 0.0, (256, 192))
    assert np.allclose(affine_points(center, trans), [96, 128])
    corners = affine_points(np.array([[100, 50], [160, 170]], np.float64), trans)
    assert (corners >= 0).all() and (corners[:, 0] <= 192).all() and (corners[:, 1] <= 256).all()


def test_flip_pairs_are_an_involution_for_every_skeleton():
    for sk in SKELETONS.values():
        fi = sk.flip_index
        assert np.array_equal(fi[fi], np.arange(sk.num_joints)), sk.name
        for a, b in sk.flip_pairs:
            na, nb = sk.joint_names[a], sk.joint_names[b]
            assert na.replace('left_', '') == nb.replace('right_', '') or \
                na.replace('right_', '') == nb.replace('left_', '')


def test_flip_joints_twice_is_identity():
    sk = SKELETONS['coco']
    joints = np.random.default_rng(1).uniform(0, 300, (17, 3)).astype(np.float32)
    back = flip_joints(flip_joints(joints, 320, sk.flip_index), 320, sk.flip_index)
    assert np.allclose(back, joints)


def test_flip_in_matrix_equals_hrnet_full_image_flip():
    """HRNet flips the whole image and the centre; the kit folds the mirror into the matrix."""
    rng = np.random.default_rng(2)
    img = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    c, s, rot = np.array([70.0, 60.0]), np.array([90.0, 120.0]), 20.0
    c_flip = np.array([160 - c[0] - 1, c[1]])
    ref = cv2.warpAffine(np.ascontiguousarray(img[:, ::-1]), hrnet_affine_loop(c_flip, s, rot, (48, 64)),
                         (48, 64), flags=cv2.INTER_LINEAR)
    ours = cv2.warpAffine(img, crop_matrix(c, s, rot, (64, 48), True, 160), (48, 64),
                          flags=cv2.INTER_LINEAR)
    assert np.abs(ref.astype(int) - ours).max() <= 1
    # joints: mirror + swap, then crop == kit's matrix on raw joints, then swap
    sk = SKELETONS['coco']
    joints = np.c_[rng.uniform(20, 140, (17, 2)), np.full(17, 2.0)].astype(np.float32)
    a = affine_points(flip_joints(joints, 160, sk.flip_index)[:, :2],
                      hrnet_affine_loop(c_flip, s, rot, (48, 64)))
    b = affine_points(joints[:, :2], crop_matrix(c, s, rot, (64, 48), True, 160))[sk.flip_index]
    assert np.allclose(a, b, atol=1e-3)


def test_upper_body_sets_match_hrnet():
    assert np.flatnonzero(upper_body_mask(SKELETONS['coco'].joint_names)).tolist() == list(range(11))
    assert np.flatnonzero(upper_body_mask(SKELETONS['mpii'].joint_names)).tolist() == list(range(7, 16))


def test_half_body_box_and_random_factors():
    sk = SKELETONS['coco']
    joints = np.c_[np.random.default_rng(3).uniform(0, 100, (17, 2)), np.full(17, 2)].astype(np.float32)
    center, scale = half_body_box(joints, upper_body_mask(sk.joint_names), 0.75,
                                  np.random.default_rng(0))
    assert center.shape == (2,) and np.isclose(scale[0] / scale[1], 0.75)
    rng = np.random.default_rng(0)
    draws = np.array([random_scale_rotation(rng, 0.35, 45.0) for _ in range(2000)])
    assert draws[:, 0].min() >= 0.65 and draws[:, 0].max() <= 1.35
    assert np.abs(draws[:, 1]).max() <= 90.0
    assert 0.55 < (draws[:, 1] != 0).mean() < 0.65                  # rotation with prob 0.6


def test_sample_augmentation_respects_switches():
    cfg = PipelineConfig(train=True, flip=False, rot_factor=0.0, scale_factor=0.0, half_body_prob=0.0)
    joints = np.zeros((17, 3), np.float32)
    c, s, rot, flip = sample_augmentation(joints, np.array([5., 5.]), np.array([10., 20.]), cfg,
                                          upper_body_mask(SKELETONS['coco'].joint_names),
                                          np.random.default_rng(0))
    assert np.allclose(c, [5, 5]) and np.allclose(s, [10, 20]) and rot == 0 and not flip
