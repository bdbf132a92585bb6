"""``python -m kdlib.benchmarks train``: what training costs, measured side by side in one run.

1. Plain trainer: ``train_one_epoch`` with ``Supervised`` on the variant's SynthPose through the
   real DataLoader -> training images/s and the share of the epoch spent waiting for data.
2. Method overhead, per method, against plain training of the same student (``compare``):

   - both rows are built from the same seed and train on the same pre-collated batch;
   - ``warmup`` untimed steps per row first (allocator, oneDNN primitives, Adam state, SDP buffer);
   - then ``rounds`` repeats interleaved A B A B ...; a repeat is one untimed step (the first
     step after a switch may pay for the other row's caches) and ``steps`` timed steps (more
     for fast rows: enough for ``--repeat-seconds`` of plain);
   - ratio of a repeat = median step of the method / median step of plain in the SAME repeat;
     the row prints the median of those ratios and their min-max (the spread);
   - the teacher's share: the teachers' forward passes are timed inside the same steps (a timing
     hook on each teacher module: CUDA events on a GPU) and divided by that step's time;
   - peak memory: the row's parameters, buffers and optimiser state plus the peak of what two
     more (untimed) steps allocate (``torch.cuda.max_memory_allocated`` on a GPU; on a CPU the
     allocation events of torch's profiler -- tensors only, not oneDNN's own scratch space).

   The ``supervised`` row is plain against a second, identical plain row: the noise floor. It must
   read 1.00 within its spread; a wider spread says the machine was too busy for the other rows.

Threads. The default is ONE intra-op thread (``--threads``). With as many threads as cores on a
shared machine every parallel region waits for its slowest thread, and a thread that another
process preempts stalls the step. Measured on the kit's 2-core machine with other work on it, two
threads: smoke SBL-R50 steps of 33 ms to 1.7 s in one sequence, SDP steps of 3.2 s six times in a
row (12 ms when the machine was free); one thread: 7-9 ms and 12-13 ms, steadily. The harness
before this one (two threads; each plain row timed once per round of all methods, at another place
in the round than its method; ratios of medians pooled over rounds far apart in time) printed a
noise floor of 0.40x and methods with a teacher below 1.00x.

Each method runs in the setup of its paper (``SETUPS``: student, head, teachers); a method that
cannot be built in a generic setup is listed with the reason instead of a number (``NOT_GENERIC``).
"""
from __future__ import annotations

import contextlib
import math
import os
import statistics
import sys
import tempfile
import time
from typing import Callable

import torch
from torch import nn

from kdlib.methods import METHODS, build_method
from kdlib.train.checkpoint import seed_everything
from kdlib.train.optim import build_optimizer, build_scheduler, trainable_parameters
from kdlib.train.trainer import (TrainConfig, TrainStep, amp_dtype, make_loader, to_device,
                                 train_one_epoch)
from kdlib.train import ddp

_HEATMAP = dict(student="sbl_r50", head="heatmap", teachers={})
_SIMCC_KD = dict(student="litehrnet_18", head="simcc", teachers={"teacher": "hrnet_w32"})
SETUPS = {  # method -> student, head, teachers (model names), method params
    "supervised": _HEATMAP,
    "sdp": _HEATMAP,                                                           # SDP Table 5
    "fpd": dict(student="hourglass4", head="heatmap", teachers={"teacher": "hourglass8"}),  # Table 3
    "mapd": dict(student="elpn_v1", head="heatmap", teachers={"teacher": "hrnet_w32"}),     # ELPN
    "two_stage": dict(student="rtmpose_t", head="simcc", teachers={"teacher": "rtmpose_m"}),
    "ekr": _SIMCC_KD, "kd": _SIMCC_KD, "fitnet": _SIMCC_KD, "rkd": _SIMCC_KD,   # EKR Table 1
    "at": _SIMCC_KD, "sp": _SIMCC_KD, "reviewkd": _SIMCC_KD,
}
DEFAULT_SETUP = _HEATMAP
NOT_GENERIC = {  # methods whose setup is a trained pipeline, not a model pair
    "two_stage_gcn": "stage 2 trains an IGP-GCN refiner on a trained, frozen stage-1 student",
    "unified": "needs the joint COCO+MPII dataset and one teacher per dataset",
}
MAX_STEPS = 100                     # timed steps per repeat at most (``compare``'s repeat_s)
VARIANTS = ("smoke", "classroom")   # --variant: the profile whose input size, models, batch are used


# ---------------------------------------------------------------------------------------------
# The harness: any two step functions, interleaved (tested on sleeping steps, tests/test_bench.py)
# ---------------------------------------------------------------------------------------------

