"""Local pretrained weights and released checkpoints (nothing is ever downloaded).

- `load_pretrained(model, pretrained, name)`: a file path or a registered name ('imagenet') ->
  the model's initialisation (`build_model(..., pretrained=...)`), through the key mappings of
  `checkpoints.py`; returns its `LoadReport` (unused / unfilled tensors, also warned).
- `CheckpointRef(path, model, ...)`: a released checkpoint used as a frozen teacher
  (`ExperimentConfig.teachers[name]`), hashed by the file's SHA-256 in the run key.
- `weights_problems(cfg)`: every weight file an experiment tree needs and lacks, so that
  `run_experiment` stops before any training.

Files resolve under the weights directory: `$KDLIB_WEIGHTS`, else `<repo>/weights/`. A missing file
raises `FileNotFoundError` saying which file to put where; a model is never silently left random.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from .checkpoints import FORMATS, MODEL_FORMATS, LoadReport, load_checkpoint_into
from kdlib.train.checkpoint import file_sha256

_DEFAULT_WEIGHTS = Path(__file__).resolve().parents[2] / 'weights'
WEIGHTS_DIR: Path | None = None   # a fixed directory (tests); None: $KDLIB_WEIGHTS, else <repo>/weights
PRETRAINED = {  # name -> model -> accepted file names (the official release names)
    'imagenet': {
        'sbl_r50': ('resnet50-0676ba61.pth', 'resnet50-19c8e357.pth', 'resnet50-11ad3fa6.pth'),
        'hrnet_w32': ('hrnet_w32-36af842e.pth', 'hrnetv2_w32_imagenet_pretrained.pth'),
        'hrnet_w48': ('hrnet_w48-8ef0771d.pth', 'hrnetv2_w48_imagenet_pretrained.pth'),
    },
}
_SUFFIXES = ('.pth', '.pt', '.ckpt', '.bin', '.tar')   # bearpaw: model_best.pth.tar


def weights_dir() -> Path:
    return Path(WEIGHTS_DIR or os.environ.get('KDLIB_WEIGHTS') or _DEFAULT_WEIGHTS)


def _where() -> str:
    return f"{weights_dir()}/ (the weights directory: $KDLIB_WEIGHTS, else <repo>/weights/)"


def resolve(pretrained: str, name: str) -> Path:
    """Path of a checkpoint given as a path or a registered name; clear error when absent."""
    path = Path(pretrained).expanduser()
    if path.suffix in _SUFFIXES or path.exists():
        if not path.is_absolute() and not path.exists():
            path = weights_dir() / path
        if not path.is_file():
            raise FileNotFoundError(f"pretrained checkpoint {pretrained} not found (looked for {path}; "
                                    f"no download is attempted): put it in {_where()} or give its path")
        return path
    if pretrained not in PRETRAINED:
        raise ValueError(f"pretrained={pretrained!r} is neither a checkpoint file nor one of {list(PRETRAINED)}")
    files = PRETRAINED[pretrained].get(name)
    if files is None:
        raise ValueError(f"no {pretrained!r} checkpoint is registered for model {name!r}; "
                         f"pass a file path instead (registered: {list(PRETRAINED[pretrained])})")
    for f in files:
        if (weights_dir() / f).is_file():
            return weights_dir() / f
    raise FileNotFoundError(
        f"{pretrained} weights for {name} not found: put one of {list(files)} in {_where()}. "
        f"They cannot be downloaded here; refusing to train from scratch silently.")


def _translate(key: str, model_keys: set[str], name: str = 'hrnet_w32') -> str:
    """The kit key a checkpoint key maps to under the first of `name`'s formats that knows it."""
    for fmt in ('kdlib', *MODEL_FORMATS.get(name, ())):
        new = FORMATS[fmt].translate(key, model_keys)
        if new in model_keys:
            return new
    return key


def load_pretrained(model: nn.Module, pretrained: str, name: str) -> LoadReport:
    """Initialise `model` (kit name `name`) from a local checkpoint (see module docstring)."""
    return load_checkpoint_into(model, resolve(pretrained, name), name, complete=False)


# ----------------------------------------------------------------------------- checkpoint teachers


