"""The model zoo: every network the five papers train, in paper size and in CPU-sized analogues.

`build_model(name, num_joints, head, input_size, variant, simcc_split_ratio, pretrained, **kw)`;
`MODELS[name]` = {'builder', 'paper', 'classroom', 'smoke'} (keyword arguments per variant);
`summary(model, input_size)` -> params_M, gflops_paper, gflops_true (see summary.py);
`cost.inference_cost(model, input_size, batch, device)`: peak memory and speed of a forward.

Every model returns a dict: `heatmaps` (B, K, H/4, W/4) and/or `simcc_x` (B, K, W*k), `simcc_y`
(B, K, H*k); `feature` (what the head reads), `stages` (one map per backbone stage, shallow -> deep)
and `multiscale` (parallel maps high -> low resolution); see each module's docstring for its choice.

Variants (same block structure, smaller widths/depths; classroom inputs ~128x96 (MPII 128x128),
smoke ~64x48). Teacher > student holds in every paper's pairing (checked by tests/test_models.py):

| name            | paper (papers' size)                  | classroom                            | smoke                              |
|-----------------|---------------------------------------|--------------------------------------|------------------------------------|
| sbl_r50         | ResNet-50, deconvs 3x256              | Bottleneck ResNet base 16, (1,2,2,1), deconvs 3x64 | base 8, (1,1,1,1), deconvs 3x32 |
| hourglass2/4/8  | 2/4/8 stacks, 256 ch, depth 4         | same stacks, 32 ch                   | same stacks, 16 ch, depth 3        |
| hrnet_w32 / w48 | width 32/48, EUs (1,4,3), 4 blocks    | width 8/12, EUs (1,4,3), 2 blocks, stem 16, 1 stage-1 block | width 4/6, 1 block, stem 8 |
| hrnet(width,eus)| as given (ELPN Tables 4-5)            | width/4, given EUs, as hrnet_w32     | width/8, given EUs, as hrnet_w32   |
| litehrnet_18/30 | stem 32, width 40, modules (2,4,2)/(3,8,3) | stem 8, width 10, same modules  | stem 8, width 8, same modules      |
| rtmpose_t/s/m   | CSPNeXt (deepen, widen) official, RTMCC 256/128 | widen / 2, RTMCC 128/64    | widen / 4, RTMCC 32/16             |
| elpn_v1 / v2    | width 16/32, EUs (1,2,2)/(1,4,3), 2 light blocks | width 4/8, stem 16, 1 stage-1 block | width 2/4, stem 8       |

Any keyword in `**kw` overrides the variant's value (e.g. `build_model('hrnet', 16, width=8,
eus=(1, 2, 2))`).
"""
from __future__ import annotations

from torch import nn

from .elpn import CONFIGS as ELPN_CONFIGS, elpn
from .heads import check_head
from .hourglass import StackedHourglass
from .hrnet import HRNet
from .litehrnet import CONFIGS as LITE_CONFIGS, LiteHRNet
from .pretrained import PRETRAINED, CheckpointRef, load_pretrained
from .rtmpose import FACTORS as RTM_FACTORS, RTMPose
from .simple_baseline import SimpleBaseline
from .summary import summary

VARIANTS = ('paper', 'classroom', 'smoke')
# A network whose computation changed after runs of it were cached: its version joins the run key
# (``kdlib.experiment.config_hash``), so only its runs are retrained. Lite-HRNet 2: the official
# in-place fusion (``litehrnet.LiteFuse(reference=True)``), which the released checkpoints need.
ARCHITECTURE_VERSIONS = {'litehrnet_18': 2, 'litehrnet_30': 2}
_SMALL_HRNET = {'classroom': dict(stem_channels=16, stage1_blocks=1, blocks=2),
                'smoke': dict(stem_channels=8, stage1_blocks=1, blocks=1)}
_WIDTH_DIV = {'paper': 1, 'classroom': 4, 'smoke': 8}


