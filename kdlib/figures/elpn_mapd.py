"""Figures and tables of the ELPN + MAPD notebook (``notebooks/05_elpn_mapd.ipynb``; Hua Li,
J. Phys.: Conf. Ser. 2224 012025, 2022).

- ``plot_layouts``: HRNet-W32, ELPN-V1 and ELPN-V2 drawn block by block (Fig. 5: branches as rows,
  one column per exchange unit).
- ``stage_costs`` / ``block_costs``: parameters and true multiply-adds per stage and per block
  (Fig. 4's Efficient Bottleneck and Lightweight Basic Block against HRNet's).
- ``distribution_choices``: Eq. (2) under each heatmap -> distribution choice, against a student
  peak's displacement (``kdlib.methods.mapd``).
- ``hard_examples`` / ``plot_fig6``: Fig. 6-style results on the most occluded people and the most
  tilted torsos, teacher beside student.
- ``plot_two_angles``: for one joint, the MSE map of Eq. (1) and the per-pixel KL terms of Eq. (2).
- ``cost_points`` / ``plot_cost_accuracy``: accuracy against GFLOPs, the paper's models and the
  kit's runs; ``paper_size_costs``: the kit's count of every Table 1/4/5/6 network at paper size.

True multiply-adds here are ``torch.utils.flop_counter.FlopCounterMode`` / 2, the counter
``kdlib.models.summary`` uses for ``gflops_true``, read per module.
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.ticker import NullFormatter, ScalarFormatter
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from kdlib.decode import predict
from kdlib.figures.common import draw_pose, grid
from kdlib.methods import mapd
from kdlib.models.blocks import BasicBlock, Bottleneck
from kdlib.paper_tables import cached_row_results
from kdlib.paper_tables import elpn_mapd as paper

NETWORKS = {'HRNet-W32': 'hrnet_w32', 'ELPN-V1': 'elpn_v1', 'ELPN-V2': 'elpn_v2'}
STAGES = {'stem': ['stem'], 'stage 1': ['stage1'], 'stage 2': ['transitions.0', 'stages.0'],
          'stage 3': ['transitions.1', 'stages.1'], 'stage 4': ['transitions.2', 'stages.2'],
          'GC after stage 4': ['gc_final'], 'head': ['head']}   # a stage owns its transition


# ----------------------------------------------------------------------------- ELPN, block by block

def _draw_layout(ax, model, title: str) -> None:
    """One box per EU per branch, labelled blocks x block type; stage 1 as one box."""
    ax.add_patch(plt.Rectangle((0, -0.4), 0.8, 0.8, color='#9ecae1'))
    gc1 = any(not isinstance(b.gc, nn.Identity) for b in model.stage1)
    ax.text(0.4, 0, f'{len(model.stage1)}x\n{"EffBott" if gc1 else "Bottl."}', ha='center', va='center',
            fontsize=7)
    x = 1.0
    for units in model.stages:
        for unit in units:
            for r, branch in enumerate(unit.branches):
                light = any(isinstance(m, nn.Conv2d) and m.groups > 1 for m in branch[0].modules())
                ax.add_patch(plt.Rectangle((x, r - 0.4), 0.8, 0.8, color='#a1d99b' if light else '#fdae6b'))
                ax.text(x + 0.4, r, f'{len(branch)}x\n{"Light" if light else "Basic"}', ha='center',
                        va='center', fontsize=6)
            x += 1.0
        ax.axvline(x - 0.1, color='grey', lw=0.5, ls=':')
    if not isinstance(model.gc_final, nn.Identity):
        ax.add_patch(plt.Rectangle((x, -0.4), 0.6, 0.8, color='#e377c2'))
        ax.text(x + 0.3, 0, 'GC', ha='center', va='center', fontsize=7)
    ax.set_xlim(-0.2, 13.8)
    ax.set_ylim(3.6, -0.6)
    ax.set_yticks(range(4), [f'1/{4 * 2 ** r}' for r in range(4)])
    ax.set_xticks([])
    ax.set_title(title, fontsize=10)
    ax.set_ylabel('branch resolution')


def plot_layouts(models: dict[str, nn.Module]):
    """``_draw_layout`` of each {label: HRNet-family model}, one panel per model."""
    fig, axes = plt.subplots(len(models), 1, figsize=(11, 2.5 * len(models)), squeeze=False)
    for ax, (label, model) in zip(axes[:, 0], models.items()):
        _draw_layout(ax, model, label)
    fig.suptitle('stage 1 | stage 2 | stage 3 | stage 4 (one column per exchange unit)', fontsize=9)
    fig.tight_layout()
    return fig


@torch.no_grad()
def _macs_by_module(module: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """True multiply-adds of one forward per submodule path, and 'Global' for the whole forward."""
    with FlopCounterMode(display=False) as counter:
        module.eval()(x)
    root = type(module).__name__ + '.'
    return {k.removeprefix(root): sum(v.values()) / 2 for k, v in counter.get_flop_counts().items()}


def _module_macs(macs: dict[str, float], path: str, model: nn.Module) -> float:
    """MACs of the submodule at ``path``; a container that is never called itself (the
    ``nn.ModuleList`` of a stage's exchange units) is the sum of its children's."""
    if path in macs:
        return macs[path]
    return sum(macs.get(f'{path}.{child}', 0.0) for child, _ in model.get_submodule(path).named_children())


def stage_costs(model: nn.Module, input_size=(256, 192)) -> pd.DataFrame:
    """Params (M) and true multiply-adds (G) per stage of an HRNet-family model (``STAGES``); the
    rows add up to the whole forward (``kdlib.models.summary``'s ``gflops_true``)."""
    macs = _macs_by_module(model, torch.zeros(1, 3, *input_size))
    rows = {}
    for stage, prefixes in STAGES.items():
        params = sum(p.numel() for name, p in model.named_parameters()
                     if any(name.startswith(q + '.') for q in prefixes))
        rows[stage] = {'Params (M)': params / 1e6,
                       'GMACs': sum(_module_macs(macs, q, model) for q in prefixes) / 1e9}
    return pd.DataFrame(rows).T


def block_costs(size=(64, 48)) -> pd.DataFrame:
    """One block of each kind on a ``size`` map, width 32 (HRNet-W32's highest-resolution branch
    at 256x192): parameters (k) and true multiply-adds (M)."""
    blocks = {'BasicBlock (HRNet)': (BasicBlock(32, 32), 32),
              'Lightweight Basic Block (ELPN, Fig. 4d)': (BasicBlock(32, 32, light=True), 32),
              'Bottleneck (HRNet stage 1)': (Bottleneck(256, 64), 256),
              'Efficient Bottleneck (ELPN, Fig. 4b)': (Bottleneck(256, 64, gc=True), 256)}
    return pd.DataFrame({name: {'Params (k)': sum(p.numel() for p in block.parameters()) / 1e3,
                                'MMACs': _macs_by_module(block, torch.zeros(1, channels, *size))['Global'] / 1e6}
                         for name, (block, channels) in blocks.items()}).T


# ----------------------------------------------------------------------------- Eq. (2)'s choice

DISTRIBUTIONS = {'normalize': ('normalize', 1.0), 'softmax T=1': ('softmax', 1.0),
                 'softmax T=0.1': ('softmax', 0.1)}


def gaussian(h: int = 64, w: int = 48, cx: float = 24.0, cy: float = 32.0, sigma: float = 2.0):
    """A (1, 1, h, w) Gaussian heatmap with peak 1 at (cx, cy) (the target's sigma 2)."""
    ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing='ij')
    return torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma ** 2))[None, None]


