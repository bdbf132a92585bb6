"""HRNet (Sun et al. 2019), configurable for the ELPN ablations.

Follows the official `lib/models/pose_hrnet.py` (leoxiaobin/deep-high-resolution-net.pytorch):
stem of two 3x3 s2 convs (64 ch), stage 1 = 4 Bottlenecks (64 planes -> 256 ch), stages 2-4 with
2/3/4 parallel branches of channels (W, 2W, 4W, 8W), built from 1/4/3 exchange units (EUs, "modules")
of 4 BasicBlocks per branch followed by a fusion; the last EU of stage 4 fuses only into the
highest-resolution branch (multi_scale_output=False), whose 1x1 conv gives the heatmaps.

Knobs used by ELPN Tables 4-5 and by ELPN itself (elpn.py): `width` (Table 4: 8/16/32/64), `eus`
(Table 5: EUs of stages 2-4), `blocks` per branch per EU, `stem_channels` and `stage1_blocks` (the
CPU variants), `light` (Lightweight Basic Block), `gc` (Efficient Bottleneck), `gc_final` (GC block
after stage 4).

Outputs (CONTRACTS.md): `stages` = highest-resolution map of each stage, shallow -> deep (stage 1's
Bottleneck output (B, 4*stem, H/4, W/4), then branch 0 of stages 2, 3, 4 (B, W, H/4, W/4));
`multiscale` = the last EU's four parallel branch outputs before its final fusion, high -> low
resolution ((B, W*2^i, H/2^(i+2), W/2^(i+2))); `feature` = the fused stage-4 map the head reads.

Sizes (measured with `summary`, HRNet convention): W32 256x192 28.54M / 7.12G, W48 63.60M / 14.61G
(papers: 28.5 / 7.1, 63.6 / 14.6); with the SimCC head +2.75M (31.29M, 66.35M; TwoStage-GCN Table I:
31 / 66.3). ELPN Table 4 (256x256, widths 8/16/32/64): 2.14/7.45/28.54/112.6M, 1.84/3.41/9.49/33.39G,
all within 2% of the table. ELPN Table 5 (EUs) cannot be matched by any build: its rows imply
+1.7M per stage-3 EU and +7.0M per stage-4 EU ((1,2,1) -> (1,2,2)), which contradicts its own
(1,1,3) 23.4M and (1,4,3) 28.5M rows; this build gives (1,1,1) 9.30M, (1,2,1) 11.01M, (1,3,1)
12.71M, (1,2,2) 18.07M (tables: 10.1/11.8/13.5/18.8), (1,1,3) 23.42M and (1,4,3) 28.54M (exact);
its FLOPs agree within 2% on every row.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import BasicBlock, Bottleneck, GlobalContext, conv_bn, normal_init
from .heads import MapHead


class ExchangeUnit(nn.Module):
    """One HRNet module: `blocks` BasicBlocks per branch, then every branch fuses into every
    output branch (1x1 conv + nearest upsampling from lower resolutions, chains of 3x3 s2 convs
    from higher ones). `num_outputs=1` keeps only the highest-resolution output."""

    def __init__(self, channels: list[int], blocks: int, num_outputs: int, light: bool = False):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(*[BasicBlock(c, c, light=light) for _ in range(blocks)]) for c in channels)
        self.fuse = nn.ModuleList(
            nn.ModuleList(self._fuse_layer(channels, j, i) for j in range(len(channels)))
            for i in range(num_outputs))

    @staticmethod
    def _fuse_layer(channels: list[int], j: int, i: int) -> nn.Module:
        """Path from branch j to output i."""
        if j == i:
            return nn.Identity()
        if j > i:
            return conv_bn(channels[j], channels[i], 1, act=None)  # then nearest upsampling x2^(j-i)
        steps = [conv_bn(channels[j], channels[j], 3, 2) for _ in range(i - j - 1)]
        return nn.Sequential(*steps, conv_bn(channels[j], channels[i], 3, 2, act=None))

    def forward(self, xs: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Returns (fused outputs, per-branch outputs before the fusion)."""
        xs = [branch(x) for branch, x in zip(self.branches, xs)]  # (B, C_i, h_i, w_i)
        fused = [F.relu(fuse_sum(paths, xs, i)) for i, paths in enumerate(self.fuse)]
        return fused, xs


