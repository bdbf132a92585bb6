"""One experiment = one config dataclass -> one cached, locked, resumable training run.

    cfg = ExperimentConfig(paper='sdp', profile='smoke', dataset='mpii', model='sbl_r50',
                           method='sdp', method_params={'alpha': 0.5}, seed=0)
    result = run_experiment(cfg)        # dict: metrics, params_M, gflops_*, train_time_s, run_dir, ...

Runs live in ``runs/<profile>/<hash of the config>/`` (``KDLIB_RUNS`` moves the root). A finished
run returns its stored ``result.json``; an unfinished one resumes from ``last.pt``; an ``fcntl``
lock makes concurrent notebook processes that need the same run (a shared teacher) train it once.
Teachers (``teachers``) and the initialisation (``init_from``) are configs themselves and are run
first, recursively; a teacher may instead be a released checkpoint (``kdlib.models.pretrained.
CheckpointRef``: loaded frozen through ``kdlib.models.checkpoints``, keyed by the file's SHA-256).
Every weight file the tree needs (checkpoint teachers, ``model_params['pretrained']``) is checked
before anything trains. ``paper`` is a label only: it is not part of the hash, so two papers sharing a
teacher share its run.

The hash covers the data read (``data_fingerprint``) and the teachers' and ``init_from``'s own
hashes, so edited annotations give a new run, not the old cached metrics. Real data: size and SHA-1
of the annotation files of the splits used (JSON, MPII's ``gt_valid.mat``, COCO's detection file;
not the images), hashed once per process per file version. SynthPose: the generator's version (its
arguments are in the profile): its output is a deterministic function of both, so the key needs no
generated data; ``ensure_root`` checks the files against its stamp's SHA-1s. A corrupt
``result.json`` or ``last.pt`` is moved to ``<run_dir>/corrupt-<time>/`` (warning) and recomputed.

Hooks for special cases (add one line, no other edit): ``DATASET_BUILDERS[name]`` builds datasets
that are not a plain ``kdlib.data.build_dataset`` (e.g. a joint COCO+MPII set), signature
``(cfg, profile, split, pipeline: PipelineConfig) -> Dataset`` (with ``skeleton`` and, for the val
split, ``evaluate``); ``STUDENT_BUILDERS[name]`` (selected by ``cfg.student_builder``) builds the
network, signature ``(cfg, profile, num_joints, input_size, init_checkpoint) -> nn.Module`` (e.g.
a frozen stage-1 student + GCN refiner, loading the stage-1 weights from ``init_checkpoint``).

Several GPUs visible in a single process (a notebook, a papermill cell): the run is launched with
``torchrun --standalone --nproc_per_node=<GPUs> -m kdlib.experiment --config <run_dir>/config.json``
and the result read back (see ``kdlib/train/ddp.py``); ``train={'ddp': False}`` keeps one GPU.
"""
from __future__ import annotations

import argparse
import dataclasses
import fcntl
import hashlib
import json
import os
import subprocess
import sys
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from kdlib.methods import build_method
from kdlib.models.pretrained import CheckpointRef, weights_fingerprint, weights_problems
from kdlib.profiles import dataset_root, get_profile
from kdlib.train import ddp
from kdlib.train.checkpoint import (CheckpointError, CorruptFileError, atomic_write_text, file_sha1,
                                    load_checkpoint, load_model_weights, quarantine, read_json,
                                    read_json_or_isolate, remove_stale_tmp, seed_everything)
from kdlib.train.trainer import TrainConfig, fit

REPO_ROOT = Path(__file__).resolve().parents[1]
# Part of every run's hash: bump it when a change to the kit's code changes what a run computes
# (2: HRNet / Lite-HRNet / heatmap-head initialisation; 3: every method's loss reductions follow
# its paper or reference code, SimCC scoring), so cached results never mix versions.
RESULTS_VERSION = 3
HEAD_TARGETS = {"heatmap": ("heatmap",), "simcc": ("simcc",), "both": ("heatmap", "simcc")}


