"""Training targets, vectorised over joints: 2D Gaussian heatmaps and SimCC / SimDR 1D labels.

Heatmaps reproduce HRNet's `JointsDataset.generate_target` value for value
(github.com/leoxiaobin/deep-high-resolution-net.pytorch, lib/dataset/JointsDataset.py): the peak
sits on the integer cell mu = int(x / stride + 0.5), the Gaussian exp(-d^2 / (2 sigma^2)) is cut to
a (6 sigma + 1)^2 window, and a joint whose window misses the heatmap gets target_weight 0. HRNet
fills one joint at a time in a Python loop -- the known data-loading bottleneck of that code --
here the 2D Gaussian is the outer product of two 1D ones, computed for all joints at once.

SimCC labels follow the official SimCC code (github.com/leeyegy/SimCC, lib/dataset/JointsDataset.py):
* sigma > 0 -- SA-SimDR `generate_sa_simdr`: a Gaussian over the k-times finer bins centred at
  k * x (not rounded), divided by sigma * sqrt(2 pi) so it sums to ~1 (`normalize`); a joint
  whose 3-sigma window misses the input (`adjust_target_weight`, measured in input pixels as in
  the original) gets weight 0.
* sigma == 0 -- SimDR one-hot `filter_target_simdr`: bin = round(k * x); weight 0 outside [0, k W).
* label smoothing -- lib/core/loss.py `NMTNORMCritierion`: 1 - ls on the label bin and
  ls / (N - 1) on the others; written t (1 - ls) + ls / (N - 1) (1 - t), which is exactly that for
  one-hot labels and the same blend for Gaussian ones (a kit generalisation).

The per-joint loop versions at the bottom (`*_loop`) are straightforward transcriptions of the
reference code, kept for `python -m kdlib.benchmarks data` and for the exactness tests.
"""
from __future__ import annotations

import numpy as np


def _heatmap_window(joints: np.ndarray, heatmap_size, stride, sigma: float):
    """HRNet's integer peak cell and [ul, br) window per joint, and the (K,) weight."""
    hm_w, hm_h = heatmap_size
    tmp = sigma * 3
    mu = np.trunc(joints[:, :2] / np.asarray(stride, dtype=np.float32) + 0.5)   # (K, 2)
    ul, br = np.trunc(mu - tmp), np.trunc(mu + tmp + 1)
    outside = (ul[:, 0] >= hm_w) | (ul[:, 1] >= hm_h) | (br[:, 0] < 0) | (br[:, 1] < 0)
    weight = ((joints[:, 2] > 0) & ~outside).astype(np.float32)
    return ul, br, weight


def heatmap_weight(joints: np.ndarray, heatmap_size, stride, sigma: float) -> np.ndarray:
    """(K,) float32: labelled and with part of the 3-sigma window on the heatmap (HRNet)."""
    return _heatmap_window(joints, heatmap_size, stride, sigma)[2]


def heatmap_targets(joints: np.ndarray, input_size, stride: int = 4, sigma: float = 2.0):
    """Gaussian heatmaps (K, H/s, W/s) and target_weight (K,) for (K, 3) joints in input pixels.

    input_size = (H, W). Same values as HRNet generate_target (TARGET_TYPE gaussian, SIGMA 2).
    """
    in_h, in_w = input_size
    hm_h, hm_w = in_h // stride, in_w // stride
    ul, br, weight = _heatmap_window(joints, (hm_w, hm_h), (in_w / hm_w, in_h / hm_h), sigma)
    peak = ul + (2 * sigma * 3 + 1) // 2        # HRNet's window origin + x0 (= mu for integer 3 sigma)
    gx = _window_gauss(np.arange(hm_w), peak[:, 0], ul[:, 0], br[:, 0], sigma)   # (K, W/s)
    gy = _window_gauss(np.arange(hm_h), peak[:, 1], ul[:, 1], br[:, 1], sigma)   # (K, H/s)
    gy *= weight[:, None]
    heatmaps = np.einsum('kh,kw->khw', gy, gx)                                   # (K, H/s, W/s)
    return heatmaps, weight


