"""Drawing helpers shared by the notebooks (matplotlib): poses, heatmap overlays, SimCC labels.

    fig, axes = grid(2, 3)
    draw_pose(image, joints, SKELETONS['coco'], ax=axes[0])
    overlay_heatmaps(sample_image, sample['heatmap'], ax=axes[1])
    plot_simcc(sample['simcc_x'], sample['simcc_y'], joint=9, ax=axes[2])
"""
from __future__ import annotations

import cv2
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import AutoLocator

from kdlib.data.topdown import IMAGENET_MEAN, IMAGENET_STD

SIDE_COLOURS = {'left': '#1f77b4', 'right': '#ff7f0e', 'centre': '#2ca02c'}


def grid(nrows: int, ncols: int, size: float = 3.0):
    """(fig, flat list of axes) with image-friendly defaults (no ticks)."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows * 1.1), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, list(axes.flat)


def to_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, 'detach') else np.asarray(x)


def denormalize(image) -> np.ndarray:
    """(3, H, W) ImageNet-normalised float (numpy or torch) -> (H, W, 3) uint8 RGB."""
    rgb = to_numpy(image).transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN
    return np.clip(rgb * 255, 0, 255).astype(np.uint8)


def _side(name: str) -> str:
    return 'left' if name.startswith('left_') else 'right' if name.startswith('right_') else 'centre'


def draw_pose(image, joints, skeleton, ax=None, min_visibility: float = 0.0, title: str | None = None,
              linewidth: float = 2.0, marker_size: float = 16.0, alpha: float = 1.0):
    """Image with the skeleton's limbs and joints; joints (K, 2) or (K, 3) (x, y, visibility/score).

    Joints with third column <= min_visibility are not drawn (COCO flag 0 = unlabelled).
    `image` may be (H, W, 3) uint8 or a normalised (3, H, W) sample image.
    """
    ax = ax or plt.gca()
    if image is not None:
        img = to_numpy(image)
        img = denormalize(img) if img.ndim == 3 and img.shape[0] == 3 else img
        ax.imshow(img)
        ax.set_xlim(-0.5, img.shape[1] - 0.5)            # joints outside the crop stay outside
        ax.set_ylim(img.shape[0] - 0.5, -0.5)
    joints = to_numpy(joints)
    shown = joints[:, 2] > min_visibility if joints.shape[1] > 2 else np.ones(len(joints), bool)
    for a, b in skeleton.limbs:
        if shown[a] and shown[b]:
            side = _side(skeleton.joint_names[a]) if _side(skeleton.joint_names[a]) != 'centre' \
                else _side(skeleton.joint_names[b])
            ax.plot(joints[[a, b], 0], joints[[a, b], 1], color=SIDE_COLOURS[side],
                    linewidth=linewidth, alpha=alpha)
    colours = [SIDE_COLOURS[_side(n)] for n in skeleton.joint_names]
    ax.scatter(joints[shown, 0], joints[shown, 1], s=marker_size, alpha=alpha,
               c=[c for c, s in zip(colours, shown) if s], edgecolors='white', linewidths=0.5, zorder=3)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def draw_box(ax, bbox, colour: str = 'yellow', label: str | None = None):
    """An (x, y, w, h) rectangle, optionally labelled."""
    x, y, w, h = (float(v) for v in bbox)
    ax.add_patch(plt.Rectangle((x, y), w, h, fill=False, edgecolor=colour, linewidth=1.2))
    if label:
        ax.text(x, y - 2, label, color=colour, fontsize=7)


def overlay_heatmaps(image, heatmaps, ax=None, alpha: float = 0.55, joint: int | None = None,
                     cmap: str = 'jet', title: str | None = None):
    """Heatmaps (K, h, w) -- their max over joints, or one `joint` -- upsampled onto the image."""
    ax = ax or plt.gca()
    img = to_numpy(image)
    img = denormalize(img) if img.ndim == 3 and img.shape[0] == 3 else img
    hm = to_numpy(heatmaps)
    hm = hm[joint] if joint is not None else hm.max(axis=0)                 # (h, w)
    hm = cv2.resize(hm.astype(np.float32), (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
    ax.imshow(img)
    ax.imshow(hm, cmap=cmap, alpha=alpha, vmin=0, vmax=max(float(hm.max()), 1e-6))
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def plot_simcc(simcc_x, simcc_y, joint: int, split_ratio: float = 2.0, ax=None,
               title: str | None = None):
    """The two 1D SimCC labels (or predicted distributions) of one joint, against input pixels."""
    ax = ax or plt.gca()
    sx, sy = to_numpy(simcc_x)[joint], to_numpy(simcc_y)[joint]
    ax.plot(np.arange(len(sx)) / split_ratio, sx, label='x bins')
    ax.plot(np.arange(len(sy)) / split_ratio, sy, label='y bins')
    ax.set_xlabel('input pixel')
    ax.legend(fontsize=8)
    ax.xaxis.set_major_locator(AutoLocator())          # `grid` removed the ticks
    ax.yaxis.set_major_locator(AutoLocator())
    if title:
        ax.set_title(title, fontsize=9)
    return ax
