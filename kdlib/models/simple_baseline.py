"""SimpleBaseline (Xiao et al. 2018): ResNet trunk + 3 deconvolution layers + 1x1 conv.

The trunk is torchvision's `resnet50` (so ImageNet weights load by their torchvision names, see
pretrained.py); the head follows the official `pose_resnet.py`: 3 x [ConvTranspose2d 4x4 s2 (256),
BN, ReLU], then a 1x1 conv to the heatmaps at 1/4 resolution. With `head='simcc'` SimCC's design is
used on top (flatten the heatmap-like map, linear to the x/y bins: SimCC with deconv).

Outputs: `stages` = ResNet layer1..layer4 ((B, 4c, H/4, W/4) ... (B, 32c, H/32, W/32), c = 64 at
width 1.0); `multiscale` = the same pyramid, high -> low; `feature` = layer4 output (what the
deconv head reads).
"""
from __future__ import annotations

import torch
from torch import nn
from torchvision.models import resnet
from torchvision.models.resnet import Bottleneck as TVBottleneck

from .heads import MapHead


class SimpleBaseline(nn.Module):
    """`depth` in (18, 34, 50, 101, 152) uses torchvision's resnetN; `width` scales the trunk
    (torchvision's `width_per_group` does not change the block outputs, so the CPU variants build
    a ResNet with `layers` blocks and base width `base` through torchvision's ResNet class)."""

    def __init__(self, num_joints: int, input_size: tuple[int, int] = (256, 192), head: str = 'heatmap',
                 split_ratio: float = 2.0, depth: int = 50, layers: tuple[int, ...] | None = None,
                 base: int = 64, deconv_channels: tuple[int, ...] = (256, 256, 256)):
        super().__init__()
        if layers is None:
            trunk = getattr(resnet, f'resnet{depth}')(weights=None)
        else:  # small analogue with the same Bottleneck structure
            trunk = resnet.ResNet(TVBottleneck, list(layers))
            _rescale(trunk, base)
        self.trunk = trunk
        del self.trunk.fc, self.trunk.avgpool
        out_channels = self.trunk.layer4[-1].conv3.out_channels if depth >= 50 or layers else 512
        map_size = (-(-input_size[0] // 4), -(-input_size[1] // 4))
        self.head = MapHead(out_channels, num_joints, map_size, input_size, head, split_ratio,
                            deconv_channels)

    def forward_features(self, x: torch.Tensor) -> dict:
        t = self.trunk
        x = t.maxpool(t.relu(t.bn1(t.conv1(x))))  # (B, 64, H/4, W/4)
        stages = []
        for layer in (t.layer1, t.layer2, t.layer3, t.layer4):
            x = layer(x)
            stages.append(x)  # (B, C_l, H/2^(l+1), W/2^(l+1))
        return {'feature': x, 'stages': stages, 'multiscale': list(stages)}

    def forward(self, x: torch.Tensor) -> dict:
        out = self.forward_features(x)
        out.update(self.head(out['feature']))
        return out


def _rescale(trunk: resnet.ResNet, base: int) -> None:
    """Rebuild a torchvision ResNet's stem and layers with base width `base` instead of 64."""
    trunk.inplanes = base
    trunk.conv1 = nn.Conv2d(3, base, 7, 2, 3, bias=False)
    trunk.bn1 = nn.BatchNorm2d(base)
    blocks = [len(getattr(trunk, f'layer{i}')) for i in range(1, 5)]
    trunk.layer1 = trunk._make_layer(TVBottleneck, base, blocks[0])
    for i, n in enumerate(blocks[1:], start=2):
        setattr(trunk, f'layer{i}', trunk._make_layer(TVBottleneck, base * 2 ** (i - 1), n, stride=2))