def _window_gauss(grid, peak, lo, hi, sigma):
    """(K, N) exp(-(grid - peak)^2 / (2 sigma^2)) inside [lo, hi), 0 outside."""
    d = grid[None, :] - peak[:, None]
    inside = (grid[None, :] >= lo[:, None]) & (grid[None, :] < hi[:, None])
    return np.where(inside, np.exp(-(d * d) / (2 * sigma ** 2)), 0.0).astype(np.float32)


def sigma_xy(sigma) -> tuple[float, float]:
    """SimCC label sigma per axis: one number for both, or (sigma_x, sigma_y) in bins (mmpose
    ``SimCCLabel(sigma=(4.9, 5.66))``, RTMPose's 256x192 labels). Both > 0, or both 0 (one-hot)."""
    sx, sy = (float(sigma), float(sigma)) if np.isscalar(sigma) else map(float, sigma)
    if (sx > 0) != (sy > 0) or sx < 0 or sy < 0:
        raise ValueError(f'simcc sigma must be >= 0 and both axes Gaussian or both one-hot, got {sigma!r}')
    return sx, sy


def simcc_weight(joints: np.ndarray, input_size, split_ratio: float, sigma) -> np.ndarray:
    """(K,) float32 target weight of SimCC labels (see module docstring)."""
    in_h, in_w = input_size
    labelled = joints[:, 2] > 0
    sx, sy = sigma_xy(sigma)
    if sx > 0:                                    # SimCC adjust_target_weight (input pixels)
        tmp = np.array([sx, sy], dtype=np.float32) * 3                            # (2,) per axis
        ul, br = np.trunc(joints[:, :2] - tmp), np.trunc(joints[:, :2] + tmp + 1)
        outside = (ul[:, 0] >= in_w) | (ul[:, 1] >= in_h) | (br[:, 0] < 0) | (br[:, 1] < 0)
    else:                                         # SimCC filter_target_simdr (bins)
        bins = np.around(joints[:, :2] * split_ratio)
        outside = ((bins < 0) | (bins >= np.array([in_w, in_h]) * split_ratio)).any(axis=1)
    return (labelled & ~outside).astype(np.float32)


def simcc_targets(joints: np.ndarray, input_size, split_ratio: float = 2.0, sigma=4.0,
                  label_smoothing: float = 0.0, normalize: bool = True):
    """SimCC labels simcc_x (K, W k), simcc_y (K, H k) and target_weight (K,).

    sigma in bins (SimCC repo: 4 for COCO 256x192 k=2, 6 for MPII 256x256 k=2; RTMPose: (4.9, 5.66)
    per axis at 256x192), one number or (sigma_x, sigma_y); 0 = one-hot.
    """
    in_h, in_w = input_size
    nx, ny = int(in_w * split_ratio), int(in_h * split_ratio)
    weight = simcc_weight(joints, input_size, split_ratio, sigma)
    sx, sy = sigma_xy(sigma)
    if sx > 0:
        mu = (joints[:, :2] * split_ratio).astype(np.float32)                    # (K, 2)
        tx = _gauss_1d(nx, mu[:, 0], sx, normalize)                               # (K, W k)
        ty = _gauss_1d(ny, mu[:, 1], sy, normalize)                               # (K, H k)
    else:
        bins = np.around(joints[:, :2] * split_ratio).astype(np.int64)
        tx = (np.arange(nx)[None] == np.clip(bins[:, :1], 0, nx - 1)).astype(np.float32)
        ty = (np.arange(ny)[None] == np.clip(bins[:, 1:], 0, ny - 1)).astype(np.float32)
    if label_smoothing > 0:
        tx = tx * (1 - label_smoothing) + label_smoothing / (nx - 1) * (1 - tx)
        ty = ty * (1 - label_smoothing) + label_smoothing / (ny - 1) * (1 - ty)
    w = weight[:, None]
    return tx * w, ty * w, weight


def _gauss_1d(n: int, mu: np.ndarray, sigma: float, normalize: bool) -> np.ndarray:
    """(K, n) float32 exp(-(i - mu)^2 / (2 sigma^2)) [/ (sigma sqrt(2 pi))] over bins i < n."""
    d = np.arange(n, dtype=np.float32)[None] - mu[:, None]
    g = np.exp(d * d * np.float32(-0.5 / sigma ** 2))
    if normalize:
        g *= np.float32(1.0 / (sigma * np.sqrt(2 * np.pi)))
    return g


