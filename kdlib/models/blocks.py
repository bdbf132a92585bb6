"""Building blocks shared by every network of the zoo.

Architectures (hrnet.py, litehrnet.py, elpn.py, simple_baseline.py, hourglass.py, rtmpose.py) are
assembled from these blocks only. Each block cites the implementation it follows:

- ResNet BasicBlock / Bottleneck: He et al. 2016, as in HRNet's `lib/models/pose_hrnet.py`.
- Pre-activation bottleneck of the stacked hourglass: Newell et al. 2016 (bearpaw/pytorch-pose).
- Global Context block: Cao et al. 2019 (GCNet, `ContextBlock`, pooling 'att', fusion 'add').
- Depthwise-separable conv / Lightweight Basic Block: ELPN Fig. 4(d).
- Conditional channel weighting, cross-resolution & spatial weighting, shuffle stem: Lite-HRNet
  (HRNet-Group/Lite-HRNet `models/backbones/litehrnet.py`).
- CSPNeXt block, CSP layer with channel attention, SPP bottleneck: RTMDet/RTMPose
  (mmdet `CSPNeXtBlock`, `CSPLayer`, `SPPBottleneck`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1,
            act: type[nn.Module] | None = nn.ReLU) -> nn.Sequential:
    """Conv (no bias) + BatchNorm (+ activation): mmcv's `ConvModule` with BN."""
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


def normal_init(module: nn.Module, std: float = 0.001) -> nn.Module:
    """The pose codebases' initialisation, in place: every Conv2d / ConvTranspose2d weight drawn
    from N(0, std^2) with zero bias, every BatchNorm weight 1 and bias 0. HRNet's
    `PoseHighResolutionNet.init_weights`, SimpleBaselines' deconv and final layers, and Lite-HRNet's
    and mmpose's `HeatmapHead` defaults all use std = 0.001.

    It matters when training from scratch: PyTorch's default init makes a 1x1 heatmap layer on a
    narrow feature start far from the near-zero targets, and the small networks then spend hundreds
    of steps only shrinking their output (measured in the README's "Measured on SynthPose"). A
    GlobalContext block keeps its own zero-initialised last layer (GCNet's `last_zero_init`).
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    for m in module.modules():
        if isinstance(m, GlobalContext):
            m.zero_last()
    return module


def separable_conv(cin: int, cout: int, k: int = 3, stride: int = 1,
                   dw_act: type[nn.Module] | None = None,
                   pw_act: type[nn.Module] | None = nn.ReLU) -> nn.Sequential:
    """Depthwise k x k conv + BN (+act) then pointwise 1x1 conv + BN (+act) (MobileNet)."""
    return nn.Sequential(conv_bn(cin, cin, k, stride, groups=cin, act=dw_act),
                         conv_bn(cin, cout, 1, act=pw_act))


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet channel shuffle."""
    b, c, h, w = x.shape
    x = x.view(b, groups, c // groups, h, w).transpose(1, 2)  # (B, C/g, g, H, W)
    return x.reshape(b, c, h, w)


class GlobalContext(nn.Module):
    """Global Context block (GCNet, ELPN Fig. 4(c)): softmax attention pooling -> bottleneck
    transform (1x1, LayerNorm, ReLU, 1x1) -> broadcast add. `ratio` = bottleneck ratio: GCNet's
    default r = 16 for ResNet bottlenecks (1/16); it also reproduces ELPN Table 1's 1.1M / 4.7M."""

    def __init__(self, channels: int, ratio: float = 1 / 16):
        super().__init__()
        hidden = max(1, int(channels * ratio))
        self.attn = nn.Conv2d(channels, 1, 1)
        self.transform = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.LayerNorm([hidden, 1, 1]),
                                       nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1))
        self.zero_last()

    def zero_last(self) -> None:
        """GCNet's `last_zero_init`: the block starts as the identity."""
        nn.init.zeros_(self.transform[-1].weight)
        nn.init.zeros_(self.transform[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        weights = self.attn(x).view(b, 1, h * w).softmax(-1)  # (B, 1, HW)
        context = torch.bmm(x.view(b, c, h * w), weights.transpose(1, 2))  # (B, C, 1)
        return x + self.transform(context.view(b, c, 1, 1))  # (B, C, H, W)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs. `light=True` = ELPN's Lightweight Basic Block
    (Fig. 4(d)): each 3x3 conv replaced by a depthwise-separable conv."""
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1, light: bool = False):
        super().__init__()
        if light:
            self.conv1 = separable_conv(cin, planes, 3, stride, pw_act=nn.ReLU)
            self.conv2 = separable_conv(planes, planes, 3, 1, pw_act=None)
        else:
            self.conv1 = conv_bn(cin, planes, 3, stride)
            self.conv2 = conv_bn(planes, planes, 3, 1, act=None)
        self.downsample = (conv_bn(cin, planes, 1, stride, act=None)
                           if stride != 1 or cin != planes else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(self.conv1(x)) + self.downsample(x))


class Bottleneck(nn.Module):
    """ResNet bottleneck 1x1-3x3-1x1 (expansion 4). `gc=True` = ELPN's Efficient Bottleneck
    (Fig. 4(b)): a Global Context block after the last conv, before the residual sum (GCNet)."""
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, gc: bool = False, gc_ratio: float = 1 / 16):
        super().__init__()
        cout = planes * self.expansion
        self.body = nn.Sequential(conv_bn(cin, planes, 1), conv_bn(planes, planes, 3, stride),
                                  conv_bn(planes, cout, 1, act=None))
        self.gc = GlobalContext(cout, gc_ratio) if gc else nn.Identity()
        self.downsample = (conv_bn(cin, cout, 1, stride, act=None)
                           if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.gc(self.body(x)) + self.downsample(x))


class PreActBottleneck(nn.Module):
    """Hourglass residual module (Newell et al.): pre-activation BN-ReLU-conv, 1x1 (C/2) - 3x3 - 1x1."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        mid = cout // 2
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, mid, 1),
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, mid, 3, padding=1),
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, cout, 1))
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


