"""Tiny fake dataset, model and predictor for trainer / bench tests (no other kdlib part needed).

The dataset follows the TopDownDataset sample contract (image, heatmap, simcc targets,
target_weight, center, scale, index) and has ``skeleton.flip_index`` and ``evaluate``; every
``__getitem__`` draws augmentation noise from torch's and numpy's global RNGs so that resume tests
exercise the RNG-state restore.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
from torch import nn


class FakePoseDataset(torch.utils.data.Dataset):
    def __init__(self, num_samples=16, num_joints=3, input_size=(32, 24), noise=0.05, seed=0):
        self.num_joints, self.input_size, self.noise = num_joints, input_size, noise
        self.skeleton = SimpleNamespace(flip_index=np.arange(num_joints), num_joints=num_joints)
        rng = np.random.default_rng(seed)
        height, width = input_size
        self.joints = rng.uniform([2, 2], [width - 3, height - 3], size=(num_samples, num_joints, 2))

    def __len__(self):
        return len(self.joints)

    def __getitem__(self, index):
        height, width = self.input_size
        joints = torch.tensor(self.joints[index], dtype=torch.float32)  # (K, 2)
        ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
        blobs = torch.exp(-((xs - joints[:, None, None, 0]) ** 2 + (ys - joints[:, None, None, 1]) ** 2) / 4)
        image = blobs.sum(0, keepdim=True).repeat(3, 1, 1)  # (3, H, W)
        image = image + self.noise * torch.randn_like(image) + self.noise * float(np.random.rand())
        hm_joints = joints / 4
        hy, hx = torch.meshgrid(torch.arange(height // 4), torch.arange(width // 4), indexing="ij")
        heatmap = torch.exp(-((hx - hm_joints[:, None, None, 0]) ** 2 + (hy - hm_joints[:, None, None, 1]) ** 2) / 2)
        return {"image": image, "heatmap": heatmap, "target_weight": torch.ones(self.num_joints),
                "center": torch.tensor([width / 2, height / 2]), "scale": torch.tensor([float(width), float(height)]),
                "index": torch.tensor(index)}

    def evaluate(self, coords, scores, indices):
        """'AP': minus the mean joint error in pixels (higher is better), and the error itself."""
        error = np.linalg.norm(coords - self.joints[indices], axis=-1).mean()
        return {"AP": -float(error), "error": float(error)}


class FakePoseNet(nn.Module):
    """conv-BN-ReLU x2 (stride 4) -> 1x1 conv heatmap head; returns the model output dict."""

    def __init__(self, num_joints=3, width=8):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, width, 3, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, 2, 1), nn.BatchNorm2d(width), nn.ReLU())
        self.head = nn.Conv2d(width, num_joints, 1)

    def forward(self, x):
        feature = self.backbone(x)  # (B, C, H/4, W/4)
        return {"heatmaps": self.head(feature), "feature": feature, "stages": [feature]}


def fake_predict(model, images, flip_index, flip_test=True):
    """Arg-max of the heatmaps, in input pixels (B, K, 2), and the max value as score (B, K)."""
    heatmaps = model(images)["heatmaps"].float()  # (B, K, h, w)
    batch, joints, height, width = heatmaps.shape
    score, flat = heatmaps.reshape(batch, joints, -1).max(-1)
    xy = torch.stack([flat % width, flat // width], -1).float() * 4 + 1.5
    return xy, score


def fake_dataset_builder(cfg, profile, split, pipeline):
    """``kdlib.experiment.DATASET_BUILDERS`` hook: a FakePoseDataset at the pipeline's input size."""
    return FakePoseDataset(12 if split == "train" else 6, input_size=tuple(pipeline.input_size),
                           seed=0 if split == "train" else 1)


def fake_student_builder(cfg, profile, num_joints, input_size, init_checkpoint):
    """``kdlib.experiment.STUDENT_BUILDERS`` hook; logs each build to $FAKE_BUILD_LOG."""
    import os
    from kdlib.train.checkpoint import load_model_weights
    if os.environ.get("FAKE_BUILD_LOG"):
        with open(os.environ["FAKE_BUILD_LOG"], "a") as log:
            log.write(f"{cfg.seed}\n")
    model = FakePoseNet(num_joints)
    if init_checkpoint:
        load_model_weights(model, init_checkpoint)
    return model


def register_fakes() -> None:
    """Plug the fakes into kdlib.experiment's hooks (what a paper helper does with one line)."""
    from kdlib import experiment
    experiment.DATASET_BUILDERS["fake"] = fake_dataset_builder
    experiment.STUDENT_BUILDERS["fake"] = fake_student_builder
