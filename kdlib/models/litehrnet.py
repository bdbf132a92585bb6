"""Lite-HRNet (Yu et al. 2021), the EKR paper's students.

Follows the official `models/backbones/litehrnet.py` (HRNet-Group/Lite-HRNet) and its configs
`litehrnet_18/30_coco_256x192.py`: ShuffleNet stem (32 ch, 1/4 resolution), stages 2-4 with
2/3/4 branches of (40, 80, 160, 320) channels, (2, 4, 2) modules for Lite-HRNet-18 and (3, 8, 3)
for -30, 2 conditional-channel-weighting blocks per module, reduce ratio 8, HRNet-style fusion
with depthwise-separable down-sampling, every module multi-scale; then the IterativeHead
(low -> high resolution: add the upsampled coarser map, 3x3 depthwise-separable conv) and a 1x1
conv to the heatmaps (or, with the EKR paper's SimDR head, the SimCC linear layers on top).

Outputs: `stages` = [stem (B, 32, H/4, W/4), branch 0 of stages 2, 3, 4 (B, 40, H/4, W/4)];
`multiscale` = the four stage-4 outputs, high -> low; `feature` = IterativeHead output (B, 40, H/4, W/4).

Sizes (measured, 256x192): Lite-HRNet-18 1.13M / 0.185 GFLOPs (HRNet convention; 0.199 true GMACs),
-30 1.76M / 0.288 (EKR Tables 2-3: 1.1M / 1.8M). EKR lists its SimDR models (LiteHRNet*) at the
heatmap models' sizes, but SimDR's flatten + linear head adds 2.75M at 256x192 and 4.2M at
256x256 (Lite-HRNet-18 SimDR, 256x256: 5.33M); the kit reports what it measures.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ConditionalChannelWeighting, ShuffleStem, conv_bn, normal_init, separable_conv
from .heads import MapHead
from .hrnet import fuse_sum

CONFIGS = {  # official configs: modules per stage
    'litehrnet_18': (2, 4, 2),
    'litehrnet_30': (3, 8, 3),
}


class LiteFuse(nn.Module):
    """Output i = ReLU(sum_j path_ij(x_j)); upsampling path 1x1 conv + BN + nearest, down-sampling
    path chains of (3x3 depthwise s2 + BN, 1x1 conv + BN (+ReLU except the last)).

    `reference=True` computes what the official code computes (HRNet-Group/Lite-HRNet and mmpose
    `LiteHRModule.forward`: `y = out[0] if i == 0 else fuse[i][0](out[0])`, then `y += ...` for
    every j including 0, in place): branch 0 is added twice, and since `y` aliases `out[0]`, the
    outputs i > 0 read the fused, pre-ReLU branch 0 (twice). Released checkpoints need it;
    `reference=False` is the plain sum of the paper's description."""

    def __init__(self, channels: list[int], reference: bool = True):
        super().__init__()
        n = len(channels)
        self.reference = reference
        self.paths = nn.ModuleList(nn.ModuleList(self._path(channels, j, i) for j in range(n)) for i in range(n))

    @staticmethod
    def _path(channels: list[int], j: int, i: int) -> nn.Module:
        if j == i:
            return nn.Identity()
        if j > i:
            return conv_bn(channels[j], channels[i], 1, act=None)  # then nearest upsampling
        steps = [separable_conv(channels[j], channels[j], 3, 2) for _ in range(i - j - 1)]
        return nn.Sequential(*steps, separable_conv(channels[j], channels[i], 3, 2, pw_act=None))

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        if not self.reference:
            return [F.relu(fuse_sum(paths, xs, i)) for i, paths in enumerate(self.paths)]
        fused0 = fuse_sum(self.paths[0], xs, 0) + xs[0]  # (B, C_0, H/4, W/4): branch 0 twice
        outs = [F.relu(fused0)]
        for i, paths in enumerate(self.paths[1:], start=1):
            inputs = [fused0] + list(xs[1:])
            outs.append(F.relu(fuse_sum(paths, inputs, i) + paths[0](fused0)))  # fused branch 0 twice
        return outs


