"""encode -> decode round trips, DARK, flip test consistency and the map back to the image."""
import numpy as np
import pytest
import torch

from kdlib.data.targets import heatmap_targets, simcc_targets
from kdlib.data.transforms import affine_points, box_to_center_scale, crop_matrix
from kdlib.decode import (dataset_simcc_label, decode_heatmaps, decode_simcc, flip_back_heatmaps,
                          flip_back_simcc, predict, simcc_maps, to_original)
from kdlib.skeletons import SKELETONS

H, W = 64, 48
FLIP = SKELETONS['coco'].flip_index


def inside_joints(rng, n=17, margin=6):
    return np.c_[rng.uniform(margin, W - margin, n), rng.uniform(margin, H - margin, n),
                 np.full(n, 2.0)].astype(np.float32)


def test_heatmap_encode_decode_within_quantisation():
    rng = np.random.default_rng(0)
    joints = np.stack([inside_joints(rng) for _ in range(8)])                 # (B, K, 3)
    hms = torch.from_numpy(np.stack([heatmap_targets(j, (H, W), 4, 2.0)[0] for j in joints]))
    coords, scores = decode_heatmaps(hms, stride=4)
    assert coords.shape == (8, 17, 2) and torch.allclose(scores, torch.ones(8, 17))
    err = np.abs(coords.numpy() - joints[..., :2])
    assert err.max() <= 2.0 + 1e-5                                            # half a cell x stride
    expected = np.trunc(joints[..., :2] / 4 + 0.5) * 4                         # HRNet's peak cell
    assert np.allclose(coords.numpy(), expected)


def test_simcc_encode_decode_within_quantisation():
    rng = np.random.default_rng(1)
    for sigma in (4.0, 0.0):
        joints = inside_joints(rng)
        tx, ty, _ = simcc_targets(joints, (H, W), 2.0, sigma)
        coords, _ = decode_simcc(torch.from_numpy(tx)[None], torch.from_numpy(ty)[None], 2.0)
        assert np.abs(coords[0].numpy() - joints[:, :2]).max() <= 0.25 + 1e-5


def test_dark_recovers_subpixel_peak():
    y, x = torch.meshgrid(torch.arange(16.0), torch.arange(12.0), indexing='ij')
    true = torch.tensor([[5.3, 7.6], [6.8, 4.2]])
    hms = torch.stack([torch.exp(-((x - px) ** 2 + (y - py) ** 2) / 8) for px, py in true])[None]
    plain, _ = decode_heatmaps(hms, stride=1.0)
    dark, _ = decode_heatmaps(hms, stride=1.0, dark=True)
    assert (dark[0] - true).abs().max() < 0.1 < (plain[0] - true).abs().max()


class FakeModel(torch.nn.Module):
    """Emits the targets of fixed joints; of their mirror image when the input is mirrored."""

    def __init__(self, joints, kind):
        super().__init__()
        self.joints, self.kind = joints, kind

    def forward(self, images):
        mirrored = bool(images[0, 0, 0, -1] > 0)                 # marker pixel moved right
        j = self.joints.copy()
        if mirrored:
            j = j[FLIP]
            j[:, 0] = W - 1 - j[:, 0]
        if self.kind == 'heatmaps':
            return {'heatmaps': torch.from_numpy(heatmap_targets(j, (H, W), 4, 2.0)[0])[None]}
        tx, ty, _ = simcc_targets(j, (H, W), 2.0, 4.0, normalize=False)
        return {'simcc_x': torch.from_numpy(tx)[None] * 10, 'simcc_y': torch.from_numpy(ty)[None] * 10}


def test_flip_test_is_consistent_with_plain_prediction():
    joints = inside_joints(np.random.default_rng(2))
    images = torch.zeros(1, 3, H, W)
    images[0, 0, 0, 0] = 1.0
    for kind, tol in (('heatmaps', 4.0), ('simcc', 0.5)):
        model = FakeModel(joints, kind)
        plain, _ = predict(model, images, FLIP, flip_test=False)
        flipped, _ = predict(model, images, FLIP, flip_test=True)
        assert (plain - flipped).abs().max() <= tol, kind
        assert np.abs(flipped[0].numpy() - joints[:, :2]).max() <= tol, kind


def test_flip_back_is_an_involution_without_shift():
    hm = torch.rand(2, 17, 16, 12)
    assert torch.equal(flip_back_heatmaps(flip_back_heatmaps(hm, FLIP, False), FLIP, False), hm)
    sx, sy = torch.rand(2, 17, 96), torch.rand(2, 17, 128)
    bx, by = flip_back_simcc(*flip_back_simcc(sx, sy, FLIP, 2.0, False), FLIP, 2.0, False)
    assert torch.equal(bx, sx) and torch.equal(by, sy)


