"""Released checkpoints -> kit models: one key mapping per release format, checked both ways.

`load_checkpoint_into(model, path, name, complete)` reads a state dict (`torch.load(weights_only=
True)`, inside a `state_dict` / `model` wrapper if there is one; a DataParallel `module.` prefix is
ignored), picks the release format of `FORMATS` that fills most tensors of the kit model `name`,
renames every tensor and loads it. It returns a `LoadReport` listing every tensor of the file left
unused and every kit tensor left unfilled (and warns when either list is not empty). A tensor the
format does not expect to leave unused (an ImageNet classifier is expected; a key the model lacks
or a shape that differs is not) raises `CheckpointMismatchError` naming the file, the expected
architecture and the first mismatching key; with `complete=True` (a frozen teacher) so does any
unfilled kit tensor, or a kit model that cannot compute what the release computes.

Each format was verified once by output equality against the reference code (its modules built
from the reference files, random weights and BN statistics, saved in the release's format, loaded
through this mapping, eval mode, same input; max |difference| of the outputs in float64):
RTMPose-t/s/m 0.0 (SimCC x/y), HRNet-W32/W48 (MMPose) 1.8e-14 / 3.0e-14, Hourglass-2/4/8 (bearpaw,
every stack's heatmaps) 0.0, Lite-HRNet-18/30 6e-16 / 1.1e-15 with the reference's in-place fusion
(0.51 / 0.58 with the kit's plain fusion: see `_forward_problem`). `tests/fixtures/manifests/`
holds each reference's key names and shapes, so the tests check the mappings without that code.

Formats (`FORMATS`; `MODEL_FORMATS` says which kit models accept which):
- `kdlib`: the kit's own `last.pt` / `best.pt` (every model);
- `resnet`: torchvision / timm ResNet, the official SimpleBaseline `pose_resnet` (`sbl_r50`);
- `hrnet`: official HRNet (`pose_hrnet.py`, ImageNet `hrnet_w*`), SimCC (`mlp_head_x/y`), MMPose
  1.x / 0.x HRNet + `HeatmapHead` (`backbone.`, `head.` or `keypoint_head.`) (`hrnet*`);
- `mmpose-litehrnet`: MMPose `litehrnet.py` + `HeatmapHead`; the HRNet-Group/Lite-HRNet release
  uses the same names (`litehrnet_18/30`);
- `mmpose-rtmpose`: MMPose 1.x `CSPNeXt` (`cspnext.py`, `csp_layer.py`) + `RTMCCHead`
  (`rtmcc_head.py`, `rtmcc_block.py`) (`rtmpose_t/s/m`);
- `bearpaw-hourglass`: bearpaw/pytorch-pose `pose/models/hourglass.py` (`hg`, `num_blocks=1`,
  depth 4; also FPD's yuanyuanli85 release) (`hourglass2/4/8`).
"""
from __future__ import annotations

import pickle
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn


class CheckpointMismatchError(ValueError):
    """A checkpoint that is not of the expected architecture / variant / number of joints."""


@dataclass(frozen=True)
class Format:
    name: str
    description: str                   # the expected architecture, for error messages
    translate: Callable[[str, set], str]   # (source key, kit keys) -> kit key
    ignorable: str = r'(?!)'           # source keys that may stay unused (regex, matched at the start)


@dataclass
class LoadReport:
    """What `load_checkpoint_into` did: `loaded` kit keys, `unused` source keys, `unfilled` kit keys."""
    path: str
    model: str
    format: str
    loaded: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    unfilled: list[str] = field(default_factory=list)

    def summary(self) -> str:
        def listed(keys):
            return f"{len(keys)}" + (f" ({', '.join(keys[:8])}{', ...' if len(keys) > 8 else ''})" if keys else '')
        return (f"{self.path} -> {self.model} [{self.format}]: {len(self.loaded)} tensors loaded, "
                f"unused in the file: {listed(self.unused)}, left unfilled in the model: {listed(self.unfilled)}")