def compare(plain: Callable[[], float], method: Callable[[], float], steps: int = 3,
            rounds: int = 7, warmup: int = 2, repeat_s: float = 0.0) -> dict:
    """Time ``method`` against ``plain``; each callable runs one step (synchronised) and returns the
    seconds it spent in teacher forward passes. Protocol in the module docstring; ``repeat_s``
    raises ``steps`` until a repeat of plain lasts about that long (timed on its last warm-up step),
    so that fast rows are not timed at the granularity of the machine's noise.

    Returns ``plain_s``, ``method_s`` (median over all timed steps), ``ratio`` (median over repeats
    of method / plain in that repeat), ``ratio_min``, ``ratio_max``, ``ratios`` (one per repeat),
    ``teacher_share`` (median over the method's timed steps of teacher seconds / step seconds) and
    ``steps`` (timed steps per repeat).
    """
    last = {}
    for key, fn in (("plain", plain), ("method", method)):
        for _ in range(warmup):
            start = time.perf_counter()
            fn()
            last[key] = time.perf_counter() - start
    if repeat_s > 0 and "plain" in last:
        steps = max(steps, min(MAX_STEPS, math.ceil(repeat_s / max(last["plain"], 1e-6))))
    times = {"plain": [], "method": []}
    ratios, shares = [], []
    for _ in range(rounds):
        medians = {}
        for key, fn in (("plain", plain), ("method", method)):
            fn()                                                    # untimed: first after a switch
            repeat = []
            for _ in range(steps):
                start = time.perf_counter()
                teacher_s = fn()
                repeat.append(time.perf_counter() - start)
                if key == "method":
                    shares.append(teacher_s / repeat[-1])
            times[key] += repeat
            medians[key] = statistics.median(repeat)
        ratios.append(medians["method"] / medians["plain"])
    return dict(plain_s=statistics.median(times["plain"]),
                method_s=statistics.median(times["method"]), ratio=statistics.median(ratios), ratio_min=min(ratios), ratio_max=max(ratios),
                ratios=ratios, teacher_share=statistics.median(shares), steps=steps)


class TeacherClock:
    """Seconds the teachers' forward passes took since the last ``pop`` (a timing hook on each
    teacher module; CUDA events on a GPU, so the step is not synchronised inside)."""

    def __init__(self, teachers: dict[str, nn.Module], device: torch.device):
        self.cuda, self.spans, self._open = device.type == "cuda", [], []
        self.handles = [h for t in teachers.values()
                        for h in (t.register_forward_pre_hook(self._start),
                                  t.register_forward_hook(self._stop))]

    def _now(self):
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def _start(self, module, args):
        self._open.append(self._now())

    def _stop(self, module, args, output):
        self.spans.append((self._open.pop(), self._now()))

    def pop(self) -> float:
        """Teacher seconds since the last call (call after the step has been synchronised)."""
        if self.cuda:
            total = sum(start.elapsed_time(end) for start, end in self.spans) / 1000
        else:
            total = sum(end - start for start, end in self.spans)
        self.spans = []
        return total

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


class Row:
    """One side of a comparison: ``row()`` runs one optimisation step on the fixed batch (as
    ``train_one_epoch`` does: autocast where the config asks, backward, optimiser step), waits for
    the device and returns the teachers' seconds in it."""

    def __init__(self, step: nn.Module, batch: dict, teachers: dict, optimizer, cfg: TrainConfig):
        self.step, self.batch, self.teachers, self.optimizer = step, batch, teachers, optimizer
        self.device, self.dtype = torch.device(cfg.device), amp_dtype(cfg)
        self.clock = TeacherClock(teachers, self.device)

    def __call__(self) -> float:
        with torch.autocast(self.device.type, dtype=self.dtype or torch.float32,
                            enabled=self.dtype is not None):
            terms, _ = self.step(self.batch, self.teachers)
        loss = sum(terms.values())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return self.clock.pop()

    def resident_bytes(self) -> int:
        """Parameters and buffers of student, method and teachers, and the optimiser's state."""
        modules = [self.step, *self.teachers.values()]
        tensors = [t for m in modules for t in (*m.parameters(), *m.buffers())]
        tensors += [v for state in self.optimizer.state.values() for v in state.values()
                    if isinstance(v, torch.Tensor)]
        return sum(t.untyped_storage().nbytes() for t in {t.untyped_storage().data_ptr(): t
                                                          for t in tensors}.values())