def test_predict_prefers_refined_coords():
    coords = torch.rand(1, 17, 2) * 40

    class Refiner(torch.nn.Module):
        def forward(self, images):
            return {'coords': coords, 'scores': torch.ones(1, 17), 'heatmaps': torch.zeros(1, 17, 16, 12)}

    out, scores = predict(Refiner(), torch.zeros(1, 3, H, W), FLIP, flip_test=False)
    assert torch.equal(out, coords) and scores.shape == (1, 17)


def test_to_original_inverts_the_crop():
    rng = np.random.default_rng(3)
    center, scale = box_to_center_scale([30, 40, 50, 90], W / H)
    joints = np.c_[rng.uniform(35, 75, 17), rng.uniform(45, 125, 17)]
    crop_xy = affine_points(joints, crop_matrix(center, scale, 0.0, (H, W)))
    back = to_original(crop_xy[None], center[None], scale[None], (H, W))
    assert np.allclose(back[0], joints, atol=1e-3)
    back_t = to_original(torch.from_numpy(crop_xy)[None], torch.from_numpy(center)[None],
                         torch.from_numpy(scale)[None], (H, W))
    assert np.allclose(back_t[0].numpy(), joints, atol=1e-3)


def test_predict_decodes_in_float32_under_low_precision_outputs():
    joints = inside_joints(np.random.default_rng(4))

    class Half(FakeModel):
        def forward(self, images):
            return {k: v.bfloat16() for k, v in super().forward(images).items()}

    images = torch.zeros(1, 3, H, W)
    images[0, 0, 0, 0] = 1.0
    coords, scores = predict(Half(joints, 'simcc'), images, FLIP, flip_test=False)
    assert coords.dtype == torch.float32
    assert np.abs(coords[0].numpy() - joints[:, :2]).max() <= 0.5


def test_simcc_flip_average_and_score_follow_the_label_type():
    """SimCC validate_sa_simdr ('gaussian'): softmax of the mean logits, score = smaller maximum;
    validate_simdr ('onehot'): mean of the softmaxes, score = larger maximum; mmpose RTMCCHead +
    get_simcc_maximum ('rtmpose'): mean logits, no softmax, smaller maximum, bin -1 if it is <= 0."""
    x = torch.tensor([[[0., 0., 10., 0., 0., 0., 0., 0.]]])          # (1, 1, 8): sharp at bin 2
    fx = torch.tensor([[[0., 0., -20., 0., 0., 8., 8., 0.]]])        # mirrored, brought back
    y = torch.tensor([[[0., 3., 0., 0., 0., 0., 0., 0., 0., 0.]]])   # (1, 1, 10)
    mean_logits = (0.5 * (x + fx)).softmax(-1), y.softmax(-1)
    mean_probs = 0.5 * (x.softmax(-1) + fx.softmax(-1)), y.softmax(-1)
    raw = 0.5 * (x + fx), y
    for label, (mx, my), pick in (('gaussian', mean_logits, min), ('onehot', mean_probs, max),
                                  ('rtmpose', raw, min)):
        got_x, got_y = simcc_maps(x, y, (fx, y), label)
        assert torch.allclose(got_x, mx) and torch.allclose(got_y, my)
        coords, score = decode_simcc(got_x, got_y, 2.0, label)
        assert coords[0, 0].tolist() == [mx.argmax().item() / 2, 0.5]
        assert score.item() == pytest.approx(pick(mx.max().item(), my.max().item()))
    assert decode_simcc(*mean_logits, 2.0, 'gaussian')[0][0, 0, 0] == 2.5      # logits: bin 5
    assert decode_simcc(*mean_probs, 2.0, 'onehot')[0][0, 0, 0] == 1.0         # probs: bin 2
    coords, score = decode_simcc(raw[0] - 10, raw[1], 2.0, 'rtmpose')            # max logit <= 0
    assert score.item() == -6.0 and coords[0, 0].tolist() == [-0.5, -0.5]


def test_predict_reports_what_it_decoded_and_reads_the_label_type():
    from types import SimpleNamespace

    from kdlib.data.topdown import PipelineConfig
    joints = inside_joints(np.random.default_rng(5))
    images = torch.zeros(1, 3, H, W)
    images[0, 0, 0, 0] = 1.0
    for kind, decoded in (('heatmaps', 'heatmaps'), ('simcc', 'simcc')):
        info = {}
        predict(FakeModel(joints, kind), images, FLIP, info=info)
        assert info['decoded'] == decoded and info['scores'] == decoded
    onehot = SimpleNamespace(cfg=PipelineConfig(simcc_sigma=0.0))             # SimDR labels
    assert dataset_simcc_label(torch.utils.data.Subset(onehot, [])) == 'onehot'
    assert dataset_simcc_label(SimpleNamespace(cfg=PipelineConfig())) == 'gaussian'
    rtm = SimpleNamespace(cfg=PipelineConfig(simcc_sigma=5.66, simcc_normalize=False))
    assert dataset_simcc_label(rtm) == 'rtmpose'