# ----------------------------------------------------------------------------- Lite-HRNet blocks
class ShuffleStem(nn.Module):
    """Lite-HRNet stem: 3x3 s2 conv, then a ShuffleNetV2 down-sampling block (s2) -> 1/4 input."""

    def __init__(self, cin: int = 3, channels: int = 32):
        super().__init__()
        half = channels // 2
        self.conv1 = conv_bn(cin, channels, 3, 2)
        self.branch1 = separable_conv(half, half, 3, 2)                     # dw s2, pw + ReLU
        self.branch2 = nn.Sequential(conv_bn(half, channels, 1),            # expand ratio 1
                                     separable_conv(channels, half, 3, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.conv1(x).chunk(2, dim=1)  # (B, C/2, H/2, W/2) each
        return channel_shuffle(torch.cat([self.branch1(x1), self.branch2(x2)], 1), 2)  # (B, C, H/4, W/4)


class CrossResolutionWeighting(nn.Module):
    """Lite-HRNet H function: pool all branches to the smallest size, 1x1-ReLU-1x1-sigmoid over the
    concatenation, rescale each branch by its (nearest-upsampled) weights."""

    def __init__(self, channels: list[int], ratio: int = 8):
        super().__init__()
        self.channels = channels
        total = sum(channels)
        self.fc = nn.Sequential(conv_bn(total, total // ratio, 1),
                                conv_bn(total // ratio, total, 1, act=nn.Sigmoid))

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        size = xs[-1].shape[-2:]
        pooled = [F.adaptive_avg_pool2d(x, size) for x in xs[:-1]] + [xs[-1]]
        weights = self.fc(torch.cat(pooled, 1)).split(self.channels, 1)  # (B, C_i, h, w) each
        return [x * F.interpolate(w, size=x.shape[-2:], mode='nearest') for x, w in zip(xs, weights)]


class SpatialWeighting(nn.Module):
    """Lite-HRNet F function (squeeze-excitation within one branch), ratio 4 as in the official code."""

    def __init__(self, channels: int, ratio: int = 4):
        super().__init__()
        self.fc = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, channels // ratio, 1),
                                nn.ReLU(inplace=True), nn.Conv2d(channels // ratio, channels, 1),
                                nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x)


class ConditionalChannelWeighting(nn.Module):
    """Lite-HRNet block: split channels, weight one half (cross-resolution weighting, 3x3 depthwise
    conv, spatial weighting), concatenate with the other half, channel shuffle."""

    def __init__(self, channels: list[int], reduce_ratio: int = 8):
        super().__init__()
        half = [c // 2 for c in channels]
        self.cross = CrossResolutionWeighting(half, reduce_ratio)
        self.dw = nn.ModuleList(conv_bn(c, c, 3, groups=c, act=None) for c in half)
        self.spatial = nn.ModuleList(SpatialWeighting(c) for c in half)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        parts = [x.chunk(2, dim=1) for x in xs]
        weighted = self.cross([p[1] for p in parts])
        weighted = [sw(dw(x)) for x, dw, sw in zip(weighted, self.dw, self.spatial)]
        return [channel_shuffle(torch.cat([p[0], w], 1), 2) for p, w in zip(parts, weighted)]


# ----------------------------------------------------------------------------- CSPNeXt blocks
class ChannelAttention(nn.Module):
    """RTMDet channel attention: global pool, 1x1 conv (bias), hard-sigmoid gate."""

    def __init__(self, channels: int):
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * F.hardsigmoid(self.fc(x.mean((2, 3), keepdim=True)))


class CSPNeXtBlock(nn.Module):
    """3x3 conv + 5x5 depthwise-separable conv, SiLU, optional identity (mmdet CSPNeXtBlock)."""

    def __init__(self, channels: int, add_identity: bool = True):
        super().__init__()
        self.conv1 = conv_bn(channels, channels, 3, act=nn.SiLU)
        self.conv2 = separable_conv(channels, channels, 5, dw_act=nn.SiLU, pw_act=nn.SiLU)
        self.add_identity = add_identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class CSPLayer(nn.Module):
    """Cross-stage partial layer: two 1x1 branches (one through n CSPNeXt blocks), concatenation,
    channel attention, 1x1 fusion (expand ratio 0.5)."""

    def __init__(self, cin: int, cout: int, num_blocks: int, add_identity: bool = True):
        super().__init__()
        mid = cout // 2
        self.main = conv_bn(cin, mid, 1, act=nn.SiLU)
        self.short = conv_bn(cin, mid, 1, act=nn.SiLU)
        self.blocks = nn.Sequential(*[CSPNeXtBlock(mid, add_identity) for _ in range(num_blocks)])
        self.attention = ChannelAttention(2 * mid)
        self.final = conv_bn(2 * mid, cout, 1, act=nn.SiLU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([self.blocks(self.main(x)), self.short(x)], 1)  # (B, 2*mid, H, W)
        return self.final(self.attention(y))


class SPPBottleneck(nn.Module):
    """Spatial pyramid pooling (max pools 5/9/13) between two 1x1 convs (YOLOv3-SPP / mmdet)."""

    def __init__(self, cin: int, cout: int, kernels: tuple[int, ...] = (5, 9, 13)):
        super().__init__()
        mid = cin // 2
        self.conv1 = conv_bn(cin, mid, 1, act=nn.SiLU)
        self.pools = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2) for k in kernels)
        self.conv2 = conv_bn(mid * (len(kernels) + 1), cout, 1, act=nn.SiLU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [p(x) for p in self.pools], 1))
