"""ELPN-V1/V2 (ELPN-MAPD paper, Section 3.2, Fig. 4-5): a light HRNet.

Starting from HRNet (hrnet.py) the paper
- replaces stage 1's Bottlenecks by Efficient Bottlenecks (Bottleneck + Global Context block after
  its last conv, Fig. 4(b)); the stem and the 4 blocks of 64 planes are kept ("Bottleneck blocks are
  used four times in HRNet to extract low-level features");
- replaces every BasicBlock of stages 2-4 by the Lightweight Basic Block (both 3x3 convs become
  depthwise-separable convs, Fig. 4(d)) and uses 2 instead of 4 of them per branch in an EU;
- adds a GC block after the output of stage 4 (the map the head reads);
- ELPN-V1: base width 16, EUs (1, 2, 2); ELPN-V2: width 32, EUs (1, 4, 3) (Table 1 text).
Transitions and fusion layers stay HRNet's (the paper changes only the blocks). The GC bottleneck
ratio is not given: GCNet's default r = 16 for ResNet bottlenecks (`gc_ratio=1/16`); with it the
build gives 1.108M / 4.705M params, ELPN Table 1's 1.1M / 4.7M (with r = 4: 1.21M / 4.81M).

Sizes (ELPN Table 1, 256x192): V1 1.1M / 1.2G, V2 4.7M / 2.0G; the measured values and how they
compare are in tests/test_models.py::SIZE_TABLE.
"""
from __future__ import annotations

from .hrnet import HRNet

CONFIGS = {  # Table 1 / Section 4.3: base width, EUs of stages 2-4
    'elpn_v1': dict(width=16, eus=(1, 2, 2)),
    'elpn_v2': dict(width=32, eus=(1, 4, 3)),
}
ELPN_DEFAULTS = dict(blocks=2, light=True, gc=True, gc_final=True)  # Section 3.2, Fig. 5


def elpn(num_joints: int, input_size=(256, 192), head='heatmap', split_ratio=2.0, width=16,
         eus=(1, 2, 2), **kw) -> HRNet:
    """ELPN as an HRNet configuration (`kw` may override blocks/light/gc/gc_final/stem_channels...)."""
    return HRNet(num_joints, input_size, head, split_ratio, width=width, eus=eus, **{**ELPN_DEFAULTS, **kw})