# ----------------------------------------------------------------------------- key rules
def _rules(*pairs: tuple[str, str | Callable]) -> Callable[[str, set], str]:
    """Translate by regex substitutions applied in order (each one to the result of the previous)."""
    compiled = [(re.compile(p), r) for p, r in pairs]

    def translate(key: str, own: set) -> str:
        for pattern, repl in compiled:
            key = pattern.sub(repl, key)
        return key
    return translate


_CB = {'conv': '0', 'bn': '1'}        # mmcv ConvModule (conv, bn) -> kit conv_bn Sequential (0, 1)
_DP = {'depthwise': '0', 'pointwise': '1'}   # mmcv DepthwiseSeparableConvModule -> separable_conv


def _identity(key: str, own: set) -> str:
    return key


def _resnet(key: str, own: set) -> str:
    """torchvision / timm ResNet (`layer1.0.conv1.weight`) -> `trunk.`; SimpleBaseline head."""
    if key.startswith('deconv_layers.'):
        return 'head.deconv.' + key.removeprefix('deconv_layers.')
    if key.startswith('final_layer.'):
        return 'head.final.' + key.removeprefix('final_layer.')
    return 'trunk.' + key


_HRNET_RULES = [  # official pose_hrnet / hrnet-imagenet / SimCC name -> kdlib HRNet name (first match)
    (r'^conv(\d)\.', lambda m: f'stem.{int(m[1]) - 1}.0.'),
    (r'^bn(\d)\.', lambda m: f'stem.{int(m[1]) - 1}.1.'),
    (r'^layer1\.(\d+)\.conv(\d)\.', lambda m: f'stage1.{m[1]}.body.{int(m[2]) - 1}.0.'),
    (r'^layer1\.(\d+)\.bn(\d)\.', lambda m: f'stage1.{m[1]}.body.{int(m[2]) - 1}.1.'),
    (r'^layer1\.', lambda m: 'stage1.'),
    (r'^transition(\d)\.(\d+)\.0\.(\d)\.', lambda m: f'transitions.{int(m[1]) - 1}.layers.{m[2]}.{m[3]}.'),
    (r'^transition(\d)\.(\d+)\.(\d)\.', lambda m: f'transitions.{int(m[1]) - 1}.layers.{m[2]}.{m[3]}.'),
    (r'^stage(\d)\.(\d+)\.branches\.(\d+)\.(\d+)\.conv(\d)\.',
     lambda m: f'stages.{int(m[1]) - 2}.{m[2]}.branches.{m[3]}.{m[4]}.conv{m[5]}.0.'),
    (r'^stage(\d)\.(\d+)\.branches\.(\d+)\.(\d+)\.bn(\d)\.',
     lambda m: f'stages.{int(m[1]) - 2}.{m[2]}.branches.{m[3]}.{m[4]}.conv{m[5]}.1.'),
    (r'^stage(\d)\.(\d+)\.fuse_layers\.', lambda m: f'stages.{int(m[1]) - 2}.{m[2]}.fuse.'),
    (r'^final_layer\.', lambda m: 'head.final.'),
    (r'^mlp_head_x\.', lambda m: 'head.simcc_x.'),
    (r'^mlp_head_y\.', lambda m: 'head.simcc_y.'),
]


def _hrnet(key: str, own: set) -> str:
    """Official HRNet names (leoxiaobin/deep-high-resolution-net.pytorch `pose_hrnet.py`, SimCC);
    MMPose's `HRNet` uses the same names under `backbone.`, its `HeatmapHead` `head.final_layer`."""
    key = re.sub(r'^(keypoint_)?head\.final_layer\.', 'final_layer.', key.removeprefix('backbone.'))
    for pattern, repl in _HRNET_RULES:
        m = re.match(pattern, key)
        if m:
            return repl(m) + key[m.end():]
    return key


