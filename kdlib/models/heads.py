"""Keypoint heads: heatmap (optionally with SimpleBaseline deconvs), SimCC, RTMCC.

- `MapHead`: optional deconv layers (Xiao et al. 2018, 3 x [ConvTranspose 4x4 s2, BN, ReLU]) then a
  1x1 conv to one heatmap-like map per joint. With `head='heatmap'` that map is the heatmap; with
  `head='simcc'` it is flattened and two linear layers classify the x and y bins — SimCC's official
  design (leeyegy/SimCC `pose_hrnet.py`: `final_layer` then `rearrange(x, 'b c h w -> b c (h w)')`
  then `mlp_head_x/mlp_head_y = nn.Linear(H/4*W/4, W*k / H*k)`). `head='both'` returns both from the
  same map.
- `RTMCCHead`: RTMPose's head (mmpose `rtmcc_head.py`, `rtmcc_block.py`): 7x7 conv to K maps,
  flatten, ScaleNorm, linear to 256 tokens dims, one gated attention unit (GAU, Hua et al. 2022)
  over the K joint tokens, linear x/y classifiers.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import normal_init

HEADS = ('heatmap', 'simcc', 'both')


def check_head(head: str) -> None:
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")


class MapHead(nn.Module):
    """(deconvs) + 1x1 conv -> K maps at `map_size`; heatmap and/or SimCC (flatten + linear) outputs.

    Args: in_channels of the feature; num_joints K; map_size (h, w) of the K maps (after deconvs);
    input_size (H, W) of the image; head; (a map of another size, which only the deconvs of a
    1/32 feature produce for inputs not divisible by 32, is resized to `map_size` bilinearly); split_ratio k (SimCC, default 2.0 = SimCC paper);
    deconv_channels: channels of each deconv layer (SimpleBaseline: (256, 256, 256)).
    """

    def __init__(self, in_channels: int, num_joints: int, map_size: tuple[int, int],
                 input_size: tuple[int, int], head: str = 'heatmap', split_ratio: float = 2.0,
                 deconv_channels: tuple[int, ...] = ()):
        super().__init__()
        check_head(head)
        self.head = head
        self.map_size = tuple(map_size)
        layers, cin = [], in_channels
        for c in deconv_channels:
            layers += [nn.ConvTranspose2d(cin, c, 4, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            cin = c
        self.deconv = nn.Sequential(*layers)
        self.final = nn.Conv2d(cin, num_joints, 1)
        if head != 'heatmap':
            h, w = map_size
            self.simcc_x = nn.Linear(h * w, int(input_size[1] * split_ratio))
            self.simcc_y = nn.Linear(h * w, int(input_size[0] * split_ratio))
        normal_init(self.deconv)  # SimpleBaselines / mmpose HeatmapHead: N(0, 0.001^2), BN 1 / 0
        normal_init(self.final)   # (the SimCC linear layers keep PyTorch's default, as in SimCC)

    def forward(self, feature: torch.Tensor) -> dict[str, torch.Tensor]:
        maps = self.final(self.deconv(feature))  # (B, K, h, w)
        if maps.shape[-2:] != self.map_size:  # deconvs from a 1/32 map of an input not divisible by 32
            maps = F.interpolate(maps, size=self.map_size, mode='bilinear', align_corners=False)
        out = {}
        if self.head != 'simcc':
            out['heatmaps'] = maps
        if self.head != 'heatmap':
            flat = maps.flatten(2)  # (B, K, h*w)
            out['simcc_x'] = self.simcc_x(flat)  # (B, K, W*k)
            out['simcc_y'] = self.simcc_y(flat)  # (B, K, H*k)
        return out


class ScaleNorm(nn.Module):
    """x / ||x||_2 * sqrt(d) * g with a single learnable gain g (Nguyen & Salazar 2019; mmpose)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.scale = dim ** -0.5
        self.eps = eps
        self.g = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = x.norm(dim=-1, keepdim=True) * self.scale
        return x / norm.clamp(min=self.eps) * self.g


class GAU(nn.Module):
    """Gated attention unit as in mmpose's RTMCCBlock (self-attention, no relative bias and no
    position encoding: RTMPose configs set use_rel_bias=False, pos_enc=False):
    u, v, z = SiLU(W x); q, k = per-dim scale/offset of z; A = relu(q k^T / sqrt(s))^2;
    out = x * res_scale + W_o (u * A v)."""

    def __init__(self, dim: int = 256, s: int = 128, expansion: int = 2, eps: float = 1e-5):
        super().__init__()
        self.e, self.s = int(dim * expansion), s
        self.norm = ScaleNorm(dim, eps)
        self.uv = nn.Linear(dim, 2 * self.e + s, bias=False)
        self.gamma = nn.Parameter(torch.rand(2, s))
        self.beta = nn.Parameter(torch.rand(2, s))
        self.o = nn.Linear(self.e, dim, bias=False)
        self.res_scale = nn.Parameter(torch.ones(dim))
        nn.init.xavier_uniform_(self.uv.weight)  # gamma/beta: torch.rand as in mmpose

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, v, z = nn.functional.silu(self.uv(self.norm(x))).split([self.e, self.e, self.s], -1)
        qk = z.unsqueeze(2) * self.gamma + self.beta  # (B, K, 2, s)
        q, k = qk.unbind(2)  # (B, K, s) each
        attn = torch.relu(q @ k.transpose(1, 2) / math.sqrt(self.s)).square()  # (B, K, K)
        return x * self.res_scale + self.o(u * (attn @ v))  # (B, K, dim)


class RTMCCHead(nn.Module):
    """RTMPose head (defaults = rtmpose-*_coco-256x192 configs: kernel 7, hidden 256, s 128, exp 2)."""

    def __init__(self, in_channels: int, num_joints: int, input_size: tuple[int, int],
                 feat_size: tuple[int, int], split_ratio: float = 2.0, kernel: int = 7,
                 hidden: int = 256, s: int = 128, expansion: int = 2):
        super().__init__()
        self.final = nn.Conv2d(in_channels, num_joints, kernel, padding=kernel // 2)
        flat = feat_size[0] * feat_size[1]
        self.mlp = nn.Sequential(ScaleNorm(flat), nn.Linear(flat, hidden, bias=False))
        self.gau = GAU(hidden, s, expansion)
        self.cls_x = nn.Linear(hidden, int(input_size[1] * split_ratio), bias=False)
        self.cls_y = nn.Linear(hidden, int(input_size[0] * split_ratio), bias=False)

    def forward(self, feature: torch.Tensor) -> dict[str, torch.Tensor]:
        tokens = self.mlp(self.final(feature).flatten(2))  # (B, K, hidden)
        tokens = self.gau(tokens)  # (B, K, hidden)
        return {'simcc_x': self.cls_x(tokens), 'simcc_y': self.cls_y(tokens)}  # (B, K, W*k), (B, K, H*k)
