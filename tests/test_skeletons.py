"""Skeleton definitions: orders, flip pairs, sigmas and name-based index maps."""
import numpy as np
import pytest

from kdlib.skeletons import SKELETONS, convert_joints, index_map

NAMES = sorted(SKELETONS)


@pytest.mark.parametrize('name', NAMES)
def test_flip_index_is_an_involution_pairing_left_with_right(name):
    sk = SKELETONS[name]
    flip = sk.flip_index
    assert np.array_equal(flip[flip], np.arange(sk.num_joints))
    for j, k in enumerate(flip):
        a, b = sk.joint_names[j], sk.joint_names[k]
        if a.startswith('left_'):
            assert b == 'right_' + a[5:]
        elif a.startswith('right_'):
            assert b == 'left_' + a[6:]
        else:
            assert j == k, f'{a} is a centre joint and must map to itself'


@pytest.mark.parametrize('name', NAMES)
def test_limbs_and_sigmas_are_consistent(name):
    sk = SKELETONS[name]
    assert len(set(sk.joint_names)) == sk.num_joints
    assert all(0 <= a < sk.num_joints and 0 <= b < sk.num_joints and a != b for a, b in sk.limbs)
    if sk.sigmas is not None:
        assert sk.sigmas.shape == (sk.num_joints,)
        assert np.allclose(sk.sigmas[sk.flip_index], sk.sigmas), 'mirrored joints share a sigma'


def test_dataset_orders_and_sigmas_match_their_sources():
    coco, mpii, crowd, halpe = (SKELETONS[n] for n in ('coco', 'mpii', 'crowdpose', 'halpe'))
    assert coco.num_joints == 17 and mpii.num_joints == 16
    assert crowd.num_joints == 14 and halpe.num_joints == 26
    # pycocotools cocoeval.py
    assert np.allclose(coco.sigmas * 10, [.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62,
                                          1.07, 1.07, .87, .87, .89, .89])
    # crowdposetools cocoeval.py computeOks
    assert np.allclose(crowd.sigmas * 10, [.79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87,
                                           .89, .89, .79, .79])
    # Halpe-FullBody cocoeval / mmpose halpe26.py
    assert np.allclose(halpe.sigmas[17:], [.026, .026, .066] + [.079] * 6)
    assert mpii.sigmas is None
    # HRNet mpii.py flip pairs and joint positions
    assert set(mpii.flip_pairs) == {(0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)}
    assert (mpii.joint_names[6], mpii.joint_names[7], mpii.joint_names[9]) == ('pelvis', 'thorax', 'head_top')
    assert crowd.joint_names[12:] == ('head_top', 'upper_neck')
    assert halpe.joint_names[17:20] == ('head_top', 'upper_neck', 'pelvis')
    assert set(coco.flip_pairs) == {(1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)}


@pytest.mark.parametrize('src', NAMES)
@pytest.mark.parametrize('dst', NAMES)
def test_index_map_matches_by_name(src, dst):
    s, d = SKELETONS[src], SKELETONS[dst]
    m = index_map(s, d)
    assert m.shape == (d.num_joints,)
    for j, i in enumerate(m):
        if i >= 0:
            assert s.joint_names[i] == d.joint_names[j]
        else:
            assert d.joint_names[j] not in s.joint_names


def test_every_dataset_is_a_projection_of_the_superset():
    sup = SKELETONS['superset']
    for name in ('coco', 'mpii', 'crowdpose', 'halpe'):
        assert (index_map(sup, SKELETONS[name]) >= 0).all(), name


def test_convert_joints_moves_values_and_zeroes_missing():
    coco, mpii = SKELETONS['coco'], SKELETONS['mpii']
    joints = np.arange(17 * 3, dtype=np.float32).reshape(17, 3) + 1
    out = convert_joints(joints, coco, mpii)                     # (16, 3)
    assert np.array_equal(out[mpii.index('left_wrist')], joints[coco.index('left_wrist')])
    assert not out[mpii.index('pelvis')].any()
    batch = convert_joints(joints[None].repeat(2, 0), coco, mpii)
    assert batch.shape == (2, 16, 3)
