"""Geometry of the top-down pipeline: box -> centre/scale, affine crop, flip, rotation/scale, half body.

Follows HRNet / Simple Baselines (github.com/leoxiaobin/deep-high-resolution-net.pytorch,
lib/dataset/JointsDataset.py `__getitem__`, `half_body_transform`; lib/dataset/coco.py `_box2cs`;
lib/utils/transforms.py `get_affine_transform`, `fliplr_joints`), written afresh with two changes of
representation that do not change the numbers:

* `scale` is the crop size (w, h) in original-image pixels, not in units of HRNet's `pixel_std=200`.
* The horizontal flip is folded into the affine matrix (x -> W - 1 - x, then the crop), instead of
  copying the whole flipped image as HRNet does; both sample the very same source points, so the
  crop is identical and only the crop-sized array is ever written.

The affine of `get_affine_transform` is a similarity: it maps the centre `c` to the crop centre
(W/2, H/2), scales by W_crop / w and rotates by -rot degrees (HRNet builds it from three points;
here it is written in closed form, and `tests/test_transforms.py` checks both agree).
"""
from __future__ import annotations

import cv2
import numpy as np

PADDING = 1.25          # HRNet coco.py _box2cs: scale * 1.25
HALF_BODY_PADDING = 1.5  # HRNet JointsDataset.half_body_transform: scale * 1.5
UPPER_BODY = frozenset((
    'nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder', 'right_shoulder',
    'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'head_top', 'upper_neck', 'thorax'))


def upper_body_mask(joint_names) -> np.ndarray:
    """(K,) bool: joints of the upper body, by canonical name (HRNet's `upper_body_ids`).

    COCO: nose..wrists (HRNet ids 0-10); MPII: thorax, neck, head, arms (ids 7-15; pelvis is lower).
    """
    return np.array([n in UPPER_BODY for n in joint_names], dtype=bool)


def box_to_center_scale(bbox, aspect_ratio: float, padding: float = PADDING):
    """(x, y, w, h) box -> centre (2,), crop size (w, h) (2,) with fixed aspect w/h and padding."""
    x, y, w, h = (float(v) for v in bbox)
    center = np.array([x + w * 0.5, y + h * 0.5], dtype=np.float32)
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    scale = np.array([w, h], dtype=np.float32) * padding
    return center, scale


def get_affine_transform(center, scale, rot: float, output_size, inv: bool = False) -> np.ndarray:
    """2x3 matrix mapping the rotated crop (centre, size `scale`) onto `output_size` = (W, H).

    Only scale[0] sets the zoom, as in HRNet (the box already has the output's aspect ratio).
    inv=True returns the map from output pixels back to the source image.
    """
    out_w, out_h = float(output_size[0]), float(output_size[1])
    s = out_w / float(scale[0])
    r = np.deg2rad(rot)
    cs, sn = np.cos(r), np.sin(r)
    lin = s * np.array([[cs, sn], [-sn, cs]])                         # rotate by -rot, zoom
    trans = np.concatenate([lin, (np.array([out_w * 0.5, out_h * 0.5]) - lin @ np.asarray(
        center, dtype=np.float64))[:, None]], axis=1)
    return invert_affine(trans) if inv else trans


def invert_affine(trans: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    lin_inv = np.linalg.inv(trans[:, :2])
    return np.concatenate([lin_inv, -lin_inv @ trans[:, 2:]], axis=1)


def flip_matrix(width: int) -> np.ndarray:
    """3x3 homogeneous mirror x -> width - 1 - x (HRNet fliplr_joints / c[0] = W - c[0] - 1)."""
    return np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def affine_points(points: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to (..., 2) points, vectorised (HRNet loops `affine_transform`)."""
    return points @ trans[:, :2].T + trans[:, 2]


def flip_joints(joints: np.ndarray, width: int, flip_index: np.ndarray) -> np.ndarray:
    """Mirror (K, 3) joints in an image of `width` and swap left/right (HRNet fliplr_joints)."""
    out = joints[flip_index].copy()
    out[:, 0] = width - 1 - out[:, 0]
    return out


def half_body_box(joints: np.ndarray, upper: np.ndarray, aspect_ratio: float, rng,
                  padding: float = HALF_BODY_PADDING):
    """Centre/size of the upper or lower half of a person, or (None, None) (HRNet half_body_transform).

    Picks the upper body when it has > 2 labelled joints and a standard normal draw is < 0.5
    (HRNet's `np.random.randn() < 0.5`, so ~69 % of the time -- kept as in the reference code),
    else the lower body if it has > 2, else the upper one; needs at least 2 joints.
    """
    labelled = joints[:, 2] > 0
    up, low = joints[labelled & upper, :2], joints[labelled & ~upper, :2]
    if rng.standard_normal() < 0.5 and len(up) > 2:
        sel = up
    else:
        sel = low if len(low) > 2 else up
    if len(sel) < 2:
        return None, None
    center = sel.mean(axis=0).astype(np.float32)
    w, h = sel.max(axis=0) - sel.min(axis=0)
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    return center, np.array([w, h], dtype=np.float32) * padding


def random_scale_rotation(rng, scale_factor: float, rot_factor: float, rot_prob: float = 0.6):
    """(scale multiplier, rotation degrees) as HRNet: s * clip(N(1, sf), 1 - sf, 1 + sf),
    r = clip(N(0, rf), -2 rf, 2 rf) with probability `rot_prob` (0.6) else 0."""
    s = float(np.clip(rng.standard_normal() * scale_factor + 1, 1 - scale_factor, 1 + scale_factor))
    r = float(np.clip(rng.standard_normal() * rot_factor, -2 * rot_factor, 2 * rot_factor))
    return s, (r if rng.random() <= rot_prob else 0.0)


def sample_augmentation(joints, center, scale, cfg, upper, rng):
    """Draw one training augmentation in HRNet's order: half body, scale, rotation, flip.

    Returns (center, scale, rot, flip) -- the flip is applied later, inside the crop matrix.
    """
    aspect = cfg.input_size[1] / cfg.input_size[0]
    if (cfg.half_body_prob > 0 and (joints[:, 2] > 0).sum() > cfg.half_body_min_joints
            and rng.random() < cfg.half_body_prob):
        c_half, s_half = half_body_box(joints, upper, aspect, rng)
        if c_half is not None:
            center, scale = c_half, s_half
    s, rot = random_scale_rotation(rng, cfg.scale_factor, cfg.rot_factor, cfg.rot_prob)
    flip = bool(cfg.flip and rng.random() <= cfg.flip_prob)
    return center, scale * s, rot, flip


def crop_matrix(center, scale, rot: float, input_size, flip: bool = False,
                image_width: int = 0) -> np.ndarray:
    """2x3 matrix from the original image to the (H, W) input crop, optional mirror first.

    With flip, the centre is mirrored too (HRNet: c[0] = W - c[0] - 1) and the matrix is
    crop(c') . mirror, so a joint x maps like HRNet's flipped-image joint W - 1 - x.
    """
    h, w = input_size
    if not flip:
        return get_affine_transform(center, scale, rot, (w, h))
    c = np.array([image_width - 1 - center[0], center[1]], dtype=np.float64)
    trans = get_affine_transform(c, scale, rot, (w, h))
    return trans @ flip_matrix(image_width)


# --------------------------------------------------------------------------------------------
# Reference transcriptions (HRNet's structure; for `python -m kdlib.benchmarks data`, not the hot path).
# --------------------------------------------------------------------------------------------

def hrnet_affine_loop(center, scale, rot, output_size, inv: bool = False):
    """Three-point construction of HRNet lib/utils/transforms.py get_affine_transform (scale in
    pixels); the reference `get_affine_transform` is tested against."""
    src_w, (dst_w, dst_h) = scale[0], output_size
    r = np.pi * rot / 180
    src_dir = np.array([0.5 * src_w * np.sin(r), -0.5 * src_w * np.cos(r)])
    src, dst = np.zeros((3, 2), np.float32), np.zeros((3, 2), np.float32)
    src[0], src[1] = center, center + src_dir
    dst[0] = [dst_w * 0.5, dst_h * 0.5]
    dst[1] = dst[0] + np.array([0, -0.5 * dst_w])
    for m in (src, dst):
        d = m[0] - m[1]
        m[2] = m[1] + np.array([-d[1], d[0]], np.float32)
    return cv2.getAffineTransform(dst, src) if inv else cv2.getAffineTransform(src, dst)


def half_body_box_loop(joints, upper, aspect, rng):
    """HRNet JointsDataset.half_body_transform as written there: a loop over joints."""
    up, low = [], []
    for j in range(len(joints)):                       # HRNet half_body_transform loop
        if joints[j, 2] > 0:
            (up if upper[j] else low).append(joints[j, :2])
    sel = up if (rng.standard_normal() < 0.5 and len(up) > 2) else (low if len(low) > 2 else up)
    if len(sel) < 2:
        return None, None
    sel = np.array(sel, np.float32)
    w, h = sel.max(0) - sel.min(0)
    w, h = (w, w / aspect) if w > aspect * h else (h * aspect, h)
    return sel.mean(0), np.array([w, h], np.float32) * 1.5