# TrainConfig fields each set in exactly one place of an ExperimentConfig (its own field, or the
# profile's milestones), never through ``train``.
TRAIN_KNOBS_ELSEWHERE = frozenset({"epochs", "batch_size", "lr", "weight_decay", "recipe", "seed",
                                   "lr_milestones"})


@dataclass
class ExperimentConfig:
    paper: str = ""                        # label only (not hashed)
    profile: str = "smoke"
    dataset: str = "coco"                  # kdlib.data.DATASETS or DATASET_BUILDERS key
    model: str = "sbl_r50"                 # kdlib.models.MODELS key
    head: str = "heatmap"                  # 'heatmap' | 'simcc' | 'both'
    method: str = "supervised"             # kdlib.methods.METHODS key
    method_params: dict = field(default_factory=dict)
    model_params: dict = field(default_factory=dict)        # extra build_model kwargs (width=, ...)
    teachers: dict = field(default_factory=dict)            # name -> ExperimentConfig | CheckpointRef
    init_from: "ExperimentConfig | None" = None             # start from this run's weights
    student_builder: str = "model"         # STUDENT_BUILDERS key
    seed: int = 0
    recipe: str = "adam_step"              # 'adam_step' | 'adamw_cosine'
    epochs: int | None = None              # None: the profile's
    batch_size: int | None = None
    lr: float | None = None                # None: the recipe's
    weight_decay: float | None = None
    input_size: tuple[int, int] | None = None               # None: the profile's, per dataset
    pipeline: dict = field(default_factory=dict)            # PipelineConfig overrides
    dataset_params: dict = field(default_factory=dict)      # loader kwargs, both splits
    val_dataset_params: dict = field(default_factory=dict)  # loader kwargs, val split only
                                                            # (e.g. boxes='det': detector boxes)
    val_dataset: str | None = None         # evaluate on another dataset (None: ``dataset``)
    train_split: str = "train"
    val_split: str = "val"
    train: dict = field(default_factory=dict)               # TrainConfig overrides (amp, compile...)
    profile_overrides: dict = field(default_factory=dict)   # any profile field
    tag: str = ""                          # free text; part of the hash

    def __post_init__(self):
        """Fail when the config is built, naming the field, not after an epoch of training."""
        if self.head not in HEAD_TARGETS:
            raise ValueError(f"ExperimentConfig.head must be one of {sorted(HEAD_TARGETS)}, got {self.head!r}")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"ExperimentConfig.{name} must be an integer >= 1 or None, got {value!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"ExperimentConfig.seed must be an integer >= 0, got {self.seed!r}")
        elsewhere = sorted(set(self.train) & TRAIN_KNOBS_ELSEWHERE)
        if elsewhere:   # one place per knob: ``train={'epochs': N}`` used to skip the milestone rescaling
            raise ValueError(f"ExperimentConfig.train must not set {elsewhere}: use the config's own "
                             f"fields (epochs, batch_size, lr, weight_decay, recipe, seed) or "
                             f"profile_overrides={{'lr_milestones': ...}}")

    @classmethod
    def from_dict(cls, data: dict) -> "ExperimentConfig":
        """Inverse of ``dataclasses.asdict`` (nested teachers / init_from, tuples restored)."""
        data = dict(data)
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise KeyError(f"ExperimentConfig has no field(s) {sorted(unknown)}")
        data["teachers"] = {k: (CheckpointRef.from_dict(v) if CheckpointRef.is_ref_dict(v) else cls.from_dict(v))
                            if isinstance(v, dict) else v for k, v in data.get("teachers", {}).items()}
        if isinstance(data.get("init_from"), dict):
            data["init_from"] = cls.from_dict(data["init_from"])
        if data.get("input_size") is not None:
            data["input_size"] = tuple(data["input_size"])
        return cls(**data)

    def resolved_profile(self) -> dict:
        overrides = dict(self.profile_overrides)
        for name in ("epochs", "batch_size"):
            if getattr(self, name) is not None:
                overrides[name] = getattr(self, name)
        return get_profile(self.profile, **overrides)