def distribution_choices(shifts=range(9)):
    """(figure, losses): left, the teacher Gaussian's distribution under each ``DISTRIBUTIONS``
    choice along the row through its peak; right, Eq. (2) under each choice and Eq. (1) against
    the student peak's displacement (pixels)."""
    teacher = gaussian()
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.4))
    for name, (mode, temp) in DISTRIBUTIONS.items():
        p = mapd.heatmap_log_distribution(teacher, mode, temp).exp().view(64, 48)
        axes[0].plot(p[32].numpy(), label=f'{name} (peak {p.max():.4f})')
    axes[0].set_title('teacher distribution, row through the peak')
    axes[0].set_xlabel('x (heatmap pixel)')
    axes[0].legend(fontsize=8)
    axes[0].set_yscale('log')
    shifts = np.asarray(list(shifts))
    losses = pd.DataFrame({name: [mapd.kpd_loss(gaussian(cx=24.0 + d), teacher, mode=mode, temperature=temp).item()
                                  for d in shifts] for name, (mode, temp) in DISTRIBUTIONS.items()},
                          index=pd.Index(shifts, name='shift (px)'))
    losses['MSE (Eq. 1)'] = [mapd.mpd_loss(gaussian(cx=24.0 + d), teacher).item() for d in shifts]
    losses.iloc[1:].plot(ax=axes[1], marker='o', logy=True)
    axes[1].set_xlabel('student peak shifted by (pixels)')
    axes[1].set_ylabel('loss')
    axes[1].set_title('Eq. (2) under each choice, and Eq. (1), vs displacement')
    fig.tight_layout()
    return fig, losses


