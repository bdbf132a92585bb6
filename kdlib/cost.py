"""Inference cost of a pose network: parameters, peak memory of one batched forward, throughput.

EKR Tables 2-3 report "Infer memory" and "Speed" without saying how they were taken; the kit states
its protocol in every result: one ``torch.no_grad()`` forward of a fixed ``batch`` of
``input_size`` images on ``device``.

- Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` during the forward (weights included;
  ``activation_MB`` subtracts what was allocated before it); on CPU the peak of PyTorch's memory
  timeline of a profiled forward (``torch.profiler`` with ``profile_memory=True``; it counts tensors
  the allocator hands out, weights included, not the process RSS).
- Speed: images per second and milliseconds per batch, median of ``iters`` timed forwards after
  ``warmup`` untimed ones (CUDA synchronised around each).
"""
from __future__ import annotations

import statistics
import time

import torch
from torch import nn

__all__ = ['inference_cost', 'peak_memory_mb', 'throughput']

MB = 2 ** 20


def _inputs(model: nn.Module, input_size, batch: int, device) -> torch.Tensor:
    if len(input_size) != 2:
        raise ValueError(f'input_size must be (H, W), got {input_size!r}')
    return torch.randn(batch, 3, *input_size, device=device)


@torch.no_grad()
def peak_memory_mb(model: nn.Module, images: torch.Tensor) -> tuple[float, float]:
    """(peak MB during one forward, of which activations MB) on the images' device."""
    model.eval()
    if images.device.type == 'cuda':
        torch.cuda.synchronize(images.device)
        torch.cuda.empty_cache()
        before = torch.cuda.memory_allocated(images.device)
        torch.cuda.reset_peak_memory_stats(images.device)
        model(images)
        torch.cuda.synchronize(images.device)
        peak = torch.cuda.max_memory_allocated(images.device)
        return peak / MB, (peak - before) / MB
    return _cpu_peak_mb(model, images)


def _cpu_peak_mb(model, images):
    from torch.profiler import ProfilerActivity, profile
    from torch.profiler._memory_profiler import MemoryProfileTimeline  # private: the timeline API
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True,
                 with_stack=True) as prof:
        model(images)
    _, sizes = MemoryProfileTimeline(prof._memory_profile())._coalesce_timeline('cpu')
    totals = [sum(row) for row in sizes] or [0]                     # bytes per timeline step
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    weights += sum(b.numel() * b.element_size() for b in model.buffers())
    peak = max(max(totals), weights)
    return peak / MB, (peak - weights) / MB


@torch.no_grad()
def throughput(model: nn.Module, images: torch.Tensor, warmup: int = 3, iters: int = 10) -> float:
    """Median seconds per batched forward."""
    model.eval()
    cuda = images.device.type == 'cuda'
    times = []
    for i in range(warmup + iters):
        if cuda:
            torch.cuda.synchronize(images.device)
        start = time.perf_counter()
        model(images)
        if cuda:
            torch.cuda.synchronize(images.device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def inference_cost(model: nn.Module, input_size=(256, 192), batch: int = 32, device=None,
                   warmup: int = 3, iters: int = 10) -> dict:
    """Params, peak inference memory and speed of ``model`` -> dict (one table row's cost columns).

    ``batch`` defaults to 32, the paper's batch size (Section 4.1; the paper does not state its
    inference batch). The model is moved to ``device`` (default: CUDA if available) and left there.
    """
    device = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    model = model.to(device).eval()
    images = _inputs(model, input_size, batch, device)
    peak, activations = peak_memory_mb(model, images)
    seconds = throughput(model, images, warmup, iters)
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'
    return {'params_M': sum(p.numel() for p in model.parameters()) / 1e6,
            'infer_memory_MB': peak, 'activation_MB': activations,
            'ms_per_batch': 1000 * seconds, 'images_per_s': batch / seconds,
            'batch': batch, 'input_size': f'{input_size[0]}x{input_size[1]}', 'device': name}
