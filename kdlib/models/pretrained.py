"""Loading local pretrained checkpoints (nothing is ever downloaded).

`load_pretrained(model, pretrained, name)` accepts a file path or a registered name ('imagenet').
Names resolve to files under `$KDLIB_WEIGHTS` (default `<repo>/weights/`); a missing file raises
`FileNotFoundError` saying which file to put where — the model is never silently left random.

Key translation (state dicts are read with `torch.load(weights_only=True)`; a wrapping
'state_dict'/'model' entry and a 'module.' prefix are removed):
- kdlib's own checkpoints load as they are;
- torchvision / timm ResNet (`conv1.weight`, `layer1.0.conv1.weight`, ...) -> SimpleBaseline trunk;
  the official SimpleBaseline `pose_resnet` head (`deconv_layers.*`, `final_layer.*`) -> head;
- official HRNet / SimCC checkpoints (ImageNet `hrnet_w32-36af842e.pth`, COCO `pose_hrnet_w32_*.pth`,
  SimCC `mlp_head_x/y`) -> HRNet, by the rename table below.
Keys the model lacks (a classifier, ImageNet HRNet's extra fusion outputs) are ignored and reported;
a checkpoint that fits no parameter at all raises.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from torch import nn

WEIGHTS_DIR = Path(os.environ.get('KDLIB_WEIGHTS', Path(__file__).resolve().parents[2] / 'weights'))
PRETRAINED = {  # name -> model -> accepted file names (the official release names)
    'imagenet': {
        'sbl_r50': ('resnet50-0676ba61.pth', 'resnet50-19c8e357.pth', 'resnet50-11ad3fa6.pth'),
        'hrnet_w32': ('hrnet_w32-36af842e.pth', 'hrnetv2_w32_imagenet_pretrained.pth'),
        'hrnet_w48': ('hrnet_w48-8ef0771d.pth', 'hrnetv2_w48_imagenet_pretrained.pth'),
    },
}
_HRNET_RULES = [  # official pose_hrnet / hrnet-imagenet name -> kdlib HRNet name
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


def resolve(pretrained: str, name: str) -> Path:
    """Path of a checkpoint given as a path or a registered name; clear error when absent."""
    path = Path(pretrained).expanduser()
    if path.suffix in ('.pth', '.pt', '.ckpt', '.bin') or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"pretrained checkpoint {path} not found (no download is attempted)")
        return path
    if pretrained not in PRETRAINED:
        raise ValueError(f"pretrained={pretrained!r} is neither a checkpoint file nor one of {list(PRETRAINED)}")
    files = PRETRAINED[pretrained].get(name)
    if files is None:
        raise ValueError(f"no {pretrained!r} checkpoint is registered for model {name!r}; "
                         f"pass a file path instead (registered: {list(PRETRAINED[pretrained])})")
    for f in files:
        if (WEIGHTS_DIR / f).is_file():
            return WEIGHTS_DIR / f
    raise FileNotFoundError(
        f"{pretrained} weights for {name} not found: put one of {list(files)} in {WEIGHTS_DIR}/ "
        f"(or set KDLIB_WEIGHTS). They cannot be downloaded here; refusing to train from scratch silently.")


def _translate(key: str, model_keys: set[str]) -> str:
    if key in model_keys:
        return key
    for prefix in ('trunk.',):  # torchvision / timm ResNet trunk
        if prefix + key in model_keys:
            return prefix + key
    m = re.match(r'^deconv_layers\.', key)
    if m:
        return 'head.deconv.' + key[m.end():]
    for pattern, repl in _HRNET_RULES:
        m = re.match(pattern, key)
        if m:
            key = repl(m) + key[m.end():]
            break
    return key


def load_pretrained(model: nn.Module, pretrained: str, name: str) -> dict:
    """Load a local checkpoint into `model` (see module docstring). Returns {'path', 'loaded',
    'ignored', 'missing'} (key lists)."""
    path = resolve(pretrained, name)
    state = torch.load(path, map_location='cpu', weights_only=True)
    for wrapper in ('state_dict', 'model'):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    own = model.state_dict()
    loaded, ignored = {}, []
    for key, value in state.items():
        new = _translate(key.removeprefix('module.'), set(own))
        if new in own and own[new].shape == value.shape:
            loaded[new] = value
        else:
            ignored.append(key)
    if not loaded:
        raise ValueError(f"checkpoint {path} matches no parameter of {name} "
                         f"(first keys: {list(state)[:5]}); is it a checkpoint of this architecture/variant?")
    model.load_state_dict(loaded, strict=False)
    missing = [k for k in own if k not in loaded]
    return {'path': str(path), 'loaded': sorted(loaded), 'ignored': ignored, 'missing': missing}