_mmpose_head = (r'^(keypoint_)?head\.final_layer\.', 'head.final.')
_litehrnet = _rules(  # mmpose/models/backbones/litehrnet.py (= HRNet-Group/Lite-HRNet) -> kdlib litehrnet.py
    (r'^backbone\.', ''),
    _mmpose_head,
    (r'^stem\.conv1\.(conv|bn)\.', lambda m: f'stem.conv1.{_CB[m[1]]}.'),
    (r'^stem\.branch1\.(\d)\.(conv|bn)\.', lambda m: f'stem.branch1.{m[1]}.{_CB[m[2]]}.'),
    (r'^stem\.expand_conv\.(conv|bn)\.', lambda m: f'stem.branch2.0.{_CB[m[1]]}.'),
    (r'^stem\.depthwise_conv\.(conv|bn)\.', lambda m: f'stem.branch2.1.0.{_CB[m[1]]}.'),
    (r'^stem\.linear_conv\.(conv|bn)\.', lambda m: f'stem.branch2.1.1.{_CB[m[1]]}.'),
    # transition{s}.{j}: (dw conv, BN, pw conv, BN[, ReLU]); a new branch wraps it in one more Sequential
    (r'^transition(\d)\.(\d+)\.(?:0\.)?([0-3])\.(?=[a-z])',
     lambda m: f'transitions.{m[1]}.layers.{m[2]}.{int(m[3]) // 2}.{int(m[3]) % 2}.'),
    (r'^stage(\d)\.(\d+)\.layers\.(\d+)\.', r'stages.\1.\2.blocks.\3.'),
    (r'\.cross_resolution_weighting\.conv([12])\.(conv|bn)\.', lambda m: f'.cross.fc.{int(m[1]) - 1}.{_CB[m[2]]}.'),
    (r'\.depthwise_convs\.(\d+)\.(conv|bn)\.', lambda m: f'.dw.{m[1]}.{_CB[m[2]]}.'),
    (r'\.spatial_weighting\.(\d+)\.conv([12])\.conv\.', lambda m: f'.spatial.{m[1]}.fc.{2 * int(m[2]) - 1}.'),
    # fuse_layers.i.j.k.(dw, BN, pw, BN) for down-sampling chains; fuse_layers.i.j.(conv, BN) upwards
    (r'^stage(\d)\.(\d+)\.fuse_layers\.(\d+)\.(\d+)\.(\d+)\.([0-3])\.',
     lambda m: f'stages.{m[1]}.{m[2]}.fuse.paths.{m[3]}.{m[4]}.{m[5]}.{int(m[6]) // 2}.{int(m[6]) % 2}.'),
    (r'^stage(\d)\.(\d+)\.fuse_layers\.', r'stages.\1.\2.fuse.paths.'),
    (r'^head_layer\.projects\.(\d+)\.(depthwise|pointwise)_conv\.(conv|bn)\.',
     lambda m: f'iterative.projects.{m[1]}.{_DP[m[2]]}.{_CB[m[3]]}.'),
)
_rtmpose = _rules(  # mmpose CSPNeXt + RTMCCHead -> kdlib rtmpose.py / heads.RTMCCHead
    (r'^backbone\.stem\.(\d)\.(conv|bn)\.', lambda m: f'backbone.stem.{m[1]}.{_CB[m[2]]}.'),
    (r'^backbone\.stage(\d)\.', lambda m: f'backbone.stages.{int(m[1]) - 1}.'),
    (r'^(backbone\.stages\.\d\.0)\.(conv|bn)\.', lambda m: f'{m[1]}.{_CB[m[2]]}.'),     # 3x3 s2 conv
    (r'^(backbone\.stages\.\d\.\d)\.(conv[12]|main|short|final)(?:_conv)?\.(conv|bn)\.',
     lambda m: f'{m[1]}.{m[2]}.{_CB[m[3]]}.'),                                          # SPP, CSP 1x1s
    (r'\.blocks\.(\d+)\.conv1\.(conv|bn)\.', lambda m: f'.blocks.{m[1]}.conv1.{_CB[m[2]]}.'),
    (r'\.blocks\.(\d+)\.conv2\.(depthwise|pointwise)_conv\.(conv|bn)\.',
     lambda m: f'.blocks.{m[1]}.conv2.{_DP[m[2]]}.{_CB[m[3]]}.'),
    (r'^head\.final_layer\.', 'head.final.'),
    (r'^head\.gau\.ln\.', 'head.gau.norm.'),
    (r'^head\.gau\.res_scale\.scale$', 'head.gau.res_scale'),
)
_PREACT = {'bn1': 'body.0', 'conv1': 'body.2', 'bn2': 'body.3', 'conv2': 'body.5', 'bn3': 'body.6',
           'conv3': 'body.8', 'downsample.0': 'skip'}   # bearpaw Bottleneck -> blocks.PreActBottleneck