def _hrnet_variants(width: int, eus: tuple[int, int, int]) -> dict:
    return {v: dict(width=max(2, width // _WIDTH_DIV[v]), eus=eus, **_SMALL_HRNET.get(v, {})) for v in VARIANTS}


def _elpn_variants(width: int, eus: tuple[int, int, int]) -> dict:
    small = {'classroom': dict(stem_channels=16, stage1_blocks=1), 'smoke': dict(stem_channels=8, stage1_blocks=1, blocks=1)}
    return {v: dict(width=max(2, width // _WIDTH_DIV[v]), eus=eus, **small.get(v, {})) for v in VARIANTS}


def _rtm_variants(deepen: float, widen: float) -> dict:
    return {'paper': dict(deepen=deepen, widen=widen),
            'classroom': dict(deepen=deepen, widen=widen / 2, hidden=128, s=64),
            'smoke': dict(deepen=deepen, widen=widen / 4, hidden=32, s=16)}


MODELS: dict[str, dict] = {
    'sbl_r50': {'builder': SimpleBaseline,
                'paper': dict(depth=50),
                'classroom': dict(layers=(1, 2, 2, 1), base=16, deconv_channels=(64, 64, 64)),
                'smoke': dict(layers=(1, 1, 1, 1), base=8, deconv_channels=(32, 32, 32))},
    **{f'hourglass{n}': {'builder': StackedHourglass,
                         'paper': dict(stacks=n, channels=256),
                         'classroom': dict(stacks=n, channels=32),
                         'smoke': dict(stacks=n, channels=16, depth=3)} for n in (2, 4, 8)},
    'hrnet_w32': {'builder': HRNet, **_hrnet_variants(32, (1, 4, 3))},
    'hrnet_w48': {'builder': HRNet, **_hrnet_variants(48, (1, 4, 3))},
    'hrnet': {'builder': HRNet, **_hrnet_variants(32, (1, 4, 3))},  # width=, eus= via kw
    **{name: {'builder': LiteHRNet,
              'paper': dict(modules=m),
              'classroom': dict(modules=m, width=10, stem_channels=8),
              'smoke': dict(modules=m, width=8, stem_channels=8)} for name, m in LITE_CONFIGS.items()},
    **{name: {'builder': RTMPose, **_rtm_variants(*f)} for name, f in RTM_FACTORS.items()},
    **{name: {'builder': elpn, **_elpn_variants(c['width'], c['eus'])} for name, c in ELPN_CONFIGS.items()},
}


def build_model(name: str, num_joints: int, head: str = 'heatmap', input_size: tuple[int, int] = (256, 192),
                variant: str = 'paper', simcc_split_ratio: float = 2.0, pretrained: str | None = None,
                **kw) -> nn.Module:
    """Build a zoo model. `head`: 'heatmap' | 'simcc' | 'both' (RTMPose: 'simcc' only).
    `hrnet` takes `width=` and `eus=` (scaled like hrnet_w32 in the small variants).
    `pretrained`: a local checkpoint path or a name of `PRETRAINED` (see pretrained.py)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; available: {sorted(MODELS)}")
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    check_head(head)
    if len(input_size) != 2 or min(input_size) < 32:
        raise ValueError(f"input_size must be (H, W) with H, W >= 32, got {input_size!r}")
    spec = MODELS[name]
    args = dict(spec[variant])
    if name == 'hrnet' and ('width' in kw or 'eus' in kw):
        args.update(_hrnet_variants(kw.pop('width', 32), tuple(kw.pop('eus', (1, 4, 3))))[variant])
    args.update(kw)
    model = spec['builder'](num_joints, input_size=tuple(input_size), head=head, split_ratio=simcc_split_ratio, **args)
    if pretrained is not None:
        load_pretrained(model, pretrained, name)
    return model


__all__ = ["MODELS", "VARIANTS", "PRETRAINED", "CheckpointRef", "build_model", "summary", "load_pretrained"]