def config_hash(cfg: ExperimentConfig) -> str:
    """12 hex digits of the config, its resolved profile, its data (``data_fingerprint``), its
    teachers' and init run's hashes (a checkpoint teacher: its file's SHA-256), the SHA-256 of a
    ``pretrained`` file, the network's ``ARCHITECTURE_VERSIONS`` entry and ``RESULTS_VERSION``, without what cannot change the result (``paper``
    labels, progress bars, the profile's list of seeds)."""
    config = {k: v for k, v in asdict(cfg).items() if k not in ("paper", "teachers", "init_from")}
    config["train"] = {k: v for k, v in config["train"].items() if k != "show_progress"}
    config["teachers"] = {name: t.fingerprint() if isinstance(t, CheckpointRef) else config_hash(t)
                          for name, t in cfg.teachers.items()}
    config["init_from"] = config_hash(cfg.init_from) if cfg.init_from else None
    profile = cfg.resolved_profile()
    payload = {"config": config, "profile": {k: v for k, v in profile.items() if k != "seeds"},
               "data": data_fingerprint(cfg, profile), "results_version": RESULTS_VERSION}
    from kdlib.models import ARCHITECTURE_VERSIONS
    if cfg.model in ARCHITECTURE_VERSIONS:  # only then: other networks' run keys stay
        payload["architecture"] = ARCHITECTURE_VERSIONS[cfg.model]
    weights = weights_fingerprint(cfg)
    if weights:                             # only then: the keys of runs without weight files stay
        payload["weights"] = weights
    text = json.dumps(payload, sort_keys=True, default=list)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def runs_root() -> Path:
    return Path(os.environ.get("KDLIB_RUNS", REPO_ROOT / "runs"))


def run_dir_of(cfg: ExperimentConfig) -> Path:
    return runs_root() / cfg.profile / config_hash(cfg)


@contextmanager
def file_lock(path: Path, blocking: bool = True):
    """Exclusive ``fcntl.flock`` on ``path``; yields whether it is held (always, when ``blocking``:
    waits for the holder to release it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ----------------------------------------------------------------------------- builders
def input_size_for(cfg: ExperimentConfig, profile: dict, dataset: str | None = None) -> tuple[int, int]:
    """(H, W) of ``cfg``'s crops of ``dataset`` (default ``cfg.dataset``): its own override, else the
    profile's size for that dataset, else the profile's ``default``."""
    sizes = profile["input_size"]
    return tuple(cfg.input_size or sizes.get(dataset or cfg.dataset, sizes["default"]))


def pipeline_config(cfg: ExperimentConfig, profile: dict, dataset: str, train: bool):
    from kdlib.data import PipelineConfig
    from kdlib.data.topdown import PAPER_PIPELINES
    base = dict(PAPER_PIPELINES.get(dataset, {}))
    base.update(input_size=input_size_for(cfg, profile, dataset), targets=HEAD_TARGETS[cfg.head], train=train)
    base.update(cfg.pipeline)
    return PipelineConfig(**base)


def plain_dataset_args(cfg: ExperimentConfig, split: str) -> tuple[str, dict]:
    """(dataset name, loader kwargs) that ``build_plain_dataset`` uses for ``split``."""
    is_val = split == cfg.val_split
    name = cfg.val_dataset if is_val and cfg.val_dataset else cfg.dataset
    return name, {**cfg.dataset_params, **(cfg.val_dataset_params if is_val else {})}


def build_plain_dataset(cfg: ExperimentConfig, profile: dict, split: str, pipeline):
    """``kdlib.data.build_dataset`` on ``<data_root>/<dataset>``."""
    from kdlib.data import build_dataset
    name, params = plain_dataset_args(cfg, split)
    return build_dataset(name, split, dataset_root(profile, name), pipeline, **params)


def build_model_student(cfg: ExperimentConfig, profile: dict, num_joints: int, input_size,
                        init_checkpoint: str | None):
    """``kdlib.models.build_model`` with the profile's variant; weights from ``init_checkpoint``."""
    from kdlib.models import build_model
    params = dict(cfg.model_params)
    if "simcc_split_ratio" in cfg.pipeline:
        params.setdefault("simcc_split_ratio", cfg.pipeline["simcc_split_ratio"])
    model = build_model(cfg.model, num_joints, head=cfg.head, input_size=tuple(input_size),
                        variant=profile["model_variant"], **params)
    if init_checkpoint is not None:
        load_model_weights(model, init_checkpoint)
    return model