# ----------------------------------------------------------------------------- what the student learned

def hardness(joints: np.ndarray, names) -> tuple[int, float]:
    """(occluded joints, torso tilt in degrees) of one person's (K, 3) joints: joints flagged
    occluded (1), or unlabelled (0) where the format has no occlusion flag; the angle of the
    shoulders' -> hips' midpoint line from vertical (0 when one of the four is unlabelled)."""
    vis = joints[:, 2]
    occluded = int((vis == 1).sum() if (vis == 1).any() else (vis == 0).sum())
    idx = [names.index(n) for n in ('left_shoulder', 'right_shoulder', 'left_hip', 'right_hip')]
    if not (vis[idx] > 0).all():
        return occluded, 0.0
    sh, hp = joints[idx[:2], :2].mean(0), joints[idx[2:], :2].mean(0)
    return occluded, abs(math.degrees(math.atan2(hp[0] - sh[0], hp[1] - sh[1])))


def hard_examples(val_set, per_kind: int = 3) -> tuple[list[int], list[str]]:
    """(record indices, kinds): the ``per_kind`` most occluded people, then the ``per_kind`` most
    tilted torsos among the others (stable order)."""
    names = list(val_set.skeleton.joint_names)
    scores = np.array([hardness(rec['joints'], names) for rec in val_set.records])   # (N, 2)
    occl = [int(i) for i in np.argsort(-scores[:, 0], kind='stable')[:per_kind]]
    tilt = [int(i) for i in np.argsort(-scores[:, 1], kind='stable') if i not in occl][:per_kind]
    return occl + tilt, ['occluded'] * len(occl) + [f'tilt {scores[i, 1]:.0f}°' for i in tilt]