@contextlib.contextmanager
def _quiet_profiler_log():
    """Drop the lines the CPU profiler's C++ side writes to stderr at every start and stop, and its
    warning that blocks allocated before it started are freed unseen (expected: see peak_bytes)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            log.seek(0)
            for line in log.read().decode(errors="replace").splitlines(keepends=True):
                if not (line.startswith("USDT:") or "gpuGetDeviceCount" in line
                        or "allocated before the profiling started" in line):
                    sys.stderr.write(line)


def peak_bytes(row: Row) -> int | None:
    """Resident bytes + the peak of what two more (untimed) steps of ``row`` allocate above them;
    None where this torch's profiler does not expose its allocation events (CPU).

    The gradients are dropped first, so that the second step frees the first step's gradients in
    view of the count, as a training step frees the previous one's (after its forward pass)."""
    row.optimizer.zero_grad(set_to_none=True)
    resident = row.resident_bytes()
    if row.device.type == "cuda":
        torch.cuda.synchronize(row.device)
        torch.cuda.reset_peak_memory_stats(row.device)
        base = torch.cuda.memory_allocated(row.device)
        row(), row()
        return resident + torch.cuda.max_memory_allocated(row.device) - base
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile
    with _quiet_profiler_log(), profile(activities=[ProfilerActivity.CPU],
                                        profile_memory=True) as prof:
        row(), row()
    try:
        events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                        if e.name() == "[memory]" and e.device_type() == DeviceType.CPU)
    except AttributeError:                            # the events' accessors are not public API
        return None
    live = peak = 0
    for _, nbytes in events:                          # allocations > 0, frees < 0, in time order
        live += nbytes
        peak = max(peak, live)
    return resident + peak


# ---------------------------------------------------------------------------------------------
# The kit's methods in their papers' setups
# ---------------------------------------------------------------------------------------------

def _dataset(profile: dict, head: str):
    from kdlib.data import PipelineConfig, build_dataset
    from kdlib.experiment import HEAD_TARGETS, dataset_root, ensure_data
    ensure_data(profile)
    cfg = PipelineConfig(input_size=tuple(profile["input_size"]["coco"]), targets=HEAD_TARGETS[head],
                         train=True)
    return build_dataset("coco", "train", dataset_root(profile, "coco"), cfg)


def _model(name: str, head: str, train_set, profile: dict):
    from kdlib.models import build_model
    return build_model(name, train_set.skeleton.num_joints, head=head,
                       input_size=tuple(train_set.cfg.input_size), variant=profile["model_variant"])


def _prepare(name: str, setup: dict, cache: dict, profile: dict, cfg: TrainConfig) -> Row:
    """A ``Row`` training ``name`` in ``setup`` on the head's cached batch (raises if unbuildable)."""
    device = torch.device(cfg.device)
    if setup["head"] not in cache:                 # one pre-collated batch per head, shared by rows
        train_set = _dataset(profile, setup["head"])
        batch = torch.utils.data.default_collate([train_set[i] for i in range(cfg.batch_size)])
        cache[setup["head"]] = (train_set, to_device(batch, device, False))
    train_set, batch = cache[setup["head"]]
    seed_everything(0)                             # plain and method start from the same student
    student = _model(setup["student"], setup["head"], train_set, profile).to(device)
    teachers = {n: _model(m, setup["head"], train_set, profile).to(device).eval().requires_grad_(False)
                for n, m in setup["teachers"].items()}
    method = build_method(name, {}, student, teachers, train_set).to(device)
    step = TrainStep(student, method).train()
    return Row(step, batch, teachers, build_optimizer("adam_step", trainable_parameters(step)), cfg)


def _measure(name: str, setup: dict, cache: dict, profile: dict, cfg: TrainConfig, steps: int,
             rounds: int, warmup: int, repeat_s: float) -> dict:
    """``compare`` and the peak-memory ratio of ``name`` against plain training in ``setup``."""
    plain = _prepare("supervised", setup, cache, profile, cfg)
    method = _prepare(name, setup, cache, profile, cfg)
    try:
        row = compare(plain, method, steps, rounds, warmup, repeat_s)
        peaks = peak_bytes(plain), peak_bytes(method)
        row["peak_ratio"] = None if None in peaks else peaks[1] / peaks[0]
        row["plain_peak_bytes"], row["method_peak_bytes"] = peaks
    finally:
        plain.clock.close()
        method.clock.close()
    row["ratio_vs_plain"] = row["ratio"]
    row["s_per_step"] = row["method_s"]
    if not setup["teachers"]:
        row["teacher_share"] = None
    return row


def method_overheads(profile: dict, cfg: TrainConfig, methods=None, steps: int = 3, rounds: int = 7,
                     log=print, warmup: int = 2, repeat_s: float = 0.0) -> list[dict]:
    """One row per method: its setup and ``compare``'s figures against plain training of the same
    student (``ratio_vs_plain``, spread, ``peak_ratio``, ``teacher_share``), or a ``note``."""
    cache, rows = {}, []
    for name in list(methods or METHODS):
        setup = SETUPS.get(name, DEFAULT_SETUP)
        row = {"method": name, "student": setup["student"], "head": setup["head"],
               "teachers": ",".join(setup["teachers"].values()) or "-"}
        if name in NOT_GENERIC:
            row["note"] = NOT_GENERIC[name]
        else:
            try:
                row.update(_measure(name, setup, cache, profile, cfg, steps, rounds, warmup,
                                    repeat_s))
            except Exception as exc:  # noqa: BLE001 -- report, do not stop the benchmark
                row["note"] = f"{type(exc).__name__}: {str(exc)[:120]}"
        if log:
            log(_format_row(row))
        rows.append(row)
    return rows