DATASET_BUILDERS = {}                      # name -> builder; default: build_plain_dataset
STUDENT_BUILDERS = {"model": build_model_student}
from kdlib.models.igp_gcn import build_refiner_student  # noqa: E402
STUDENT_BUILDERS["igp_gcn"] = build_refiner_student   # TwoStage-GCN stage 2: frozen student + IGP-GCN
from kdlib.data.unified import build_unified_dataset  # noqa: E402
DATASET_BUILDERS["unified"] = build_unified_dataset   # Unified-MT: joint COCO+MPII, 21 points


# ----------------------------------------------------------------------------- data fingerprint
def annotation_files(name: str, split: str, root: Path, params: dict) -> list[Path]:
    """The annotation files ``build_dataset(name, split, root, **params)`` reads (not the images)."""
    from kdlib.data.formats import coco, crowdpose, halpe, mpii
    if name == "coco":
        files = [coco.coco_paths(root, split)[0]]
        if params.get("boxes") == "det":
            files.append(Path(params.get("det_file") or root / coco.DET_FILE))
        return files
    if name == "mpii":
        ann_file = mpii.mpii_paths(root, split)[0]
        return [ann_file] + ([ann_file.parent / "gt_valid.mat"] if ann_file.stem == "valid" else [])
    paths = {"crowdpose": crowdpose.crowdpose_paths, "halpe": halpe.halpe_paths}
    return [paths[name](root, split)[0]] if name in paths else []


def unified_files(cfg: ExperimentConfig, profile: dict, split: str) -> list[Path]:
    """``DATASET_BUILDERS['unified']`` reads its sources' plain annotation files."""
    sources = cfg.dataset_params.get("sources", ("coco", "mpii"))
    return [f for name in sources for f in annotation_files(name, split, dataset_root(profile, name), {})]


# name -> fn(cfg, profile, split) -> [Path]: the files a DATASET_BUILDERS entry reads (none if absent)
DATASET_FILES = {"unified": unified_files}


def data_files(cfg: ExperimentConfig, profile: dict) -> dict[str, list[Path]]:
    """{'train': [...], 'val': [...]}: the annotation files ``build_datasets`` reads."""
    out = {}
    for role, split, name in (("train", cfg.train_split, cfg.dataset),
                              ("val", cfg.val_split, cfg.val_dataset or cfg.dataset)):
        if name in DATASET_BUILDERS:
            out[role] = DATASET_FILES[name](cfg, profile, split) if name in DATASET_FILES else []
        else:
            plain, params = plain_dataset_args(cfg, split)
            out[role] = annotation_files(plain, split, dataset_root(profile, plain), params)
    return out


def data_fingerprint(cfg: ExperimentConfig, profile: dict | None = None) -> dict:
    """The data part of a run's hash: ``{'synthpose_version': N}`` for SynthPose (its generator
    arguments are in the profile), else per role [file name, size, SHA-1] of each annotation file
    (size and SHA-1 None for a missing file; training then stops naming it)."""
    profile = profile or cfg.resolved_profile()
    if profile.get("synthpose") is not None:
        from kdlib.data.synthpose.generate import VERSION
        return {"synthpose_version": VERSION}
    return {role: [_file_entry(f) for f in files] for role, files in data_files(cfg, profile).items()}


def _file_entry(path: Path) -> list:
    try:
        return [path.name, path.stat().st_size, file_sha1(path)]
    except FileNotFoundError:
        return [path.name, None, None]


