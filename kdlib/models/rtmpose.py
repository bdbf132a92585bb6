"""RTMPose-t/s/m (Jiang et al. 2023), the unified-skeleton paper's students and teachers.

CSPNeXt backbone (mmdet `backbones/cspnext.py`, arch P5) with the official RTMPose configs'
deepen/widen factors (rtmpose-{t,s,m}_8xb256-420e_coco-256x192.py): t (0.167, 0.375),
s (0.33, 0.5), m (0.67, 0.75); stem of three 3x3 convs (s2, ch/2, ch/2, ch), four stages of
[3x3 s2 conv, (SPP in the last), CSP layer] with channels 64/128/256/512/1024 x widen and
3/6/6/3 x deepen blocks (identity in the first three); SiLU + BN everywhere. Head: `RTMCCHead`
on the 1/32 map (SimCC only: RTMPose has no heatmap head).

Outputs: `stages` = the four stage outputs (1/4, 1/8, 1/16, 1/32); `multiscale` = the same,
high -> low; `feature` = the 1/32 map the RTMCC head reads.
"""
from __future__ import annotations

import torch
from torch import nn

from .blocks import CSPLayer, SPPBottleneck, conv_bn
from .heads import RTMCCHead

ARCH_P5 = ((64, 128, 3, True, False), (128, 256, 6, True, False),
           (256, 512, 6, True, False), (512, 1024, 3, False, True))  # cin, cout, blocks, identity, spp
FACTORS = {'rtmpose_t': (0.167, 0.375), 'rtmpose_s': (0.33, 0.5), 'rtmpose_m': (0.67, 0.75)}  # deepen, widen


class CSPNeXt(nn.Module):
    def __init__(self, deepen: float, widen: float):
        super().__init__()
        c0 = int(ARCH_P5[0][0] * widen)
        self.stem = nn.Sequential(conv_bn(3, c0 // 2, 3, 2, act=nn.SiLU), conv_bn(c0 // 2, c0 // 2, 3, act=nn.SiLU),
                                  conv_bn(c0 // 2, c0, 3, act=nn.SiLU))
        self.stages = nn.ModuleList()
        for cin, cout, blocks, identity, spp in ARCH_P5:
            cin, cout = int(cin * widen), int(cout * widen)
            layers = [conv_bn(cin, cout, 3, 2, act=nn.SiLU)]
            if spp:
                layers.append(SPPBottleneck(cout, cout))
            layers.append(CSPLayer(cout, cout, max(round(blocks * deepen), 1), identity))
            self.stages.append(nn.Sequential(*layers))
        self.out_channels = int(ARCH_P5[-1][1] * widen)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)  # (B, c0, H/2, W/2)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)  # (B, C_l, H/2^(l+2), W/2^(l+2))
        return outs


class RTMPose(nn.Module):
    def __init__(self, num_joints: int, input_size: tuple[int, int] = (256, 192), head: str = 'simcc',
                 split_ratio: float = 2.0, deepen: float = 0.33, widen: float = 0.5, **head_kw):
        super().__init__()
        if head != 'simcc':
            raise ValueError(f"RTMPose has only the SimCC (RTMCC) head; got head={head!r}, use head='simcc'")
        self.backbone = CSPNeXt(deepen, widen)
        feat_size = (-(-input_size[0] // 32), -(-input_size[1] // 32))  # 5 x (3x3 s2 p1): ceil
        self.head = RTMCCHead(self.backbone.out_channels, num_joints, input_size, feat_size, split_ratio, **head_kw)

    def forward(self, x: torch.Tensor) -> dict:
        stages = self.backbone(x)
        out = {'feature': stages[-1], 'stages': stages, 'multiscale': list(stages)}
        out.update(self.head(stages[-1]))
        return out
