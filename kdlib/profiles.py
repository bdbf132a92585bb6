"""Run profiles: one code path, five scales. A profile is a plain mapping of sizes, epochs, data
roots and models; ``get_profile(name, **overrides)`` returns a copy with any field overridden (a
notebook's papermill parameters pass straight through).

| profile   | purpose                                                   | data                       |
|-----------|-----------------------------------------------------------|----------------------------|
| smoke     | CI: seconds per run, numbers meaningless                  | tiny SynthPose             |
| quick     | README main job: each headline table, 2 paired seeds       | small SynthPose (600 images) |
| classroom | every table, 3 seeds, small scale on a CPU                | small SynthPose            |
| gpu       | papers' input sizes and architectures on one GPU          | large SynthPose            |
| paper     | the papers' full protocol on the real datasets            | ``data/<dataset>/``        |

Fields:
- ``data_root``: directory holding ``coco/ mpii/ crowdpose/ halpe/`` (relative to the repo root).
- ``synthpose``: exactly the SynthPose generator's keyword arguments (``num_train``, ``num_val``,
  ``image_size`` (H, W), ``seed``), read by ``kdlib.data.synthpose.ensure_synthpose``; ``None``
  for ``paper`` (real data, nothing to generate).
- ``input_size``: (H, W) per dataset; ``default`` for datasets not listed (e.g. joint sets).
  Paper: 256x192 for COCO/CrowdPose/Halpe and 256x256 for MPII (HRNet, SimCC, RTMPose setups).
- ``model_variant``: passed to ``kdlib.models.build_model(..., variant=...)``.
- ``epochs``, ``lr_milestones``: the papers train 210 epochs with step decay x0.1 at 170 and 200
  (HRNet / Simple Baselines); smaller profiles scale the milestones by the same fractions.
- ``teacher_epochs``: the epochs of a teacher the kit trains itself (``kdlib.teachers``). The papers
  distil from converged, released teachers; on the small profiles a teacher trained as long as its
  students is barely better than them, so it trains longer (trained once per profile, cached).
- ``warmup_iters``: linear warm-up of the AdamW + cosine recipe (RTMPose: 1000 iterations).
- ``batch_size`` (per process), ``val_every`` (epochs), ``seeds``, ``num_workers``, ``device``.
"""
from __future__ import annotations

import copy
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]

PAPER_EPOCHS = 210                    # HRNet / SBL / SimCC / Lite-HRNet schedules
PAPER_MILESTONES = (170, 200)         # x0.1 step decay (HRNet w32_256x192_adam_lr1e-3)


def scaled_milestones(epochs: int, milestones: tuple[int, ...] = PAPER_MILESTONES,
                      of_epochs: int = PAPER_EPOCHS) -> tuple[int, ...]:
    """``milestones`` of an ``of_epochs`` schedule (default: the paper's 170/200 of 210) at the same
    fractions of ``epochs``, kept inside the run (at least one decay whenever there are two epochs,
    so short runs still exercise milestone hooks)."""
    if epochs < 2:
        return ()
    return tuple(sorted({min(epochs - 1, max(1, round(epochs * m / of_epochs))) for m in milestones}))


def _input_sizes(coco: tuple[int, int], mpii: tuple[int, int]) -> dict[str, tuple[int, int]]:
    return {"coco": coco, "crowdpose": coco, "halpe": coco, "mpii": mpii, "default": coco}


def _profile(data_root, synthpose, input_size, model_variant, epochs, batch_size, val_every,
             seeds, num_workers, warmup_iters, teacher_epochs=None) -> dict:
    return dict(data_root=data_root, synthpose=synthpose, input_size=input_size,
                model_variant=model_variant, epochs=epochs, lr_milestones=scaled_milestones(epochs),
                teacher_epochs=teacher_epochs or epochs,
                lr_gamma=0.1, warmup_iters=warmup_iters, batch_size=batch_size,
                val_every=val_every, seeds=seeds, num_workers=num_workers,
                device="cuda" if torch.cuda.is_available() else "cpu")