def build_datasets(cfg: ExperimentConfig, profile: dict):
    """(train set, val set, the student's input size (H, W))."""
    builder = DATASET_BUILDERS.get(cfg.dataset, build_plain_dataset)
    val_name = cfg.val_dataset or cfg.dataset
    train_pipeline = pipeline_config(cfg, profile, cfg.dataset, True)
    train_set = builder(cfg, profile, cfg.train_split, train_pipeline)
    val_builder = DATASET_BUILDERS.get(val_name, build_plain_dataset)
    val_set = val_builder(cfg, profile, cfg.val_split, pipeline_config(cfg, profile, val_name, False))
    return train_set, val_set, tuple(train_pipeline.input_size)


def build_student(cfg: ExperimentConfig, profile: dict, num_joints: int, input_size,
                  init_checkpoint: str | None = None):
    if cfg.student_builder not in STUDENT_BUILDERS:
        raise KeyError(f"unknown student_builder {cfg.student_builder!r}; known: {sorted(STUDENT_BUILDERS)}")
    return STUDENT_BUILDERS[cfg.student_builder](cfg, profile, num_joints, input_size, init_checkpoint)


def load_trained(result: dict) -> torch.nn.Module:
    """Rebuild the network of a finished run and load its final weights (eval mode). A
    ``CheckpointRef`` (what ``run_experiment`` returns for one) is built frozen from its file."""
    if isinstance(result, CheckpointRef):
        return result.build(result.num_joints, result.input_size)
    cfg = ExperimentConfig.from_dict(result["config"])
    model = build_student(cfg, cfg.resolved_profile(), result["num_joints"], result["input_size"])
    load_model_weights(model, result["checkpoint"])
    return model.eval()


# ----------------------------------------------------------------------------- running
def train_config(cfg: ExperimentConfig, profile: dict) -> TrainConfig:
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    extra = {k: v for k, v in cfg.train.items() if k != "ddp"}
    unknown = set(extra) - fields
    if unknown:
        raise KeyError(f"ExperimentConfig.train: unknown TrainConfig field(s) {sorted(unknown)}")
    base = dict(epochs=profile["epochs"], batch_size=profile["batch_size"], recipe=cfg.recipe,
                lr=cfg.lr, weight_decay=cfg.weight_decay, lr_milestones=tuple(profile["lr_milestones"]),
                lr_gamma=profile["lr_gamma"], warmup_iters=profile["warmup_iters"],
                val_every=profile["val_every"], num_workers=profile["num_workers"],
                device=profile["device"], seed=cfg.seed)
    base.update(extra)
    return TrainConfig(**base)


def ensure_data(profile: dict) -> None:
    """Generate the profile's SynthPose once (no-op for real data: ``synthpose`` is None)."""
    if profile.get("synthpose") is not None:
        from kdlib.data.synthpose import ensure_root
        root = Path(profile["data_root"])
        ensure_root(root if root.is_absolute() else REPO_ROOT / root, profile["synthpose"])


@dataclass
class Run:
    """Everything ``fit`` needs for one config, built as ``run_experiment`` builds it."""
    train_set: object
    val_set: object
    input_size: tuple
    teachers: dict
    student: torch.nn.Module
    method: torch.nn.Module
    train_cfg: TrainConfig


def build_run(cfg: ExperimentConfig, teacher_results: dict, init_result: dict | None) -> Run:
    """Data, frozen teachers, student and method of ``cfg``.

    Pairing by seed: the student is built right after ``seed_everything(cfg.seed)``, so every
    config with the same student, head, input size and seed starts from identical weights, whatever
    its method or teachers; ``fit`` reseeds before training, and the loader's order depends on
    (seed, epoch) only, so such rows also see the same batches (and the same augmentation unless a
    method draws random numbers of its own).
    """
    profile = cfg.resolved_profile()
    ensure_data(profile)
    train_set, val_set, input_size = build_datasets(cfg, profile)
    teachers = {name: res.build(train_set.skeleton.num_joints, input_size) if isinstance(res, CheckpointRef)
                else load_trained(res) for name, res in teacher_results.items()}
    seed_everything(cfg.seed)
    init = init_result["checkpoint"] if init_result else None
    student = build_student(cfg, profile, train_set.skeleton.num_joints, input_size, init)
    method = build_method(cfg.method, cfg.method_params, student, teachers, train_set)
    return Run(train_set, val_set, input_size, teachers, student, method, train_config(cfg, profile))


