"""Figures of the EKR notebook (``notebooks/03_enhanced_knowledge_review.ipynb``).

- ``simcc_distributions`` / ``plot_fig4``: the student's 1D x/y distributions for one keypoint
  before and after distillation, the teacher's, and the 1D Gaussian label (EKR Fig. 4).
- Fig. 4 as numbers over a validation set (mean peak probability, entropy):
  ``kdlib.evaluation.sharpness.simcc_sharpness`` (a table column, computed by the paper's table module).
- ``gamma_over_val`` / ``plot_gamma``: WA's attention weights gamma(s_m, t_l) as a teacher-stage x
  student-stage heatmap, averaged over the validation set and per training epoch.
- ``plot_mft_shares``: which MFT receptive-field branch carries the most weight, per teacher stage.
- ``plot_sensitivity``: the Fig. 5 alpha x beta grid as a seaborn heatmap.
- ``restore``: the method (WA, MFT, gamma history), student and teacher of a finished EKR run.
The tables: ``kdlib.figures.common.table_items('ekr', profile)``.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch

from kdlib.paper_tables import ekr as tables

__all__ = ['simcc_distributions', 'plot_fig4', 'gamma_over_val', 'plot_gamma', 'plot_mft_shares',
           'sensitivity_grid', 'plot_sensitivity', 'restore']


@torch.no_grad()
def simcc_distributions(models: dict, sample: dict, joint: int) -> dict[str, dict]:
    """{name: {'x': (W*k,), 'y': (H*k,)}} softmax distributions of one joint, plus the GT label."""
    image = torch.as_tensor(sample['image'])[None]                  # (1, 3, H, W)
    labels = {axis: torch.as_tensor(sample[f'simcc_{axis}'][joint]).float() for axis in 'xy'}
    out = {}
    for name, model in models.items():
        pred = model.eval()(image)
        out[name] = {axis: pred[f'simcc_{axis}'][0, joint].float().softmax(-1).numpy() for axis in 'xy'}
    out['1D Gaussian label'] = {axis: (v / v.sum().clamp_min(1e-12)).numpy() for axis, v in labels.items()}
    return out


def plot_fig4(dists: dict[str, dict], joint_name: str, split_ratio: float = 2.0):
    """Two panels (x, y): each distribution against input pixels, zoomed on the label's peak."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    styles = {'1D Gaussian label': dict(color='k', ls='--', lw=1.2)}
    for ax, axis in zip(axes, 'xy'):
        for name, d in dists.items():
            ax.plot(np.arange(len(d[axis])) / split_ratio, d[axis], label=name, **styles.get(name, {}))
        peak = np.argmax(dists['1D Gaussian label'][axis]) / split_ratio
        span = len(dists['1D Gaussian label'][axis]) / split_ratio
        ax.set_xlim(max(0, peak - span / 4), min(span, peak + span / 4))
        ax.set_xlabel(f'{axis} (input pixels)')
        ax.set_title(f'{joint_name}: {axis} distribution', fontsize=10)
    axes[0].set_ylabel('probability per bin')
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


@torch.no_grad()
def gamma_over_val(method, student, teacher, val_set, batch_size: int = 16, max_batches: int = 20):
    """Mean gamma (P,) of WA over (up to ``max_batches`` batches of) the validation set."""
    loader = torch.utils.data.DataLoader(val_set, batch_size=batch_size, shuffle=False)
    total, count = None, 0
    for i, batch in enumerate(loader):
        if i >= max_batches:
            break
        gamma = method.attention_weights(student.eval(), teacher.eval(), batch['image'])   # (B, P)
        total = gamma.sum(0) if total is None else total + gamma.sum(0)
        count += gamma.shape[0]
    return total / max(count, 1)