_HG_PART = {'0': 'skip', '1': 'down', '2': 'up', '3': 'inner'}   # bearpaw hg[n-1][p]: up1, low1, low3, low2


def _hourglass(key: str, own: set, depth: int = 4) -> str:
    """bearpaw/pytorch-pose `HourglassNet` (depth 4 in `Hourglass(block, num_blocks, 128, 4)`) ->
    kdlib hourglass.py; the last stack's `score` is the kit's `head.final`."""
    stacks = len({m[1] for k in own for m in [re.match(r'hourglasses\.(\d+)\.', k)] if m})
    key = re.sub(r'^conv1\.', 'stem.0.', key)
    key = re.sub(r'^bn1\.', 'stem.1.', key)
    key = re.sub(r'^layer([123])\.0\.', lambda m: f'stem.{(3, 5, 6)[int(m[1]) - 1]}.', key)
    key = re.sub(r'^hg\.(\d+)\.hg\.(\d+)\.(\d)\.', lambda m: f'hourglasses.{m[1]}.' + 'inner.' * (
        depth - 1 - int(m[2])) + f'{_HG_PART[m[3]]}.', key)
    key = re.sub(r'^res\.(\d+)\.', r'post.\1.0.', key)
    key = re.sub(r'^fc\.(\d+)\.([01])\.', lambda m: f'post.{m[1]}.{int(m[2]) + 1}.', key)
    key = re.sub(r'^score\.(\d+)\.', lambda m: 'head.final.' if int(m[1]) == stacks - 1 else f'scores.{m[1]}.', key)
    key = re.sub(r'^fc_\.', 'remap_feature.', key)
    key = re.sub(r'^score_\.', 'remap_score.', key)
    return re.sub(r'\.(bn[123]|conv[123]|downsample\.0)\.(?=[a-z_]+$)', lambda m: f'.{_PREACT[m[1]]}.', key)


FORMATS = {f.name: f for f in (
    Format('kdlib', "the kit's own checkpoint", _identity),
    Format('resnet', 'a torchvision/timm ResNet or SimpleBaseline pose_resnet checkpoint '
           "(keys like 'layer1.0.conv1.weight')", _resnet, ignorable=r'fc\.'),
    Format('hrnet', "an HRNet checkpoint: official pose_hrnet / ImageNet hrnet_w* / SimCC (keys like "
           "'stage2.0.branches.0.0.conv1.weight') or MMPose HRNet ('backbone.stage2...', 'head.final_layer')",
           _hrnet, ignorable=r'(backbone\.)?(incre_modules|downsamp_modules|final_layer\.\d|classifier)\.'
                             r'|(backbone\.)?stage4\.\d+\.fuse_layers\.[1-3]\.'),   # ImageNet classifier
    Format('mmpose-litehrnet', "an MMPose Lite-HRNet checkpoint (keys like 'backbone.stem.conv1.conv.weight', "
           "'backbone.stage0.0.layers.0.cross_resolution_weighting.conv1.conv.weight')", _litehrnet),
    Format('mmpose-rtmpose', "an MMPose RTMPose checkpoint: CSPNeXt + RTMCCHead (keys like "
           "'backbone.stem.0.conv.weight', 'head.gau.uv.weight')", _rtmpose),
    Format('bearpaw-hourglass', "a bearpaw/pytorch-pose Stacked Hourglass checkpoint "
           "(keys like 'module.hg.0.hg.3.0.0.bn1.weight')", _hourglass),
)}
MODEL_FORMATS = {  # kit model name -> the release formats it accepts (besides 'kdlib')
    'sbl_r50': ('resnet',), 'hrnet_w32': ('hrnet',), 'hrnet_w48': ('hrnet',), 'hrnet': ('hrnet',),
    'litehrnet_18': ('mmpose-litehrnet',), 'litehrnet_30': ('mmpose-litehrnet',),
    'rtmpose_t': ('mmpose-rtmpose',), 'rtmpose_s': ('mmpose-rtmpose',), 'rtmpose_m': ('mmpose-rtmpose',),
    'hourglass2': ('bearpaw-hourglass',), 'hourglass4': ('bearpaw-hourglass',), 'hourglass8': ('bearpaw-hourglass',),
}