@torch.no_grad()
def plot_fig6(models: dict[str, nn.Module], batch: dict, kinds: list[str], flip_index, skeleton):
    """Fig. 6-style: per person, each {name: model}'s prediction over the faint ground truth, the
    mean distance to it (input pixels, labelled joints) in the title. Three people per row."""
    predictions = {name: predict(model, batch['image'], flip_index) for name, model in models.items()}
    per_row = 3 * len(models)
    rows = math.ceil(len(kinds) / 3)
    fig, axes = grid(rows, per_row, size=2.4)
    for j, kind in enumerate(kinds):
        gt = batch['joints'][j]                                                  # (K, 3)
        for k, (name, (coords, conf)) in enumerate(predictions.items()):
            err = (coords[j] - gt[:, :2]).norm(dim=-1)[gt[:, 2] > 0].mean()
            ax = axes[(j // 3) * per_row + (j % 3) * len(models) + k]
            draw_pose(batch['image'][j], gt, skeleton, ax=ax, alpha=0.35, linewidth=4, marker_size=30)
            draw_pose(None, torch.cat([coords[j], conf[j][:, None]], 1), skeleton, min_visibility=-np.inf,
                      ax=ax, title=f'{name} · {kind} · err {err:.1f}px')
    fig.tight_layout()
    return fig


@torch.no_grad()
def plot_two_angles(teacher, student, batch: dict, names, kl_mode: str, temperature: float,
                    loss_params: dict, profile: str):
    """For the (sample, joint) where teacher and student heatmaps differ most: both heatmaps, the
    squared difference Eq. (1) averages, the per-pixel KL summands of Eq. (2) under ``kl_mode`` and
    under the alternative, and the weighted Eq. (3) terms (``mapd.mapd_loss(**loss_params)``)."""
    t_maps, s_maps = teacher(batch['image'])['heatmaps'], student(batch['image'])['heatmaps']  # (B, K, h, w)
    gap = (t_maps - s_maps).pow(2).flatten(2).mean(-1)                          # (B, K)
    b, k = divmod(int(gap.argmax()), gap.shape[1])
    t1, s1 = t_maps[b:b + 1, k:k + 1], s_maps[b:b + 1, k:k + 1]                  # (1, 1, h, w)
    other = 'softmax' if kl_mode == 'normalize' else 'normalize'
    panels = {'teacher heatmap': t1, 'student heatmap': s1, '(student - teacher)$^2$  [Eq. 1]': (s1 - t1) ** 2,
              f'KL terms, {kl_mode} T={temperature:g}  [Eq. 2]': mapd.kpd_pixel_terms(s1, t1, kl_mode, temperature),
              f'KL terms, {other} T=1': mapd.kpd_pixel_terms(s1, t1, other, 1.0)}
    fig, axes = plt.subplots(2, 3, figsize=(13, 8))
    for ax, (title, m) in zip(axes.flat, panels.items()):
        m = m[0, 0].numpy()
        lim = float(np.abs(m).max()) or 1.0
        signed = m.min() < 0
        im = ax.imshow(m, cmap='RdBu_r' if signed else 'viridis', vmin=-lim if signed else 0, vmax=lim)
        ax.set_title(title, fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, fraction=0.046)
    terms = mapd.mapd_loss(s1, t1, batch['heatmap'][b:b + 1, k:k + 1], batch['target_weight'][b:b + 1, k:k + 1],
                           kl_mode=kl_mode, temperature=temperature, **loss_params)
    text = [f'sample {b}, joint {names[k]}', '', 'weighted Eq. (3) terms:']
    text += [f'  {n:7s} {v.item():.3e}' for n, v in terms.items()]
    if max(float(t1.max()), float(s1.max())) < 0.2:
        text += ['', 'Both peaks are below 0.2: the networks have', f'barely trained on {profile!r}, so the maps are',
                 'flat. Run a larger profile (first cell).']
    axes.flat[-1].axis('off')
    axes.flat[-1].text(0.0, 0.95, '\n'.join(text), va='top', family='monospace', fontsize=11)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- cost against accuracy

PANELS = {'table1': 'AP', 'table4': 'Mean', 'table5': 'Mean'}


def cost_points(profile: str, seed: int, result: dict, dataset: str, network: str) -> pd.DataFrame:
    """Accuracy, GFLOPs and Params of every Table 1/4/5 model: the paper's (as printed), the
    kit's cached runs of those rows at ``seed``, and this run (on its dataset's panel)."""
    points = []
    for name, metric in PANELS.items():
        for row in paper.TABLES[name].rows:
            if metric in row.paper and 'GFLOPs' in row.paper:
                points.append(dict(table=name, model=row.label, source='paper', acc=row.paper[metric],
                                   GFLOPs=row.paper['GFLOPs'], params=row.paper['Params']))
            results = cached_row_results(paper, profile, seed, row.params) if row.kind == 'run' else None
            if results is not None:
                v = paper.row_metrics(results)
                points.append(dict(table=name, model=row.label, source=f'kit ({profile})', acc=v[metric],
                                   GFLOPs=v['GFLOPs'], params=v['Params']))
    this = paper.row_metrics({'row': result})
    points.append(dict(table='table1' if dataset == 'coco' else 'table4', model=f'this run ({network})',
                       source=f'kit ({profile})', acc=this['AP' if dataset == 'coco' else 'Mean'],
                       GFLOPs=this['GFLOPs'], params=this['Params']))
    return pd.DataFrame(points)


def _short_label(table: str, label: str) -> str:
    if table == 'table4':
        return f'W{label}'
    if table == 'table5':
        return 'EU' + label.replace(' ', '')
    return label.split(' [')[0].split(' (')[0].replace(' + MAPD', '')


def plot_cost_accuracy(points: pd.DataFrame, profile: str):
    """Left: COCO AP against GFLOPs (Table 1); right: MPII `PCKh 0.5` against GFLOPs (Tables 4-5).
    Paper points as circles, the kit's as crosses, marker size = parameters."""
    fig, axes = plt.subplots(1, 2, figsize=(15, 6))
    kit = f'kit ({profile})'
    for left, ax, tables, ylabel in ((True, axes[0], ['table1'], 'COCO val2017 AP'),
                                     (False, axes[1], ['table4', 'table5'], 'MPII PCKh 0.5')):
        data = points[points.table.isin(tables)]
        sns.scatterplot(data=data, x='GFLOPs', y='acc', size='params', hue='table' if len(tables) > 1 else 'source',
                        style='source', markers={'paper': 'o', kit: 'X'}, sizes=(30, 400), ax=ax, alpha=0.8)
        paper_points = data[data.source == 'paper'].sort_values('GFLOPs' if left else 'acc', ascending=left)
        for j, (_, p) in enumerate(paper_points.iterrows()):
            label = _short_label(p.table, p.model)
            if left:        # spread out: alternate above / below
                ax.annotate(label, (p.GFLOPs, p.acc), fontsize=8, xytext=(4, 7 if j % 2 == 0 else -12),
                            textcoords='offset points')
            else:           # a dense cluster: one column of labels, best first, with leader lines
                ax.annotate(label, (p.GFLOPs, p.acc), fontsize=8, xytext=(0.3, 0.95 - 0.055 * j),
                            textcoords='axes fraction', va='center',
                            arrowprops=dict(arrowstyle='-', color='grey', lw=0.5, alpha=0.6))
        ax.set_xscale('log')
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8, loc='center left', bbox_to_anchor=(1.0, 0.5))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    axes[0].set_title('Table 1: accuracy vs cost')
    axes[1].set_title('Tables 4-5: HRNet width and EUs')
    fig.tight_layout()
    return fig


def paper_size_costs(all_rows: bool) -> pd.DataFrame:
    """The kit's Params and GFLOPs (``paper.paper_size_cost``: the network at paper size and input)
    of every run row of Tables 1, 4, 5, 6 beside the paper's; with ``all_rows`` False only Table 1's
    '(Ours)' rows (a few seconds per large network on a CPU)."""
    rows = []
    for name in ('table1', 'table4', 'table5', 'table6'):
        for row in paper.TABLES[name].run_rows():
            if not all_rows and not (name == 'table1' and row.label.endswith('(Ours)')):
                continue
            c = paper.paper_size_cost(row.params)
            rows.append({'table': name, 'row': row.label, 'paper Params (M)': row.paper.get('Params'),
                         'kit Params (M)': c['params_M'], 'paper GFLOPs': row.paper.get('GFLOPs'),
                         'kit GFLOPs': c['gflops_paper'], 'kit GFLOPs (true)': c['gflops_true']})
    return pd.DataFrame(rows, columns=['table', 'row', 'paper Params (M)', 'kit Params (M)', 'paper GFLOPs',
                                       'kit GFLOPs', 'kit GFLOPs (true)']).drop_duplicates(subset=['table', 'row'])