def fuse_sum(paths: nn.ModuleList, xs: list[torch.Tensor], i: int) -> torch.Tensor:
    """sum_j path_j(x_j), lower-resolution inputs upsampled (nearest) to the size of x_i; sizing
    by the target instead of a fixed 2^(j-i) keeps inputs that are not multiples of 32 working."""
    total = xs[i]
    for j, (path, x) in enumerate(zip(paths, xs)):
        if j > i:
            total = total + F.interpolate(path(x), size=xs[i].shape[-2:], mode='nearest')
        elif j < i:
            total = total + path(x)
    return total  # (B, C_i, h_i, w_i)


class Transition(nn.Module):
    """Between stages: 3x3 conv where channels change, new branch = 3x3 s2 conv of the last one."""

    def __init__(self, cin: list[int], cout: list[int]):
        super().__init__()
        layers = []
        for i, c in enumerate(cout):
            if i < len(cin):
                layers.append(conv_bn(cin[i], c, 3) if cin[i] != c else nn.Identity())
            else:
                layers.append(conv_bn(cin[-1], c, 3, 2))
        self.layers = nn.ModuleList(layers)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        return [layer(xs[min(i, len(xs) - 1)]) for i, layer in enumerate(self.layers)]


class HRNet(nn.Module):
    """HRNet backbone + `MapHead`. Defaults = HRNet-W32 (pose_hrnet_w32_256x192.yaml)."""

    def __init__(self, num_joints: int, input_size: tuple[int, int] = (256, 192), head: str = 'heatmap',
                 split_ratio: float = 2.0, width: int = 32, eus: tuple[int, int, int] = (1, 4, 3),
                 blocks: int = 4, stem_channels: int = 64, stage1_blocks: int = 4, light: bool = False,
                 gc: bool = False, gc_final: bool = False, gc_ratio: float = 1 / 16):
        super().__init__()
        if len(eus) != 3 or min(eus) < 1:
            raise ValueError(f"eus = exchange units of stages 2-4, three integers >= 1; got {eus!r}")
        c = stem_channels
        self.stem = nn.Sequential(conv_bn(3, c, 3, 2), conv_bn(c, c, 3, 2))
        self.stage1 = nn.Sequential(
            *[Bottleneck(c if i == 0 else 4 * c, c, gc=gc, gc_ratio=gc_ratio) for i in range(stage1_blocks)])
        prev, self.transitions, self.stages = [4 * c], nn.ModuleList(), nn.ModuleList()
        for s, num_eus in enumerate(eus):
            channels = [width * 2 ** i for i in range(s + 2)]
            self.transitions.append(Transition(prev, channels))
            last = s == len(eus) - 1
            self.stages.append(nn.ModuleList(
                ExchangeUnit(channels, blocks, 1 if last and u == num_eus - 1 else len(channels), light)
                for u in range(num_eus)))
            prev = channels
        self.gc_final = GlobalContext(width, gc_ratio) if gc_final else nn.Identity()
        map_size = (-(-input_size[0] // 4), -(-input_size[1] // 4))
        self.head = MapHead(width, num_joints, map_size, input_size, head, split_ratio)
        normal_init(self)  # HRNet's init_weights: every conv N(0, 0.001^2), BN 1 / 0

    def forward_features(self, x: torch.Tensor) -> dict:
        x = self.stage1(self.stem(x))  # (B, 4*stem, H/4, W/4)
        stages, pyramid, xs = [x], [x], [x]
        for transition, units in zip(self.transitions, self.stages):
            xs = transition(xs)
            for unit in units:
                xs, parallel = unit(xs)
            stages.append(xs[0])  # (B, W, H/4, W/4)
            pyramid.append(parallel[-1])  # (B, W 2^s, H/2^(s+2), W/2^(s+2)): the new lowest branch
        feature = self.gc_final(xs[0])  # (B, W, H/4, W/4)
        return {'feature': feature, 'stages': stages, 'stage_pyramid': pyramid, 'multiscale': parallel}

    def forward(self, x: torch.Tensor) -> dict:
        out = self.forward_features(x)
        out.update(self.head(out['feature']))
        return out
