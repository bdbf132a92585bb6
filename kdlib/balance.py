"""The weighted share of every loss term of a method, on one batch: what the objective trains.

A loss term's reduction (mean or sum over joints, bins, pixels, channels) sets its weight as much
as the paper's coefficient does, so a method is only faithful when the *weighted* terms stand in
the ratio the paper's equations give. ``loss_balance`` makes that ratio visible: for a method, a
student, its teachers and one batch it returns, per term,

- ``value``: the weighted term as the trainer sums it (``Method.forward`` returns them weighted);
- ``share``: value / sum of the values;
- ``grad_norm``: the L2 norm of the term's gradient on the student's last layer (the parameters
  that produce the outputs: ``last_layer_parameters``), and ``grad_share`` = that norm over the
  sum of the terms' norms -- a term can be large in value yet move the head little, or act only on
  earlier layers (feature distillation: its last-layer gradient is 0; ``grad_norm_all`` is the
  norm over every student parameter, so such a term still shows what it does).

The method and student are used in training mode (BatchNorm statistics of the batch, as the
trainer sees them), on deep copies: nothing of theirs is updated.
"""
from __future__ import annotations

import copy

import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from kdlib.experiment import ExperimentConfig, build_run, run_experiment
from kdlib.train.checkpoint import load_checkpoint, load_model_weights, seed_everything
from kdlib.train.trainer import to_device

__all__ = ['last_layer_parameters', 'loss_balance', 'run_balance']

# modules of a head that produce the outputs, by output (kdlib.models.heads MapHead / RTMCCHead)
_OUTPUT_LAYERS = {'heatmaps': ('final',), 'simcc_x': ('simcc_x', 'cls_x'), 'simcc_y': ('simcc_y', 'cls_y')}


def last_layer_parameters(student: nn.Module, outputs: dict) -> list[nn.Parameter]:
    """Parameters of the layers of ``student.head`` that produce ``outputs``' heatmaps/SimCC logits,
    or what the student's own ``last_layer_parameters()`` names (e.g. a GCN refiner's heads)."""
    if callable(getattr(student, 'last_layer_parameters', None)):
        return list(student.last_layer_parameters())
    head = getattr(student, 'head', None)
    if head is None:
        raise ValueError(f'{type(student).__name__} has no .head: cannot find its last layer')
    params, seen = [], set()
    for key, names in _OUTPUT_LAYERS.items():
        if key not in outputs:
            continue
        for name in names:
            layer = getattr(head, name, None)
            if isinstance(layer, nn.Module):
                new = [p for p in layer.parameters() if p.requires_grad and id(p) not in seen]
                params += new
                seen.update(id(p) for p in new)
                break
    if not params:
        raise ValueError(f'no output layer found in {type(head).__name__} for outputs {sorted(outputs)}')
    return params


def _grad_norm(term: torch.Tensor, params: list[nn.Parameter]) -> float:
    grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
    sq = sum(float(g.float().pow(2).sum()) for g in grads if g is not None)
    return sq ** 0.5


def loss_balance(method: nn.Module, batch: dict, student: nn.Module,
                 teachers: dict[str, nn.Module] | None = None, warmup: list[dict] = ()) -> pd.DataFrame:
    """One row per weighted term: value, share, last-layer gradient norm and share (module docstring).

    ``batch`` is a collated training batch (tensors on the student's device). Method and student are
    deep-copied first, so nothing of theirs changes (BatchNorm statistics, SDP's buffer). ``warmup``
    batches go through the copied method before the measured one, without gradients, for methods whose
    terms need history (SDP's L_sd needs s earlier batches in its buffer).
    """
    teachers = teachers or {}
    student, method = copy.deepcopy((student, method))
    student.train()
    method.train()
    with torch.no_grad():
        for earlier in warmup:
            method(earlier, student, teachers)
    terms, outputs = method(batch, student, teachers)
    last = last_layer_parameters(student, outputs)
    every = [p for p in student.parameters() if p.requires_grad]
    rows = [{'term': name, 'value': float(term.detach()),
             'grad_norm': _grad_norm(term, last) if term.requires_grad else 0.0,
             'grad_norm_all': _grad_norm(term, every) if term.requires_grad else 0.0}
            for name, term in terms.items()]
    table = pd.DataFrame(rows).set_index('term')
    table.insert(1, 'share', table['value'] / table['value'].sum())
    total = table['grad_norm'].sum()
    table.insert(3, 'grad_share', table['grad_norm'] / total if total > 0 else float('nan'))
    return table


def run_balance(cfg: ExperimentConfig, result: dict | None = None, warmup_batches: int = 0) -> pd.DataFrame:
    """``loss_balance`` of an experiment's method on its first training batch.

    ``result=None``: at initialisation (the student and method exactly as ``run_experiment`` builds
    them for ``cfg``); a finished run's result: with its final student and method weights. Teachers
    are ``cfg``'s (run or read from the cache). The batches are the first ``warmup_batches + 1`` of
    the training set in file order (augmentation seeded by ``cfg.seed``; the set is read again when
    there are fewer batches than that), so both calls see the same.
    """
    teachers = {name: run_experiment(t, show_progress=False) for name, t in cfg.teachers.items()}
    init = run_experiment(cfg.init_from, show_progress=False) if cfg.init_from else None
    run = build_run(cfg, teachers, init)
    student, method, teachers = run.student, run.method, run.teachers
    if result is not None:
        load_model_weights(student, result['checkpoint'])
        method.load_state_dict(load_checkpoint(result['checkpoint'])['method'])
    seed_everything(cfg.seed)
    loader = DataLoader(run.train_set, batch_size=run.train_cfg.batch_size, shuffle=False, num_workers=0)
    batches = []
    while len(batches) <= warmup_batches:           # epochs over again when s > batches per epoch
        for batch in loader:
            batches.append(batch)
            if len(batches) > warmup_batches:
                break
    cpu = torch.device('cpu')                       # uint8 images are normalised as the trainer does
    batches = [to_device(b, cpu, False) for b in batches]
    return loss_balance(method, batches[-1], student, teachers, warmup=batches[:-1])
