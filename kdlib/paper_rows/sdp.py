"""SDP's experiment behind a table row (``notebooks/01_sdp.ipynb``, ``kdlib/paper_tables/sdp.py``).

- ``row_config``: the notebook's papermill parameters -> ``ExperimentConfig`` (built by
  ``kdlib.paper_tables.sdp.experiment_config``: the paper's training settings on the ``paper`` /
  ``gpu`` profiles, FPD with its Hourglass-8 teacher, detector boxes, the host buffer).
- ``row_metrics``: a finished run -> the numbers a table row reads. FPD's training time and GFLOPs
  include its teacher's, as in the paper's Table 3 ("51h" for FPD counts the teacher's training).
- ``cached_row_metrics``: the same for a run already in the cache, else None (never trains).
"""
from __future__ import annotations

from kdlib.experiment import cached_result, run_experiment
from kdlib.methods.fpd import KD_ALPHA
from kdlib.methods.sdp import ALPHA, DISTANCE
from kdlib.paper_tables.sdp import experiment_config

__all__ = ['row_config', 'row_metrics', 'cached_row_metrics']


def row_config(profile: str, network: str = 'sbl_r50', method: str = 'sdp', dataset: str = 'mpii',
               seed: int = 0, alpha: float = ALPHA, s: int = DISTANCE, stepping: bool = True,
               teacher: str = 'hourglass8', kd_alpha: float = KD_ALPHA, track_index: int = 0,
               val_boxes: str = 'gt', host_buffer: bool = False):
    """The ExperimentConfig of one table row from the notebook's papermill parameters
    (``kdlib.paper_tables.sdp.experiment_config``)."""
    return experiment_config(profile, seed, network, method, dataset, alpha, s, stepping, teacher,
                             kd_alpha, val_boxes=val_boxes, host_buffer=host_buffer,
                             track_index=track_index)


def row_metrics(cfg, result: dict, teacher_results: list[dict] | None = None) -> dict[str, float]:
    """Validation metrics + cost of a finished run, under the table columns' names.

    ``train_time_s`` / ``train_time_h`` and ``GFLOPs`` (paper convention) include the teachers'
    (FPD, Table 3); ``teacher_results`` defaults to running (i.e. reading the cache of) the
    config's teachers.
    """
    metrics = {k: float(v) for k, v in result['metrics'].items()}
    teachers = teacher_results if teacher_results is not None else \
        [run_experiment(t, show_progress=False) for t in cfg.teachers.values()]
    # A released teacher (``paper`` profile: a CheckpointRef) was not trained here: its training
    # time is unknown to the kit and left out (``released_teachers`` counts them), as are its FLOPs.
    released = [t for t in teachers if not isinstance(t, dict)]
    teachers = [t for t in teachers if isinstance(t, dict)]
    time_s = result['train_time_s'] + sum(t['train_time_s'] for t in teachers)
    metrics.update(train_time_s=time_s, train_time_h=time_s / 3600,
                   GFLOPs=result['gflops_paper'] + sum(t['gflops_paper'] for t in teachers),
                   student_train_time_s=result['train_time_s'], params_M=result['params_M'],
                   released_teachers=float(len(released)))
    return metrics


def cached_row_metrics(cfg) -> dict[str, float] | None:
    """``row_metrics`` of a run (and its teachers) already in the run cache, else None (never trains)."""
    result = cached_result(cfg)
    teachers = [cached_result(t) for t in cfg.teachers.values()]
    if result is None or any(t is None for t in teachers):
        return None
    return row_metrics(cfg, result, teachers)