# Sizes come from training throughput measured on an idle 2-core CPU (2 threads, batch 32,
# classroom variants): at 128x96 SBL-R50 ~190 images/s, HRNet-W32 ~100, Lite-HRNet-18 ~90,
# Hourglass-4 (128x128) ~70, RTMPose-t ~240; at 64x48 roughly twice that. Classroom: ~2250 person
# crops x 20 epochs (~1400 steps) at 128x96 = 5-10 minutes per run; 20 rather than 10 epochs
# because from scratch the networks spend their first ~700 steps near the mean pose (measured:
# SBL-R50 7.9 AP at 750 steps, 14.4 at 1500; README "Measured on SynthPose"). Quick: its own
# 600-image SynthPose (~1200 crops) at 64x48 for 4 epochs = well under a minute per run, so that the ~25 runs of the five
# headline tables fit the ~20 minutes of the README main job.
_CLASSROOM_DATA = dict(num_train=1200, num_val=200, image_size=(192, 256), seed=0)

PROFILES: dict[str, dict] = {
    "smoke": _profile("data/synthpose/smoke", dict(num_train=24, num_val=12, image_size=(96, 128), seed=0),
                      _input_sizes((64, 48), (64, 64)), "smoke", epochs=2, batch_size=8,
                      val_every=1, seeds=(0,), num_workers=0, warmup_iters=2),
    "quick": _profile("data/synthpose/quick", dict(num_train=600, num_val=150, image_size=(192, 256), seed=0),
                      _input_sizes((64, 48), (64, 64)), "classroom", epochs=4, batch_size=32,
                      val_every=4, seeds=(0, 1), num_workers=1, warmup_iters=20, teacher_epochs=12),
    "classroom": _profile("data/synthpose/classroom", dict(_CLASSROOM_DATA),
                          _input_sizes((128, 96), (128, 128)), "classroom", epochs=20, batch_size=32,
                          val_every=5, seeds=(0, 1, 2), num_workers=1, warmup_iters=100,
                          teacher_epochs=60),
    "gpu": _profile("data/synthpose/gpu", dict(num_train=40000, num_val=2000, image_size=(480, 640), seed=0),
                    _input_sizes((256, 192), (256, 256)), "paper", epochs=60, batch_size=64,
                    val_every=5, seeds=(0, 1, 2), num_workers=8, warmup_iters=500,
                    teacher_epochs=120),
    "paper": _profile("data", None, _input_sizes((256, 192), (256, 256)), "paper",
                      epochs=PAPER_EPOCHS, batch_size=32, val_every=10, seeds=(0,), num_workers=8,
                      warmup_iters=1000),
}


def get_profile(name: str, **overrides) -> dict:
    """A deep copy of ``PROFILES[name]`` with ``overrides`` applied.

    Unknown field names raise (a typo in a notebook parameter must not pass silently). Overriding
    ``epochs`` rescales ``lr_milestones`` unless those are overridden too.
    """
    if name not in PROFILES:
        raise KeyError(f"unknown profile {name!r}; expected one of {sorted(PROFILES)}")
    profile = copy.deepcopy(PROFILES[name])
    unknown = set(overrides) - set(profile)
    if unknown:
        raise KeyError(f"profile {name!r} has no field(s) {sorted(unknown)}; fields: {sorted(profile)}")
    if "epochs" in overrides and "lr_milestones" not in overrides:
        overrides["lr_milestones"] = scaled_milestones(overrides["epochs"])
    profile.update(copy.deepcopy(overrides))
    profile["name"] = name
    return profile


def dataset_root(profile: dict, name: str) -> Path:
    """``<data_root>/<name>`` (relative data roots are relative to the repository)."""
    root = Path(profile["data_root"])
    return (root if root.is_absolute() else REPO_ROOT / root) / name