class LiteModule(nn.Module):
    """`blocks` conditional channel weighting blocks over all branches, then the fusion."""

    def __init__(self, channels: list[int], blocks: int = 2, reduce_ratio: int = 8, reference_fuse: bool = True):
        super().__init__()
        self.blocks = nn.ModuleList(ConditionalChannelWeighting(channels, reduce_ratio) for _ in range(blocks))
        self.fuse = LiteFuse(channels, reference_fuse)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        for block in self.blocks:
            xs = block(xs)
        return self.fuse(xs)


class LiteTransition(nn.Module):
    """Channel change: dw 3x3 + 1x1; new branch: dw 3x3 s2 + 1x1 from the last branch."""

    def __init__(self, cin: list[int], cout: list[int]):
        super().__init__()
        self.layers = nn.ModuleList(
            (separable_conv(cin[i], c) if cin[i] != c else nn.Identity()) if i < len(cin)
            else separable_conv(cin[-1], c, 3, 2) for i, c in enumerate(cout))

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        return [layer(xs[min(i, len(xs) - 1)]) for i, layer in enumerate(self.layers)]


class IterativeHead(nn.Module):
    """Lite-HRNet's IterativeHead: from the coarsest branch up, add the bilinearly upsampled
    previous result and project with a 3x3 depthwise-separable conv to the next finer width."""

    def __init__(self, channels: list[int]):
        super().__init__()
        rev = channels[::-1]
        self.projects = nn.ModuleList(
            separable_conv(c, rev[i + 1] if i + 1 < len(rev) else c, 3) for i, c in enumerate(rev))

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        last = None
        for x, project in zip(xs[::-1], self.projects):
            if last is not None:
                x = x + F.interpolate(last, size=x.shape[-2:], mode='bilinear', align_corners=True)
            last = project(x)  # (B, C_{i-1}, h_i, w_i)
        return last  # (B, C_0, H/4, W/4)


class LiteHRNet(nn.Module):
    """Lite-HRNet backbone + IterativeHead + `MapHead`. `width` = channels of branch 0 (40)."""

    def __init__(self, num_joints: int, input_size: tuple[int, int] = (256, 192), head: str = 'heatmap',
                 split_ratio: float = 2.0, modules: tuple[int, int, int] = (2, 4, 2), width: int = 40,
                 stem_channels: int = 32, blocks: int = 2, reduce_ratio: int = 8, reference_fuse: bool = True):
        super().__init__()
        self.reference_fuse = reference_fuse  # LiteFuse: the official in-place fusion (released checkpoints)
        self.stem = ShuffleStem(3, stem_channels)
        prev = [stem_channels]
        self.transitions, self.stages = nn.ModuleList(), nn.ModuleList()
        for s, n in enumerate(modules):
            channels = [width * 2 ** i for i in range(s + 2)]
            self.transitions.append(LiteTransition(prev, channels))
            self.stages.append(nn.Sequential(*[LiteModule(channels, blocks, reduce_ratio, reference_fuse)
                                               for _ in range(n)]))
            prev = channels
        self.iterative = IterativeHead(prev)
        map_size = (-(-input_size[0] // 4), -(-input_size[1] // 4))
        self.head = MapHead(width, num_joints, map_size, input_size, head, split_ratio)
        normal_init(self)  # Lite-HRNet's init_weights: every conv N(0, 0.001^2), BN 1 / 0

    def forward_features(self, x: torch.Tensor) -> dict:
        x = self.stem(x)  # (B, stem, H/4, W/4)
        stages, pyramid, xs = [x], [x], [x]
        for transition, stage in zip(self.transitions, self.stages):
            xs = stage(transition(xs))
            stages.append(xs[0])  # (B, width, H/4, W/4)
            pyramid.append(xs[-1])  # (B, width 2^s, H/2^(s+2), W/2^(s+2)): the new lowest branch
        return {'feature': self.iterative(xs), 'stages': stages, 'stage_pyramid': pyramid, 'multiscale': xs}

    def forward(self, x: torch.Tensor) -> dict:
        out = self.forward_features(x)
        out.update(self.head(out['feature']))
        return out
