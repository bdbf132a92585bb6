"""Inference cost of a pose network: parameters, peak memory of one batched forward, throughput.

EKR Tables 2-3 report "Infer memory" and "Speed" without saying how they were taken; the kit states
its protocol in every result: one ``torch.no_grad()`` forward of a fixed ``batch`` of
``input_size`` images on ``device``.

- Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` during the forward (weights included;
  ``activation_MB`` subtracts what was allocated before it); on CPU the same quantity counted from
  the tensors themselves: weights, buffers and input, plus the peak of the live storages the
  forward's ops return (a ``TorchDispatchMode`` that drops a storage when its last reference dies).
  Neither counts kernel workspaces or the process RSS.
- Speed: images per second and milliseconds per batch, median of ``iters`` timed forwards after
  ``warmup`` untimed ones (CUDA synchronised around each).
"""
from __future__ import annotations

import statistics
import time

import torch
from torch import nn
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

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


class _LiveTensorBytes(TorchDispatchMode):
    """Bytes of the tensor storages the ops of a forward hand out that are still alive; peak kept.

    After every op, storages whose last reference died are dropped (``StorageWeakRef.expired``)
    and the op's new output storages added, so ``peak`` is the largest live activation footprint.
    """

    def __init__(self):
        super().__init__()
        self.live, self.current, self.peak = {}, 0, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for key, (ref, nbytes) in list(self.live.items()):
            if ref.expired():
                del self.live[key]
                self.current -= nbytes
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                storage = t.untyped_storage()
                if storage.data_ptr() not in self.live:
                    self.live[storage.data_ptr()] = (StorageWeakRef(storage), storage.nbytes())
                    self.current += storage.nbytes()
        self.peak = max(self.peak, self.current)
        return out


def _cpu_peak_mb(model, images):
    resident = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    resident += images.numel() * images.element_size()
    with _LiveTensorBytes() as tracker:
        model(images)
    return (resident + tracker.peak) / MB, tracker.peak / MB


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
