"""The train benchmark's harness (kdlib/benchmarks/train.py) measured on synthetic 'methods' whose cost
is known: steps that sleep. Sleeping does not compete for the CPU, so the expected ratios hold on a
busy machine; the tolerances are still generous (the harness is checked, not the machine)."""
import time

import pytest
import torch
from torch import nn

from kdlib.methods.base import Method
from kdlib.benchmarks.train import Row, compare, method_overheads, peak_bytes
from kdlib.train.trainer import TrainConfig, TrainStep

STUDENT_S, TEACHER_S = 0.06, 0.03      # the teacher adds half a student step: ratio 1.5, share 1/3
# (long enough that a wake-up delayed by a busy scheduler, a few ms, stays within the tolerances)


class Sleeper(nn.Module):
    """A 'network' that takes ``seconds`` per forward pass."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds, self.linear = seconds, nn.Linear(4, 4)

    def forward(self, images):
        time.sleep(self.seconds)
        return {"out": self.linear(images)}


class SleepyKD(Method):
    """Task loss on the student; with a teacher, an MSE to its output (the teacher runs first);
    ``scratch_bytes`` allocates that much more during the forward pass."""

    def __init__(self, scratch_bytes: int = 0):
        super().__init__()
        self.scratch_bytes = scratch_bytes

    def forward(self, batch, student, teachers):
        terms = {}
        if teachers:
            with torch.no_grad():
                target = teachers["teacher"](batch["image"])["out"]
        out = student(batch["image"])
        scratch = torch.ones(self.scratch_bytes // 4)                     # float32
        terms["task"] = out["out"].pow(2).mean() + 0 * scratch.sum()
        if teachers:
            terms["kd"] = (out["out"] - target).pow(2).mean()
        return terms, out


def _row(teacher_s: float | None = None, scratch_bytes: int = 0) -> Row:
    torch.manual_seed(0)
    student = Sleeper(STUDENT_S)
    teachers = {} if teacher_s is None else {"teacher": Sleeper(teacher_s).eval()}
    step = TrainStep(student, SleepyKD(scratch_bytes))
    optimizer = torch.optim.Adam(step.parameters(), lr=1e-3)
    return Row(step, {"image": torch.randn(8, 4)}, teachers, optimizer, TrainConfig(device="cpu"))


def test_harness_measures_a_known_teacher_cost():
    """A method whose teacher sleeps half a student step: ratio 1.5, teacher share 1/3."""
    res = compare(_row(), _row(TEACHER_S), steps=3, rounds=5, warmup=1)
    assert res["ratio"] == pytest.approx(1 + TEACHER_S / STUDENT_S, abs=0.15)
    assert res["ratio_min"] <= res["ratio"] <= res["ratio_max"] and len(res["ratios"]) == 5
    assert res["teacher_share"] == pytest.approx(TEACHER_S / (STUDENT_S + TEACHER_S), abs=0.07)
    assert res["method_s"] == pytest.approx(STUDENT_S + TEACHER_S, rel=0.3)


def test_harness_noise_floor_is_one():
    """Plain against an identical plain row: 1.00 within the spread, no teacher time."""
    res = compare(_row(), _row(), steps=3, rounds=5, warmup=1)
    assert res["ratio"] == pytest.approx(1.0, abs=0.1)
    assert res["ratio_min"] - 0.02 <= 1.0 <= res["ratio_max"] + 0.02
    assert res["teacher_share"] == 0.0


def test_harness_interleaves_repeats_and_skips_warmup():
    """Warm-up per row first, then A B A B ...; each repeat starts with one untimed step."""
    calls = []
    steps, rounds, warmup = 2, 3, 2
    compare(lambda: calls.append("A") or 0.0, lambda: calls.append("B") or 0.0,
            steps=steps, rounds=rounds, warmup=warmup)
    repeat = ["A"] * (1 + steps) + ["B"] * (1 + steps)
    assert calls == ["A"] * warmup + ["B"] * warmup + repeat * rounds


def test_harness_sizes_repeats_to_repeat_seconds():
    """A 20 ms step and repeat_s = 200 ms: about ten timed steps per repeat, not the minimum 2 (a
    step long enough that a busy scheduler's late wake-ups, a few ms, do not halve the count)."""
    res = compare(lambda: time.sleep(0.02) or 0.0, lambda: time.sleep(0.02) or 0.0,
                  steps=2, rounds=2, warmup=1, repeat_s=0.2)
    assert 5 <= res["steps"] <= 10


def test_peak_memory_sees_an_extra_allocation():
    """A method that allocates 8 MB more per step than plain has a peak 8 MB higher."""
    extra = 8 * 2**20
    plain, method = _row(), _row(scratch_bytes=extra)
    plain(), method()                                       # Adam state exists, as after warm-up
    assert peak_bytes(method) - peak_bytes(plain) == pytest.approx(extra, rel=0.05)
    plain.clock.close(), method.clock.close()


@pytest.fixture
def one_thread():
    """One intra-op thread, as ``python -m kdlib.benchmarks train`` runs (see its module docstring)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_method_overheads_reports_teacher_share_and_memory(one_thread):
    """The real methods on the smoke variant: a teacher method gets a share and a memory ratio."""
    import importlib
    importlib.import_module("kdlib.models")
    from kdlib.profiles import get_profile
    rows = method_overheads(get_profile("smoke"), TrainConfig(batch_size=2, device="cpu"),
                            ["supervised", "kd", "unified"], steps=1, rounds=2, log=None, warmup=1)
    by_name = {r["method"]: r for r in rows}
    floor = by_name["supervised"]
    assert floor["teacher_share"] is None and floor["peak_ratio"] == pytest.approx(1.0, abs=0.01)
    assert 0 < by_name["kd"]["teacher_share"] < 1 and by_name["kd"]["peak_ratio"] > 1
    assert "joint COCO+MPII" in by_name["unified"]["note"]
