"""Parameters and GFLOPs of a model, in the papers' convention and in true multiply-adds.

- `gflops_paper`: the convention of the HRNet code the papers copy (`lib/utils/utils.py::
  get_model_summary`): multiply-adds of Conv and Linear modules only, divided by 1024**3; a conv
  counts `weight.numel() * output H*W`, so a transposed conv is counted on its *output* grid
  (stride^2 times its real cost: this is why SimpleBaseline-R50 reads 8.9). Linear layers count
  in*out per output token (HRNet's hook multiplies by `input.size(1)`, which is only right for 2-D
  inputs; we count the real tokens). Implemented as a thin walk over the modules (forward hooks
  inside this function only).
- `gflops_true`: real multiply-adds (/1e9) of every conv, linear and matmul op (transposed convs
  on their input grid, attention/GC matmuls included), from `torch.utils.flop_counter.FlopCounterMode`
  (which reports 2 FLOPs per multiply-add). Normalisation, activations, pooling and element-wise
  ops are not multiply-adds and are not counted.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def _count(model: nn.Module, x: torch.Tensor) -> tuple[int, float]:
    """One forward: (paper-convention MACs from module hooks, true MACs from FlopCounterMode)."""
    paper = [0]

    def conv_hook(module, inputs, output):
        paper[0] += module.weight.numel() * output.shape[2:].numel() * output.shape[0]

    def linear_hook(module, inputs, output):
        paper[0] += module.in_features * output.numel()

    handles = []
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    try:
        with FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        for h in handles:
            h.remove()
    return paper[0], counter.get_total_flops() / 2


@torch.no_grad()
def summary(model: nn.Module, input_size: tuple[int, int]) -> dict[str, float]:
    """params_M (all parameters / 1e6), gflops_paper (HRNet convention, /1024^3), gflops_true (/1e9),
    for one image of `input_size` = (H, W)."""
    if len(input_size) != 2:
        raise ValueError(f"input_size must be (H, W), got {input_size!r}")
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters())
        x = torch.zeros(1, 3, *input_size, device=param.device, dtype=param.dtype)
        paper, true = _count(model, x)
    finally:
        model.train(was_training)
    return {'params_M': sum(p.numel() for p in model.parameters()) / 1e6,
            'gflops_paper': paper / 1024 ** 3, 'gflops_true': true / 1e9}