# ----------------------------------------------------------------------------- loading
_NUMPY_GLOBALS = re.compile(r'numpy\.(_?core\.multiarray\.(_reconstruct|scalar)|ndarray|dtype|dtypes\.\w+DType)$')


def _numpy_globals(names: list[str]) -> list:
    """(object, pickled name) of the numpy globals that rebuild plain arrays, scalars and dtypes:
    those `names` (numpy 1 pickles `numpy.core...`, numpy 2 `numpy._core...`) and every dtype class."""
    import importlib

    import numpy as np
    found = []
    for name in names:
        module, attr = name.rsplit('.', 1)
        for candidate in (module, module.replace('numpy.core.', 'numpy._core.')):
            try:
                found.append((getattr(importlib.import_module(candidate), attr), name))
                break
            except (ImportError, AttributeError):
                continue
    return found + [cls for cls in vars(np.dtypes).values() if isinstance(cls, type) and cls.__name__.endswith('DType')]


def _load(path) -> object:
    """`torch.load(weights_only=True)`; numpy arrays in metadata (MMPose 1.x `meta['dataset_meta']`)
    are allowed, nothing else that would run code."""
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        other = [n for n in names if not _NUMPY_GLOBALS.match(n)]
        if other or not names:
            raise CheckpointMismatchError(
                f"checkpoint {path} needs code to load ({other or 'unknown globals'}); the kit only reads "
                f"tensors and plain data (torch.load(weights_only=True)): re-save its state_dict alone") from None
        with torch.serialization.safe_globals(_numpy_globals(names)):
            return torch.load(path, map_location='cpu', weights_only=True)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file (inside a `state_dict` / `model` wrapper if there is one)."""
    try:
        state = _load(path)
    except CheckpointMismatchError:
        raise
    except Exception as err:  # a truncated file, not a torch file
        raise CheckpointMismatchError(f"checkpoint {path} cannot be read as a PyTorch state dict "
                                      f"(torch.load(weights_only=True): {type(err).__name__}: {err})") from err
    for wrapper in ('state_dict', 'model'):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        found = list(state)[:5] if isinstance(state, dict) else ''
        raise CheckpointMismatchError(f"checkpoint {path} holds no state dict of tensors "
                                      f"(found {type(state).__name__}: {found})")
    return state


def _match(fmt: Format, state: dict, own: dict) -> tuple[dict, list]:
    """(kit key -> tensor for every source tensor that fits, [(source key, why not)] for the rest)."""
    keys = set(own)
    loaded, rejected = {}, []
    for key, value in state.items():
        new = fmt.translate(key.removeprefix('module.'), keys)   # DataParallel's prefix
        if new not in own:
            rejected.append((key, f"-> {new!r}, which the model lacks"))
        elif own[new].shape != value.shape:
            rejected.append((key, f"-> {new!r}: shape {tuple(value.shape)} in the file, "
                                  f"{tuple(own[new].shape)} in the model"))
        elif new in loaded:
            rejected.append((key, f"-> {new!r}, already filled by another tensor"))
        else:
            loaded[new] = value
    return loaded, rejected


def _expected(name: str, formats: list[str]) -> str:
    return f"{name} ({'; or '.join(FORMATS[f].description for f in formats)})"


def map_state_dict(state: dict, own: dict, name: str, path: str = '<state dict>', complete: bool = False,
                   formats: tuple[str, ...] | None = None) -> tuple[dict, LoadReport]:
    """The pure part of `load_checkpoint_into`: (kit key -> tensor, report) for the source tensors
    `state` and the kit model's `own` state dict (tensors or meta tensors: only shapes are read)."""
    formats = list(formats or ('kdlib', *MODEL_FORMATS.get(name, ())))
    fits = {f: _match(FORMATS[f], state, own) for f in formats}
    best = max(formats, key=lambda f: len(fits[f][0]))   # first listed wins a tie
    loaded, rejected = fits[best]
    if not loaded:
        key, why = fits[formats[-1]][1][0] if state else ('<none>', 'the file holds no tensor')
        raise CheckpointMismatchError(
            f"checkpoint {path} matches no parameter of {name}: expected {_expected(name, formats)}; "
            f"first mismatching key {key!r} {why}")
    fmt = FORMATS[best]
    bad = [(k, why) for k, why in rejected if not re.match(fmt.ignorable, k)]
    if bad:
        raise CheckpointMismatchError(
            f"checkpoint {path} is not a checkpoint of {name} as built here: expected "
            f"{_expected(name, [best])}; first mismatching key {bad[0][0]!r} {bad[0][1]} "
            f"({len(bad)} mismatching of {len(state)}; another variant, head or number of joints?)")
    unfilled = [k for k in own if k not in loaded and not k.endswith('num_batches_tracked')]
    if complete and unfilled:
        raise CheckpointMismatchError(
            f"checkpoint {path} leaves {len(unfilled)} tensors of {name} unfilled (first: {unfilled[0]!r}); "
            f"a frozen teacher must be complete: expected {_expected(name, [best])} with this head")
    return loaded, LoadReport(str(path), name, best, sorted(loaded), [k for k, _ in rejected], unfilled)