def plot_gamma(method, val_gamma, training: list[list[float]]):
    """Left: gamma on the validation set (teacher stage x student stage). Right: per-epoch gamma."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw=dict(width_ratios=(1, 1.4)))
    grid = method.gamma_matrix(val_gamma).numpy()
    sns.heatmap(pd.DataFrame(grid, index=[f't{l + 1}' for l in range(grid.shape[0])],
                             columns=[f's{m + 1}' for m in range(grid.shape[1])]),
                annot=True, fmt='.3f', cmap='viridis', ax=axes[0], cbar=False)
    axes[0].set_title('gamma(s_m, t_l), validation mean (blank: m < l)', fontsize=10)
    axes[0].set_xlabel('student stage m')
    axes[0].set_ylabel('teacher stage l')
    if training:
        labels = [f't{l + 1}-s{m + 1}' for l, m in method.pairs]
        frame = pd.DataFrame(training, columns=labels, index=pd.RangeIndex(1, len(training) + 1, name='epoch'))
        sns.heatmap(frame.T, cmap='viridis', ax=axes[1], cbar_kws=dict(label='mean gamma'))
        axes[1].set_title('gamma per training epoch (uniform = 1/P = %.3f)' % (1 / len(labels)), fontsize=10)
    else:
        axes[1].set_axis_off()
    fig.tight_layout()
    return fig


def plot_mft_shares(method):
    """Bar chart of each MFT branch's share of the mixed kernel, per teacher stage."""
    shares = pd.DataFrame(method.mft_branch_weights())
    shares.index = [f't{l + 1}' for l in range(len(shares))]
    ax = shares.plot.bar(figsize=(7, 3), rot=0)
    ax.set_ylabel('share of the MFT kernel')
    ax.set_xlabel('teacher stage')
    ax.set_title('MFT receptive-field branches (uniform = %.2f)' % (1 / shares.shape[1]), fontsize=10)
    ax.legend(fontsize=8, title='branch', loc='upper left', bbox_to_anchor=(1.01, 1.0))  # beside the bars
    plt.tight_layout()
    return shares


def sensitivity_grid(results: dict[tuple[float, float], float]) -> pd.DataFrame:
    """{(alpha, beta): PCKh} -> alpha x beta frame (NaN where not run)."""
    frame = pd.DataFrame(index=pd.Index(tables.FIG5_ALPHAS, name='alpha'),
                         columns=pd.Index(tables.FIG5_BETAS, name='beta'), dtype=float)
    for (alpha, beta), value in results.items():
        frame.loc[alpha, beta] = value
    return frame


def plot_sensitivity(frame: pd.DataFrame):
    """Seaborn heatmap of the grid (None, with a message, when no cell has been run)."""
    if frame.isna().all().all():
        print('Fig. 5: no grid run is cached yet (run_sensitivity=True or reproduce --table fig5)')
        return None
    fig, ax = plt.subplots(figsize=(4.8, 3.6))
    sns.heatmap(frame, annot=True, fmt='.2f', cmap='rocket', ax=ax, cbar_kws=dict(label='PCKh at 0.5'))
    ax.set_title('Fig. 5: alpha x beta (Eq. 8); NaN = not run', fontsize=10)
    fig.tight_layout()
    return fig


def restore(result: dict):
    """(method, student, teacher) of a finished EKR run (``run_experiment``'s result), eval mode.

    The method's learned parts (WA projections, MFT, gamma history) come from the run's checkpoint.
    """
    from kdlib.experiment import ExperimentConfig, load_trained, run_experiment
    from kdlib.methods.ekr import build_method
    from kdlib.train.checkpoint import load_checkpoint
    cfg = ExperimentConfig.from_dict(result['config'])
    if cfg.method != 'ekr' or 'teacher' not in cfg.teachers:
        raise ValueError(f"restore expects an EKR run with a 'teacher', got method {cfg.method!r}")
    student = load_trained(result)
    teacher = load_trained(run_experiment(cfg.teachers['teacher'], show_progress=False))
    params = {**cfg.method_params, 'input_size': tuple(result['input_size'])}
    method = build_method(params, student, {'teacher': teacher}, None)
    method.load_state_dict(load_checkpoint(result['checkpoint'])['method'])
    return method.eval(), student, teacher
