"""SynthPose's difficulty, measured: does a large network beat a small one, without saturating?

    python -m kdlib.studies.difficulty --profile classroom     # trains (or reuses) the runs, prints the table

Every distillation paper in the kit needs a teacher/student gap. This command trains large and small
networks of the zoo (``PAIR``) with plain supervision on SynthPose COCO at the profile's
size and schedule, through ``run_experiment`` (so runs are cached under ``runs/<profile>/``). It
prints COCO AP, AP50, AP75 and AR beside the *decoding ceiling*: the AP of the ground truth itself
encoded as heatmaps and decoded at the same input size, which bounds what any heatmap network can
reach there. The table goes to ``results/<profile>/difficulty_seed<seed>.csv`` (atomically).
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from kdlib.experiment import ExperimentConfig, build_datasets, ensure_data, run_experiment
from kdlib.cells import results_dir
from kdlib.train.checkpoint import atomic_write_text

# Teachers and a student of the papers; the gap printed is 'large' minus 'small'.
PAIR = {"large": "sbl_r50", "large (HRNet)": "hrnet_w32", "small": "litehrnet_18"}
COLUMNS = ("AP", "AP50", "AP75", "AR")


def decoding_ceiling(profile: str, dataset: str = "coco") -> dict[str, float]:
    """COCO metrics of the val ground truth encoded as heatmap targets and decoded again."""
    import torch

    from kdlib.decode import decode_heatmaps, to_original
    cfg = ExperimentConfig(profile=profile, dataset=dataset)
    resolved = cfg.resolved_profile()
    ensure_data(resolved)
    _, val_set, _ = build_datasets(cfg, resolved)
    coords, scores = [], []
    for i in range(len(val_set)):
        sample = val_set[i]
        xy, score = decode_heatmaps(torch.from_numpy(sample["heatmap"])[None])  # (1, K, 2), (1, K)
        coords.append(to_original(xy.numpy(), sample["center"][None], sample["scale"][None],
                                  tuple(sample["image"].shape[-2:]))[0])
        scores.append(score[0].numpy())
    return val_set.evaluate(np.stack(coords), np.stack(scores), np.arange(len(val_set)))


def difficulty_table(profile: str = "classroom", seed: int = 0, show_progress: bool = True) -> pd.DataFrame:
    """One row per network of ``PAIR`` plus the decoding ceiling; COCO metrics in percent."""
    rows = {}
    for role, model in PAIR.items():
        result = run_experiment(ExperimentConfig(paper="difficulty", profile=profile, dataset="coco",
                                                 model=model, seed=seed), show_progress=show_progress)
        row = {k: result["metrics"][k] for k in COLUMNS}
        row.update(params_M=result["params_M"], train_time_min=result["train_time_s"] / 60)
        rows[f"{role}: {model}"] = row
    ceiling = decoding_ceiling(profile)
    rows["decoding ceiling (GT targets)"] = {k: ceiling[k] for k in COLUMNS}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = f"SynthPose COCO val, {profile} profile, seed {seed}"
    return table


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="classroom")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    table = difficulty_table(args.profile, args.seed)
    path = results_dir(args.profile) / f"difficulty_seed{args.seed}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, table.to_csv(float_format="%.2f"))
    large, small = table.loc[f"large: {PAIR['large']}", "AP"], table.loc[f"small: {PAIR['small']}", "AP"]
    print(table.round(2).to_string())
    print(f"large - small: {large - small:+.2f} AP; large / ceiling: {large / table['AP'].iloc[-1]:.2f}")
    print(f"written: {path}")


if __name__ == "__main__":
    main()