def _forward_problem(model: nn.Module, fmt: str) -> str | None:
    """Why `model` cannot compute what the release computes, though every tensor fits (None: it can).

    Lite-HRNet: the release's `LiteHRModule.forward` (mmpose `litehrnet.py`, identical in
    HRNet-Group/Lite-HRNet) fuses in place, `y = out[0] if i == 0 else fuse[i][0](out[0])` and then
    `y += ...` for every j including 0, so branch 0 counts twice and outputs i > 0 read the fused
    branch 0. A model without `reference_fuse = True` sums each branch once (measured on random
    weights: max |diff| 0.51 of outputs up to 0.64, Lite-HRNet-18 256x192)."""
    if fmt == 'mmpose-litehrnet' and not getattr(model, 'reference_fuse', False):
        return ("the kit's Lite-HRNet fuses its branches once each, the released network's "
                "LiteHRModule.forward (mmpose litehrnet.py) fuses in place (branch 0 twice): the "
                "loaded model would not compute the released outputs")
    return None


def load_checkpoint_into(model: nn.Module, path: str | Path, name: str, complete: bool = False,
                         formats: tuple[str, ...] | None = None, quiet: bool = False) -> LoadReport:
    """Load the checkpoint at `path` into the kit model `name` (module docstring); returns a
    `LoadReport`. `complete=True` (teachers): every kit tensor must be filled and the model must
    compute what the release computes. `formats`: the formats to try (default: 'kdlib' +
    `MODEL_FORMATS[name]`); the one that fills most tensors is used."""
    loaded, report = map_state_dict(read_state_dict(path), model.state_dict(), name, str(path), complete, formats)
    problem = _forward_problem(model, report.format)
    if problem and complete:
        raise CheckpointMismatchError(f"checkpoint {path} cannot serve as a teacher {name}: {problem}")
    model.load_state_dict(loaded, strict=False)
    if problem:
        warnings.warn(f"{path}: {problem}", stacklevel=2)
    if (report.unused or report.unfilled) and not quiet:
        warnings.warn(report.summary(), stacklevel=2)
    return report
