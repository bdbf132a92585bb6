"""The method contract every distillation method implements, and plain supervised training.

A method is a small ``nn.Module`` (so it can own learnable parts such as 1x1 alignment convs; the
trainer adds its parameters to the optimiser) that turns a batch into weighted loss terms:

    terms, outputs = method(batch, student, teachers)
    loss = sum(terms.values())            # the trainer sums and logs each term

Teachers arrive frozen and in eval mode; a method runs them under ``torch.no_grad()`` (see
``teacher_outputs``). Two hooks let a method follow the schedule: ``on_epoch_start`` (every epoch,
with the current learning rate; e.g. weight-decay schedules) and ``on_lr_milestone`` (when a step
decay fires; e.g. SDP's stepping strategy).

Parameters: each method module has one ``Params`` dataclass (its ``method_params`` with their
defaults, each default's source beside it, value checks in ``__post_init__``); ``method_params``
is the one place a config's ``method_params`` dict is checked against it.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, fields

import torch
from torch import Tensor, nn

from kdlib.losses import joints_mse, simcc_kl


def method_params(cls, params: dict | None, method: str):
    """``cls(**params)`` for a method's ``Params`` dataclass; an unknown name raises, naming the
    method, the nearest valid name and every valid one with its default."""
    params = dict(params or {})
    known = {f.name: f.default for f in fields(cls)}
    unknown = sorted(set(params) - set(known))
    if unknown:
        near = {u: difflib.get_close_matches(u, known, n=1) for u in unknown}
        hints = "".join(f" ({u!r}: did you mean {m[0]!r}?)" for u, m in near.items() if m)
        expected = ", ".join(f"{name}={default!r}" for name, default in known.items())
        raise ValueError(f"unknown {method} parameters {unknown}{hints}; expected some of: {expected} "
                         f"({cls.__module__}.{cls.__qualname__})")
    return cls(**params)


def defaults(cls) -> dict:
    """{name: default} of a ``Params`` dataclass."""
    return {f.name: f.default for f in fields(cls)}


class Method(nn.Module):
    """Base class: subclasses implement ``forward``; the hooks default to doing nothing."""

    def forward(self, batch: dict, student: nn.Module,
                teachers: dict[str, nn.Module]) -> tuple[dict[str, Tensor], dict]:
        """Return (loss terms already weighted, student outputs)."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def on_epoch_start(self, epoch: int, num_epochs: int, lr: float) -> None:
        """Called by the trainer before each epoch (0-based) with the current learning rate."""

    def on_lr_milestone(self, epoch: int, gamma: float) -> None:
        """Called by the trainer when the step schedule multiplies the learning rate by gamma."""


def teacher_outputs(teachers: dict[str, nn.Module], images: Tensor) -> dict[str, dict]:
    """Run every frozen teacher on the images without gradients: name -> output dict."""
    with torch.no_grad():
        return {name: teacher(images) for name, teacher in teachers.items()}


def task_loss(outputs: dict, batch: dict) -> dict[str, Tensor]:
    """Ground-truth loss for whichever heads the student has and the batch has targets for.

    Heatmap head -> ``joints_mse`` (term ``heatmap_mse``; summed over a Stacked Hourglass's stacks,
    ``aux_heatmaps``, as its intermediate supervision); SimCC head -> ``simcc_kl`` (term
    ``simcc_kl``).
    """
    terms = {}
    if "heatmaps" in outputs and "heatmap" in batch:
        loss = joints_mse(outputs["heatmaps"], batch["heatmap"], batch["target_weight"])
        # Stacked Hourglass intermediate supervision (Newell et al. 2016; bearpaw/pytorch-pose,
        # the code FPD and SDP train with, adds every stack's loss): earlier stacks' heatmaps.
        for aux in outputs.get("aux_heatmaps", ()):
            loss = loss + joints_mse(aux, batch["heatmap"], batch["target_weight"])
        terms["heatmap_mse"] = loss
    if "simcc_x" in outputs and "simcc_x" in batch:
        terms["simcc_kl"] = simcc_kl(outputs["simcc_x"], outputs["simcc_y"], batch["simcc_x"],
                                     batch["simcc_y"], batch["target_weight"])
    if not terms:
        raise ValueError("task_loss: the student output has none of 'heatmaps'/'simcc_x' matched by "
                         f"a target in the batch (outputs: {sorted(outputs)}, batch: {sorted(batch)}); "
                         "build the dataset with the targets of the model's head")
    return terms


@dataclass(frozen=True)
class Params:
    """``method_params`` of 'supervised'."""
    weight: float = 1.0          # a plain multiplier of the task loss (1: the papers' baselines)


class Supervised(Method):
    """Plain training on the ground truth: the task loss of the student's head(s), times ``weight``."""

    def __init__(self, weight: float = Params.weight):
        super().__init__()
        self.weight = weight

    def forward(self, batch, student, teachers):
        outputs = student(batch["image"])
        terms = {name: self.weight * value for name, value in task_loss(outputs, batch).items()}
        return terms, outputs


def build_method(params: dict, student: nn.Module, teachers: dict[str, nn.Module],
                 train_set) -> Supervised:
    """``METHODS['supervised']``: ``params`` are ``Params``' fields."""
    return Supervised(**vars(method_params(Params, params, "supervised")))