def _train(cfg: ExperimentConfig, run_dir: Path, teacher_results: dict, init_result: dict | None,
           show_progress: bool = True, cell_bar=None) -> dict:
    """Build data, teachers, student and method; fit; return the result dict (not yet stored)."""
    from kdlib.models import summary
    run = build_run(cfg, teacher_results, init_result)
    tcfg = run.train_cfg
    tcfg.show_progress = tcfg.show_progress and show_progress
    tcfg.progress_label = f"{cfg.model} {cfg.method} seed {cfg.seed}"
    out = fit(run.student, run.method, run.train_set, run.val_set, tcfg, run_dir, run.teachers,
              config=asdict(cfg), cell_bar=cell_bar)
    cost = summary(run.student.to("cpu").eval(), run.input_size)
    return {"config": asdict(cfg), "hash": run_dir.name, "metrics": out["metrics"],
            "best": out["best"], "history": out["history"], "train_time_s": out["train_time_s"],
            "diverged": out["diverged"], **cost,
            "num_joints": run.train_set.skeleton.num_joints, "input_size": list(run.input_size),
            "run_dir": str(run_dir), "checkpoint": out["checkpoint"],
            "best_checkpoint": out["best_checkpoint"], "epochs": tcfg.epochs, "device": tcfg.device,
            "world_size": ddp.current().world_size, "data": data_fingerprint(cfg)}


def _store(run_dir: Path, result: dict) -> None:
    atomic_write_text(run_dir / "result.json", json.dumps(result, indent=1, default=list))


def _wants_torchrun(cfg: ExperimentConfig, profile: dict) -> int:
    """Number of processes to launch (0: train in this process)."""
    if ddp.launched_by_torchrun() or not cfg.train.get("ddp", True):
        return 0
    if not str(profile["device"]).startswith("cuda") or torch.cuda.device_count() < 2:
        return 0
    return torch.cuda.device_count()


def _launch_torchrun(cfg: ExperimentConfig, run_dir: Path, nproc: int) -> dict:
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "config.json"
    atomic_write_text(config_path, json.dumps(asdict(cfg), indent=1, default=list))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", "-m", "kdlib.experiment", "--config", str(config_path)]
    subprocess.run(command, check=True, cwd=REPO_ROOT)
    result = read_json(run_dir / "result.json", _result_problem)
    if result is None:
        raise FileNotFoundError(f"torchrun finished without writing {run_dir / 'result.json'}")
    return result


RESULT_KEYS = ("config", "metrics", "checkpoint", "run_dir")


def _result_problem(result) -> str | None:
    """Why a parsed ``result.json`` cannot be a run's result (None when it can)."""
    if not isinstance(result, dict):
        return f"expected a JSON object, got {type(result).__name__}"
    missing = [k for k in RESULT_KEYS if k not in result]
    return f"missing the key(s) {missing}" if missing else None


def stored_result(run_dir: Path) -> dict | None:
    """``run_dir``'s result.json, None when absent or corrupt (hold the run's lock: a corrupt one
    is moved to ``run_dir/corrupt-<time>/`` with a warning, so that the run recomputes it)."""
    return read_json_or_isolate(run_dir / "result.json", _result_problem)


