"""The one teacher picker: every paper's teacher run is made by ``teacher_run``.

The papers distil from converged teachers (released checkpoints, trained for their full schedules).
Where the kit trains a teacher itself, the teacher of a table is:

- trained once per profile, at ``TEACHER_SEED``: one teacher serves every student seed, so the
  paired rows of a table (same seed) differ only in what the method does with that one teacher;
- trained for the profile's ``teacher_epochs`` (``kdlib.profiles``; its step milestones at the same
  fractions of the longer schedule). On the small profiles a teacher trained as long as its students
  is barely better than them (``quick``, before: HRNet-W32 12.75 vs ELPN-V1 12.0 PCKh), and nothing
  can be distilled from it. A recipe that fixes its own epochs (the ``paper`` profile's) is kept.

On the ``paper`` profile a teacher the papers took from a release is that release
(``RELEASED``: a ``CheckpointRef`` keyed by the file's SHA-256, loaded frozen through
``kdlib.models.checkpoints``); ``run_experiment`` stops before any training when the file is
missing, naming it and where to put it. A table row that *shows* the teacher (ELPN-MAPD's HRNet-W32,
TwoStage-GCN's SimCC-W48) is a run the kit trains (``released=False``).
"""
from __future__ import annotations

import dataclasses

from kdlib.experiment import ExperimentConfig
from kdlib.models.pretrained import CheckpointRef
from kdlib.profiles import get_profile, scaled_milestones

TEACHER_SEED = 0
_HRNET_ZOO = "HRNet model zoo (github.com/HRNet/HRNet-Human-Pose-Estimation README, Google Drive / OneDrive)"
_SIMCC_ZOO = "SimCC release (github.com/leeyegy/SimCC README, Google Drive folder 1HtIkWDpHasULk_MArlGLtyf-XRAyAsuP)"
_RTMPOSE = "https://download.openmmlab.com/mmpose/v1/projects/rtmposev1/"
# (network, head, dataset) -> (file under weights/, where it is published, its input size or None)
RELEASED = {
    ("hourglass8", "heatmap", "mpii"): (
        "hg_s8_b1/model_best.pth.tar", "FPD's Hourglass-8 (github.com/yuanyuanli85/Fast_Human_Pose_"
        "Estimation_Pytorch README, Google Drive 1yzR8UwhklJTMMJEtjK10oyYG1tVRtkqi)", None),
    ("hrnet_w32", "heatmap", "coco"): ("pose_hrnet_w32_256x192.pth", _HRNET_ZOO, None),
    ("hrnet_w32", "heatmap", "mpii"): ("pose_hrnet_w32_256x256.pth", _HRNET_ZOO, None),
    ("hrnet_w32", "simcc", "mpii"): ("simdr_hrnet_w32_mpii_256x256.pth", _SIMCC_ZOO, None),
    ("hrnet_w48", "simcc", "coco"): ("simcc_hrnet_w48_coco_256x192.pth", _SIMCC_ZOO, None),
    ("rtmpose_m", "simcc", "coco"): (
        "rtmpose-m_simcc-coco_pt-aic-coco_420e-256x192-d8dd5ca4_20230127.pth", _RTMPOSE, None),
    ("rtmpose_m", "simcc", "mpii"): (
        "rtmpose-m_simcc-mpii_pt-aic-coco_210e-256x256-ec4dbec8_20230206.pth", _RTMPOSE, (256, 256)),
}


def released(cfg: ExperimentConfig) -> CheckpointRef | None:
    """The released checkpoint the papers distil from in ``cfg``'s place (None: none registered)."""
    entry = RELEASED.get((cfg.model, cfg.head, cfg.dataset))
    if entry is None:
        return None
    file, source, input_size = entry
    return CheckpointRef(file, cfg.model, head=cfg.head, model_params=dict(cfg.model_params),
                         input_size=input_size, source=source)


def teacher_run(cfg: ExperimentConfig, released_on_paper: bool = True) -> ExperimentConfig | CheckpointRef:
    """``cfg`` (a supervised run of the teacher network) as the table's teacher: on the ``paper``
    profile its release where one is registered (``released_on_paper``); otherwise a run at seed
    ``TEACHER_SEED`` for the profile's ``teacher_epochs`` unless ``cfg`` fixes its epochs."""
    release = released(cfg) if released_on_paper and cfg.profile == "paper" else None
    if release is not None:
        return release
    cfg = dataclasses.replace(cfg, seed=TEACHER_SEED)
    if cfg.epochs is not None or "epochs" in cfg.profile_overrides:
        return cfg                                  # the recipe's own schedule (paper profile)
    profile = get_profile(cfg.profile)
    epochs = profile["teacher_epochs"]
    if epochs == profile["epochs"]:
        return cfg
    overrides = dict(cfg.profile_overrides)
    if "lr_milestones" in overrides:                # a recipe's milestones, scaled to the student's
        overrides["lr_milestones"] = scaled_milestones(epochs, tuple(overrides["lr_milestones"]),
                                                       profile["epochs"])
    return dataclasses.replace(cfg, epochs=epochs, profile_overrides=overrides)