def plain_throughput(profile: dict, cfg: TrainConfig, steps: int) -> dict:
    """images/s and data-wait share of ``train_one_epoch`` (Supervised) on the real DataLoader."""
    train_set = _dataset(profile, "heatmap")
    seed_everything(0)
    student = _model("sbl_r50", "heatmap", train_set, profile).to(cfg.device)
    step = TrainStep(student, build_method("supervised", {}, student, {}, train_set)).to(cfg.device)
    optimizer = build_optimizer("adam_step", trainable_parameters(step))
    scheduler = build_scheduler("adam_step", optimizer, 1, steps)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    cfg = TrainConfig(**{**vars(cfg), "max_steps_per_epoch": steps, "show_progress": False})
    loader = make_loader(train_set, cfg, 0, True, ddp.DistInfo())
    train_one_epoch(step, loader, optimizer, scheduler, scaler, {}, cfg, 0, False)   # warm-up
    return train_one_epoch(step, loader, optimizer, scheduler, scaler, {}, cfg, 1, False)


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

HEADER = (f"{'method':<15}{'student':<13}{'teachers':<11}{'steps':>6}{'plain ms':>9}"
          f"{'method ms':>10}{'ratio [min-max]':>20}{'peak mem':>10}{'teacher':>9}")


def _format_row(row: dict) -> str:
    head = f"{row['method']:<15}{row['student']:<13}{row['teachers']:<11}"
    if "note" in row:
        return head + f"n/a: {row['note']}"
    spread = f"{row['ratio']:.2f}x [{row['ratio_min']:.2f}-{row['ratio_max']:.2f}]"
    share = "-" if row["teacher_share"] is None else f"{row['teacher_share']:.0%}"
    peak = "n/a" if row["peak_ratio"] is None else f"{row['peak_ratio']:.2f}x"
    return (head + f"{row['steps']:>6}{1000 * row['plain_s']:>9.1f}{1000 * row['method_s']:>10.1f}"
            f"{spread:>20}{peak:>10}{share:>9}")


def run_train(args) -> dict:
    from kdlib.profiles import get_profile
    torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    profile = get_profile(args.variant)
    cfg = TrainConfig(batch_size=args.batch_size or profile["batch_size"], device=device,
                      num_workers=profile["num_workers"] if args.workers is None else args.workers,
                      show_progress=False)
    print(f"kdlib.benchmarks train: variant {args.variant}, device {device}, {args.threads} thread(s), "
          f"batch {cfg.batch_size}, input {tuple(profile['input_size']['coco'])}, models "
          f"'{profile['model_variant']}', load average {os.getloadavg()[0]:.2f}")
    plain = plain_throughput(profile, cfg, max(5, args.steps))
    print(f"plain trainer (sbl_r50, real DataLoader, {cfg.num_workers} workers): "
          f"{plain['images_per_s']:.1f} images/s, data-wait share {plain['data_wait_share']:.1%}")
    print(f"\nper method vs plain training of the same student on the same batch: {args.warmup} "
          f"warm-up steps, {args.rounds} interleaved repeats x (1 untimed + N timed) steps, N >= "
          f"{args.steps} and N x plain step >= {args.repeat_seconds} s; "
          "ratio = median over repeats of method/plain [min-max]; peak mem = peak memory ratio; "
          "teacher = teacher forward share of the step; 'supervised' = plain vs plain (noise floor)")
    print(HEADER)
    rows = method_overheads(profile, cfg, args.methods, args.steps, args.rounds, print, args.warmup,
                            args.repeat_seconds)
    return {"plain": plain, "methods": rows}


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="training images/s and each method's overhead over plain training")
    p.add_argument("--variant", default="smoke", choices=VARIANTS,
                   help="input size, model sizes, batch and data of that profile (default smoke)")
    p.add_argument("--device", default=None, help="cuda | cpu (default: cuda if available)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: profile's)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per row before timing")
    p.add_argument("--steps", type=int, default=3, help="timed steps per row per repeat, at least")
    p.add_argument("--repeat-seconds", type=float, default=0.3,
                   help="more timed steps until a repeat of plain lasts this long (default 0.3)")
    p.add_argument("--rounds", type=int, default=7, help="interleaved repeats (A B A B ...)")
    p.add_argument("--methods", nargs="*", default=None, help="default: every registered method")
    p.set_defaults(func=run_train)