# --------------------------------------------------------------------------------------------
# Per-joint loop references (the reference code's structure; not for the hot path).
# --------------------------------------------------------------------------------------------

def heatmap_targets_loop(joints: np.ndarray, input_size, stride: int = 4, sigma: float = 2.0):
    """HRNet generate_target as written there: one joint at a time, window paste."""
    in_h, in_w = input_size
    hm_w, hm_h = in_w // stride, in_h // stride
    feat_stride = (in_w / hm_w, in_h / hm_h)
    num_joints = joints.shape[0]
    weight = (joints[:, 2] > 0).astype(np.float32)
    target = np.zeros((num_joints, hm_h, hm_w), dtype=np.float32)
    tmp = sigma * 3
    for j in range(num_joints):
        mu_x = int(joints[j, 0] / feat_stride[0] + 0.5)
        mu_y = int(joints[j, 1] / feat_stride[1] + 0.5)
        ul = [int(mu_x - tmp), int(mu_y - tmp)]
        br = [int(mu_x + tmp + 1), int(mu_y + tmp + 1)]
        if ul[0] >= hm_w or ul[1] >= hm_h or br[0] < 0 or br[1] < 0:
            weight[j] = 0
            continue
        size = 2 * tmp + 1
        x = np.arange(0, size, 1, np.float32)
        y = x[:, None]
        x0 = y0 = size // 2
        g = np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma ** 2))
        g_x = max(0, -ul[0]), min(br[0], hm_w) - ul[0]
        g_y = max(0, -ul[1]), min(br[1], hm_h) - ul[1]
        img_x = max(0, ul[0]), min(br[0], hm_w)
        img_y = max(0, ul[1]), min(br[1], hm_h)
        if weight[j] > 0.5:
            target[j, img_y[0]:img_y[1], img_x[0]:img_x[1]] = g[g_y[0]:g_y[1], g_x[0]:g_x[1]]
    return target, weight


def simcc_targets_loop(joints: np.ndarray, input_size, split_ratio: float = 2.0,
                       sigma=4.0, label_smoothing: float = 0.0, normalize: bool = True):
    """SimCC generate_sa_simdr / filter_target_simdr as written there: one joint at a time
    (per-axis sigma as mmpose's SimCCLabel)."""
    in_h, in_w = input_size
    nx, ny = int(in_w * split_ratio), int(in_h * split_ratio)
    num_joints = joints.shape[0]
    weight = (joints[:, 2] > 0).astype(np.float32)
    tx, ty = np.zeros((num_joints, nx), np.float32), np.zeros((num_joints, ny), np.float32)
    for j in range(num_joints):
        x, y = float(joints[j, 0]), float(joints[j, 1])
        sx, sy = sigma_xy(sigma)
        if sx > 0:
            ul, br = (int(x - sx * 3), int(y - sy * 3)), (int(x + sx * 3 + 1), int(y + sy * 3 + 1))
            if ul[0] >= in_w or ul[1] >= in_h or br[0] < 0 or br[1] < 0:
                weight[j] = 0
            if weight[j] < 0.5:
                continue
            norm_x = sx * np.sqrt(2 * np.pi) if normalize else 1.0
            norm_y = sy * np.sqrt(2 * np.pi) if normalize else 1.0
            tx[j] = np.exp(-(np.arange(nx) - x * split_ratio) ** 2 / (2 * sx ** 2)) / norm_x
            ty[j] = np.exp(-(np.arange(ny) - y * split_ratio) ** 2 / (2 * sy ** 2)) / norm_y
        else:
            bx, by = int(np.around(x * split_ratio)), int(np.around(y * split_ratio))
            if not (0 <= bx < nx and 0 <= by < ny):
                weight[j] = 0
            if weight[j] < 0.5:
                continue
            tx[j, bx], ty[j, by] = 1.0, 1.0
        if label_smoothing > 0:
            for t, n in ((tx, nx), (ty, ny)):
                t[j] = t[j] * (1 - label_smoothing) + label_smoothing / (n - 1) * (1 - t[j])
    return tx, ty, weight
