"""Stacked Hourglass (Newell et al. 2016), the SDP paper's HG-2/4/8.

Follows bearpaw/pytorch-pose `models/hourglass.py` (the PyTorch port FPD's code copies as
`lib/models/hourglass.py`, which SDP trains with): 7x7 s2 conv (64), residual 64->128, max-pool,
residual 128->256, residual 256->256 (1/4 input); then per stack: a depth-4 hourglass of
pre-activation residual modules (`num_blocks` per position), `num_blocks` residuals, 1x1
conv+BN+ReLU, 1x1 conv to the K heatmaps; between stacks the features and the heatmaps are
remapped by 1x1 convs and added back (intermediate supervision).

The stem is bearpaw's, not Newell's Lua original: bearpaw builds `layer2` with
`_make_residual(block, self.inplanes, 1)`, i.e. planes = 128 -> a 128->256 bottleneck (mid 128),
then `layer3` 256->256, where Newell's Torch code has Residual(128, 128) then Residual(128, 256).
That is +0.16 M parameters and +0.6 GFLOPs, and it is what the SDP / ELPN tables count.

Outputs: `heatmaps` = last stack's heatmaps; `aux_heatmaps` = the earlier stacks' heatmaps (for
intermediate supervision, shallow -> deep); `stages` = each stack's feature (B, C, H/4, W/4);
`multiscale` = the last hourglass's decoder outputs, high -> low ((B, C, H/4 / 2^i, W/4 / 2^i),
i = 0..depth-1); `feature` = the last stack's feature the head reads.

Sizes (measured, 16 joints, 256x256; bearpaw's own HG-4 / HG-8 give the same to the parameter):
HG-4 13.02 M, 14.30 GFLOPs in the HRNet convention (15.36 true GMACs) = SDP Table 3's 14.3;
HG-8 25.59 M / 26.17 G = ELPN Table 1's 25.6 M / 26.2 G (labelled 256x192 there, but at 256x192
the network reads 19.63 G, so the quote is the 256x256 figure).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import PreActBottleneck as Residual, normal_init
from .heads import MapHead


def residuals(cin: int, cout: int, n: int) -> nn.Sequential:
    return nn.Sequential(*[Residual(cin if i == 0 else cout, cout) for i in range(n)])


class Hourglass(nn.Module):
    """Recursive encoder-decoder: out = res(x) + up(res(hg(res(pool(x)))))."""

    def __init__(self, channels: int, depth: int = 4, num_blocks: int = 1):
        super().__init__()
        self.skip = residuals(channels, channels, num_blocks)
        self.down = residuals(channels, channels, num_blocks)
        self.inner = Hourglass(channels, depth - 1, num_blocks) if depth > 1 else residuals(channels, channels, num_blocks)
        self.up = residuals(channels, channels, num_blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Returns the decoder outputs of every level, high -> low resolution."""
        low = self.down(F.max_pool2d(x, 2))  # (B, C, h/2, w/2)
        inner = self.inner(low)
        levels = inner if isinstance(inner, list) else [inner]
        up = F.interpolate(self.up(levels[0]), size=x.shape[-2:], mode='nearest')  # x2 (any size)
        out = self.skip(x) + up  # (B, C, h, w)
        return [out] + (levels if isinstance(inner, list) else [])


class StackedHourglass(nn.Module):
    """`stacks` hourglasses of width `channels` (256 = 2 x num_feats 128 in pytorch-pose)."""

    def __init__(self, num_joints: int, input_size: tuple[int, int] = (256, 256), head: str = 'heatmap',
                 split_ratio: float = 2.0, stacks: int = 4, channels: int = 256, num_blocks: int = 1,
                 depth: int = 4):
        super().__init__()
        c0 = channels // 4
        self.stem = nn.Sequential(nn.Conv2d(3, c0, 7, 2, 3), nn.BatchNorm2d(c0), nn.ReLU(inplace=True),
                                  Residual(c0, channels // 2), nn.MaxPool2d(2),      # bearpaw layer1
                                  Residual(channels // 2, channels),                 # layer2: 128->256
                                  Residual(channels, channels))                      # layer3: 256->256
        self.hourglasses = nn.ModuleList(Hourglass(channels, depth, num_blocks) for _ in range(stacks))
        self.post = nn.ModuleList(nn.Sequential(
            residuals(channels, channels, num_blocks), nn.Conv2d(channels, channels, 1),
            nn.BatchNorm2d(channels), nn.ReLU(inplace=True)) for _ in range(stacks))
        self.scores = normal_init(nn.ModuleList(nn.Conv2d(channels, num_joints, 1) for _ in range(stacks - 1)))
        self.remap_feature = nn.ModuleList(nn.Conv2d(channels, channels, 1) for _ in range(stacks - 1))
        self.remap_score = nn.ModuleList(nn.Conv2d(num_joints, channels, 1) for _ in range(stacks - 1))
        map_size = (-(-input_size[0] // 4), -(-input_size[1] // 4))
        self.head = MapHead(channels, num_joints, map_size, input_size, head, split_ratio)  # last stack's score

    def forward(self, x: torch.Tensor) -> dict:
        x = self.stem(x)  # (B, C, H/4, W/4)
        stages, aux = [], []
        for i, (hourglass, post) in enumerate(zip(self.hourglasses, self.post)):
            levels = hourglass(x)
            y = post(levels[0])  # (B, C, H/4, W/4)
            stages.append(y)
            if i < len(self.scores):
                score = self.scores[i](y)  # (B, K, H/4, W/4)
                aux.append(score)
                x = x + self.remap_feature[i](y) + self.remap_score[i](score)
        out = {'feature': y, 'stages': stages, 'multiscale': levels, 'aux_heatmaps': aux}
        out.update(self.head(y))
        return out