@dataclass(frozen=True)
class CheckpointRef:
    """A released checkpoint as a frozen teacher: `ExperimentConfig.teachers[name] = CheckpointRef(...)`.

    path: the file, absolute or relative to the weights directory (`$KDLIB_WEIGHTS`, else
    `<repo>/weights/`); model / head / model_params / variant: how the kit builds the network it
    fills (`build_model`); num_joints / input_size: the network's, None = the experiment's dataset
    and input size (a COCO teacher for an MPII student needs num_joints=17); source: where the file
    is published (a label, like `paper`, not part of the run key: the file's SHA-256 is).
    """
    path: str
    model: str
    head: str = 'heatmap'
    model_params: dict = field(default_factory=dict)
    variant: str = 'paper'
    num_joints: int | None = None
    input_size: tuple[int, int] | None = None
    source: str = ''

    @classmethod
    def from_dict(cls, data: dict) -> 'CheckpointRef':
        """Inverse of `dataclasses.asdict` (the input size back to a tuple)."""
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise KeyError(f"CheckpointRef has no field(s) {sorted(unknown)}")
        data = dict(data)
        if data.get('input_size') is not None:
            data['input_size'] = tuple(data['input_size'])
        return cls(**data)

    @staticmethod
    def is_ref_dict(data) -> bool:
        """Whether an `asdict` entry of `ExperimentConfig.teachers` is a CheckpointRef's."""
        return isinstance(data, dict) and 'path' in data and 'dataset' not in data

    def file(self) -> Path:
        path = Path(self.path).expanduser()
        return path if path.is_absolute() else weights_dir() / path

    def problem(self) -> str | None:
        """Why the checkpoint cannot be used (None when its file exists)."""
        if self.file().is_file():
            return None
        return (f"teacher checkpoint {self.path} for {self.model} not found (looked for {self.file()}): "
                f"put it in {_where()}" + (f"; it is published at {self.source}" if self.source else ''))

    def fingerprint(self) -> dict:
        """The run-key part of this teacher: the file's SHA-256 (None if absent) and how it is built."""
        fields = {k: v for k, v in dataclasses.asdict(self).items() if k not in ('path', 'source')}
        return {'sha256': file_sha256(self.file()) if self.file().is_file() else None, **fields}

    def build(self, num_joints: int, input_size) -> nn.Module:
        """The frozen teacher (eval mode, no gradients), every tensor from the file."""
        from . import build_model
        if self.problem():
            raise FileNotFoundError(self.problem())
        if (self.num_joints or num_joints) is None or (self.input_size or input_size) is None:
            raise ValueError(f"CheckpointRef {self.path}: give num_joints and input_size (the ref's, or "
                             f"the experiment's, which build_run passes)")
        model = build_model(self.model, self.num_joints or num_joints, head=self.head,
                            input_size=tuple(self.input_size or input_size), variant=self.variant,
                            **self.model_params)
        load_checkpoint_into(model, self.file(), self.model, complete=True)
        return model.eval().requires_grad_(False)


def weights_fingerprint(cfg) -> dict:
    """SHA-256 of the `pretrained` file an ExperimentConfig's student starts from ({} if none)."""
    pretrained = cfg.model_params.get('pretrained')
    if not pretrained:
        return {}
    try:
        return {'pretrained': file_sha256(resolve(pretrained, cfg.model))}
    except (FileNotFoundError, ValueError):
        return {'pretrained': None}


def weights_problems(cfg) -> list[str]:
    """Every weight file the experiment tree of `cfg` (an ExperimentConfig or a CheckpointRef;
    its teachers and `init_from`, recursively) needs and cannot find, one message each."""
    if isinstance(cfg, CheckpointRef):
        return [cfg.problem()] if cfg.problem() else []
    problems = []
    if cfg.model_params.get('pretrained'):
        try:
            resolve(cfg.model_params['pretrained'], cfg.model)
        except (FileNotFoundError, ValueError) as err:
            problems.append(str(err))
    for teacher in cfg.teachers.values():
        problems += weights_problems(teacher)
    if cfg.init_from is not None:
        problems += weights_problems(cfg.init_from)
    return list(dict.fromkeys(problems))