def cached_result(cfg: ExperimentConfig) -> dict | None:
    """The stored result of ``cfg`` if some process already finished it, else None (never trains).

    A corrupt result.json counts as absent: it is moved aside at once when no process holds the
    run, else the run recomputes it (``run_experiment``)."""
    if isinstance(cfg, CheckpointRef):     # a released teacher: "finished" when its file is there
        return None if cfg.problem() else cfg
    run_dir = run_dir_of(cfg)
    try:
        return read_json(run_dir / "result.json", _result_problem)
    except CorruptFileError as err:
        with file_lock(run_dir.parent / f"{run_dir.name}.lock", blocking=False) as held:
            if held:
                return stored_result(run_dir)
        warnings.warn(f"{err} Treated as not run; run_experiment moves it aside and recomputes it.",
                      stacklevel=2)
        return None


def _isolate_corrupt_checkpoint(run_dir: Path) -> None:
    """Move an unreadable or checksum-failing ``last.pt`` aside so that the run restarts."""
    path = run_dir / "last.pt"
    if path.is_file():
        try:
            load_checkpoint(path)
        except CheckpointError as err:
            quarantine(path, err.problem)


def run_experiment(cfg: ExperimentConfig, show_progress: bool = True, cell_bar=None) -> dict:
    """Train ``cfg`` (teachers / init first) unless its cached result exists; return the result.

    Result: ``metrics`` (validation split, final weights), ``best`` (best validation epoch),
    ``params_M``/``gflops_paper``/``gflops_true`` (``kdlib.models.summary``), ``train_time_s``
    (summed over epochs, across resumes), ``run_dir``, ``checkpoint``, ``config``, ...
    A ``CheckpointRef`` (a released teacher) needs no run: it is returned as it is. ``cell_bar``:
    a bar counting runs that each run this trains advances (``kdlib.train.trainer.fit``).
    """
    if not isinstance(cfg, (ExperimentConfig, CheckpointRef)):
        raise TypeError(f"run_experiment expects an ExperimentConfig or a CheckpointRef, got {type(cfg).__name__}")
    missing = weights_problems(cfg)
    if missing:
        raise FileNotFoundError("missing weight files; nothing was trained:\n- " + "\n- ".join(missing))
    if isinstance(cfg, CheckpointRef):
        return cfg
    teacher_results = {name: run_experiment(t, show_progress, cell_bar) for name, t in cfg.teachers.items()}
    init_result = run_experiment(cfg.init_from, show_progress, cell_bar) if cfg.init_from else None
    run_dir = run_dir_of(cfg)
    if ddp.launched_by_torchrun():        # the launching process holds the lock (and checked)
        result = read_json(run_dir / "result.json", _result_problem)
        if result is not None:
            return result
        return _train_and_store(cfg, run_dir, teacher_results, init_result, show_progress, cell_bar)
    with file_lock(run_dir.parent / f"{run_dir.name}.lock"):
        result = stored_result(run_dir)
        if result is not None:
            return result
        remove_stale_tmp(run_dir)        # left by a writer killed mid-write
        _isolate_corrupt_checkpoint(run_dir)
        nproc = _wants_torchrun(cfg, cfg.resolved_profile())
        if nproc:
            return _launch_torchrun(cfg, run_dir, nproc)
        return _train_and_store(cfg, run_dir, teacher_results, init_result, show_progress, cell_bar)


def _train_and_store(cfg, run_dir, teacher_results, init_result, show_progress, cell_bar=None) -> dict:
    result = _train(cfg, run_dir, teacher_results, init_result, show_progress, cell_bar)
    if ddp.current().is_main:
        _store(run_dir, result)
    ddp.barrier()
    return result


def main(argv=None) -> None:
    """``torchrun ... -m kdlib.experiment --config config.json``: one DDP run of a stored config."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--config", required=True, help="JSON of an ExperimentConfig (asdict)")
    args = parser.parse_args(argv)
    cfg = ExperimentConfig.from_dict(json.loads(Path(args.config).read_text()))
    ddp.setup_distributed()
    try:
        run_experiment(cfg, show_progress=ddp.current().is_main)
    finally:
        ddp.cleanup()


if __name__ == "__main__":
    main()
