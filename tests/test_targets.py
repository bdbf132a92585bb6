"""Vectorised targets equal the per-joint loop references (HRNet / SimCC code structure)."""
import numpy as np
import pytest

from kdlib.data.targets import (heatmap_targets, heatmap_targets_loop, simcc_targets,
                                simcc_targets_loop)


def random_joints(rng, n=17, size=(256, 192), margin=60):
    h, w = size
    xy = np.c_[rng.uniform(-margin, w + margin, n), rng.uniform(-margin, h + margin, n)]
    return np.c_[xy, rng.integers(0, 3, n)].astype(np.float32)


@pytest.mark.parametrize('sigma', [2.0, 3.0, 1.5])
@pytest.mark.parametrize('size', [(256, 192), (64, 48)])
def test_heatmaps_equal_loop_reference(sigma, size):
    rng = np.random.default_rng(0)
    for _ in range(50):
        joints = random_joints(rng, size=size)
        hm, w = heatmap_targets(joints, size, 4, sigma)
        hm_ref, w_ref = heatmap_targets_loop(joints, size, 4, sigma)
        assert hm.dtype == np.float32 and hm.shape == (17, size[0] // 4, size[1] // 4)
        assert np.array_equal(w, w_ref)
        assert np.abs(hm - hm_ref).max() < 1e-6


def test_heatmap_hand_values():
    joints = np.array([[20.0, 20.0, 2.0], [-100.0, 5.0, 2.0], [8.0, 8.0, 0.0]], np.float32)
    hm, w = heatmap_targets(joints, (64, 64), 4, 2.0)
    assert w.tolist() == [1.0, 0.0, 0.0]                          # far outside; unlabelled
    assert hm[0, 5, 5] == 1.0                                     # peak at (20/4, 20/4)
    assert np.isclose(hm[0, 5, 6], np.exp(-1 / 8))
    assert hm[0, 5, 12] == 0.0 and hm[0, 5, 11] > 0               # 3-sigma window cut-off
    assert hm[1:].max() == 0


@pytest.mark.parametrize('sigma,smoothing', [(4.0, 0.0), (6.0, 0.1), (0.0, 0.0), (0.0, 0.2)])
def test_simcc_equals_loop_reference(sigma, smoothing):
    rng = np.random.default_rng(1)
    for _ in range(50):
        joints = random_joints(rng)
        out = simcc_targets(joints, (256, 192), 2.0, sigma, smoothing)
        ref = simcc_targets_loop(joints, (256, 192), 2.0, sigma, smoothing)
        assert out[0].shape == (17, 384) and out[1].shape == (17, 512)
        for a, b in zip(out, ref):
            assert np.abs(a - b).max() < 1e-6


def test_simcc_label_smoothing_and_normalisation():
    joints = np.array([[10.0, 20.0, 2.0]], np.float32)
    tx, ty, w = simcc_targets(joints, (64, 48), 2.0, sigma=0.0, label_smoothing=0.1)
    assert np.isclose(tx[0, 20], 0.9) and np.isclose(tx[0, 0], 0.1 / 95)   # NMT label smoothing
    assert np.isclose(tx.sum(), 1.0)
    tx, ty, w = simcc_targets(joints, (256, 192), 2.0, sigma=4.0)
    assert np.isclose(tx.sum(), 1.0, atol=1e-4) and tx.argmax() == 20        # ~unit mass Gaussian


def test_simcc_per_axis_sigma_matches_the_loop_and_one_sigma():
    """RTMPose's SimCCLabel(sigma=(4.9, 5.66)): x and y Gaussians of their own width."""
    import numpy as np
    from kdlib.data.targets import simcc_targets, simcc_targets_loop
    joints = np.array([[40.0, 100.0, 2], [150.0, 30.0, 1], [-30.0, 50.0, 2], [0, 0, 0]], np.float32)
    tx, ty, w = simcc_targets(joints, (256, 192), 2.0, (4.9, 5.66), normalize=False)
    rx, ry, rw = simcc_targets_loop(joints, (256, 192), 2.0, (4.9, 5.66), normalize=False)
    assert np.allclose(tx, rx, atol=1e-6) and np.allclose(ty, ry, atol=1e-6) and np.array_equal(w, rw)
    assert tx[0].max() == pytest.approx(1.0, abs=0.02)
    # half width at half maximum of each axis: sqrt(2 ln 2) sigma
    above = lambda t: float((t > 0.5).sum())  # noqa: E731
    assert above(tx[0]) == pytest.approx(2 * 1.1774 * 4.9, abs=1.5)
    assert above(ty[0]) == pytest.approx(2 * 1.1774 * 5.66, abs=1.5)
    same_x, _, _ = simcc_targets(joints, (256, 192), 2.0, 4.9, normalize=False)
    assert np.array_equal(tx, same_x)
    with pytest.raises(ValueError, match='both axes'):
        simcc_targets(joints, (256, 192), 2.0, (0.0, 5.0))
