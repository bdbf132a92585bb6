"""Trainer, losses, schedules, checkpoints, DDP: on a tiny fake dataset and model (tests/toy/fake.py)."""
import importlib
import math
import os
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).parent))
from toy.fake import FakePoseDataset, FakePoseNet, fake_predict  # noqa: E402

from kdlib.losses import joints_mse, simcc_kl  # noqa: E402
from kdlib.methods import METHODS, build_method  # noqa: E402
from kdlib.methods.base import Method, Supervised  # noqa: E402
from kdlib.train import NonFiniteLossError, TrainConfig, fit, train_one_epoch  # noqa: E402
from kdlib.train.optim import StepDecay, WarmupCosine, build_optimizer, build_scheduler  # noqa: E402

torch.set_num_threads(1)


# ---------------------------------------------------------------- losses: golden values
def _hrnet_joints_mse_loop(output, target, target_weight):
    """HRNet lib/core/loss.py JointsMSELoss, re-stated joint by joint."""
    criterion = torch.nn.MSELoss(reduction="mean")
    batch, joints = output.shape[:2]
    loss = 0.0
    for k in range(joints):
        pred = output[:, k].reshape(batch, -1) * target_weight[:, k:k + 1]
        gt = target[:, k].reshape(batch, -1) * target_weight[:, k:k + 1]
        loss += 0.5 * criterion(pred, gt)
    return loss / joints


def test_joints_mse_golden():
    pred, target = torch.zeros(1, 2, 2, 2), torch.ones(1, 2, 2, 2)
    weight = torch.tensor([[1.0, 0.0]])
    # joint 0: four squared errors of 1; joint 1 masked: 0.5 * 4 / 8
    assert joints_mse(pred, target, weight).item() == pytest.approx(0.25)
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(3, 4, 5, 6, generator=g), torch.rand(3, 4, 5, 6, generator=g)
    weight = (torch.rand(3, 4, generator=g) > 0.3).float()
    assert joints_mse(pred, target, weight).item() == pytest.approx(
        _hrnet_joints_mse_loop(pred, target, weight).item(), rel=1e-6)


def _simcc_kl_loop(px, py, tx, ty, w):
    """SimCC lib/core/loss.py KLDiscretLoss, re-stated joint by joint."""
    kl = torch.nn.KLDivLoss(reduction="none")
    loss = 0.0
    for k in range(px.shape[1]):
        for p, t in ((px, tx), (py, ty)):
            per_sample = kl(torch.log_softmax(p[:, k], dim=1), t[:, k]).mean(dim=1)  # (B,)
            loss += (per_sample * w[:, k]).mean()
    return loss / px.shape[1]


def test_simcc_kl_golden():
    logits = torch.zeros(1, 2, 4)                         # uniform prediction over 4 bins
    labels = torch.tensor([0.5, 0.5, 0.0, 0.0]).expand(1, 2, 4)
    weight = torch.tensor([[1.0, 0.0]])
    # per axis: two bins of 0.5*log(0.5/0.25), mean over 4 bins = log2/4; x+y = log2/2; / K=2
    assert simcc_kl(logits, logits, labels, labels, weight).item() == pytest.approx(math.log(2) / 4)
    g = torch.Generator().manual_seed(1)
    px, py = torch.randn(3, 5, 12, generator=g), torch.randn(3, 5, 16, generator=g)
    tx = torch.softmax(torch.randn(3, 5, 12, generator=g), -1)
    ty = torch.softmax(torch.randn(3, 5, 16, generator=g), -1)
    w = (torch.rand(3, 5, generator=g) > 0.3).float()
    assert simcc_kl(px, py, tx, ty, w).item() == pytest.approx(_simcc_kl_loop(px, py, tx, ty, w).item(), rel=1e-5)


def test_loss_shape_errors_are_clear():
    with pytest.raises(ValueError, match="target_weight"):
        joints_mse(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4), torch.zeros(2, 4))


# ---------------------------------------------------------------- schedules
def test_schedules():
    step = StepDecay(steps_per_epoch=10, milestones=(170, 200), gamma=0.1)
    assert [step(i * 10) for i in (0, 169, 170, 199, 200, 209)] == pytest.approx([1, 1, .1, .1, .01, .01])
    cosine = WarmupCosine(total_iters=1000, warmup_iters=100)
    assert cosine(0) == pytest.approx(1e-5)
    assert cosine(100) == pytest.approx(1.0) and cosine(500) == pytest.approx(1.0)
    assert cosine(1000) == pytest.approx(0.05)
    assert 0.05 < cosine(750) < 1.0


def test_scheduler_state_loads_weights_only(tmp_path):
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer("adamw_cosine", model.parameters())
    sched = build_scheduler("adamw_cosine", opt, epochs=3, steps_per_epoch=4, warmup_iters=2)
    torch.save(sched.state_dict(), tmp_path / "s.pt")
    assert torch.load(tmp_path / "s.pt", weights_only=True)["last_epoch"] == 0


# ---------------------------------------------------------------- trainer
def _cfg(**kw):
    base = dict(epochs=2, batch_size=4, lr=3e-3, val_every=1, device="cpu", seed=0,
                show_progress=False, lr_milestones=(1,))
    base.update(kw)
    return TrainConfig(**base)


def test_methods_registry_has_supervised():
    method = build_method("supervised", {}, FakePoseNet(), {}, None)
    assert isinstance(method, Supervised) and "supervised" in METHODS
    with pytest.raises(KeyError, match="registered"):
        build_method("nope", {}, None, {}, None)


def test_train_steps_reduce_loss():
    torch.manual_seed(0)
    data = FakePoseDataset(num_samples=8, noise=0.0)
    batch = torch.utils.data.default_collate([data[i] for i in range(8)])
    student, method = FakePoseNet(), Supervised()
    cfg = _cfg(epochs=1, lr=1e-2)
    opt = build_optimizer("adam_step", student.parameters(), lr=1e-2)
    sched = build_scheduler("adam_step", opt, 1, 1)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    from kdlib.train.trainer import TrainStep
    step = TrainStep(student, method)
    losses = [train_one_epoch(step, [batch], opt, sched, scaler, {}, cfg, 0, False)["loss"]
              for _ in range(25)]
    assert losses[-1] < 0.5 * losses[0], losses


class _KillAt(Supervised):
    """Simulates a killed process: raises when epoch ``kill_at`` starts."""

    def __init__(self, kill_at):
        super().__init__()
        self.kill_at = kill_at

    def on_epoch_start(self, epoch, num_epochs, lr):
        if epoch == self.kill_at:
            raise KeyboardInterrupt("simulated kill")


def _train(run_dir, method, init_seed, **kw):
    torch.manual_seed(init_seed)
    student = FakePoseNet()
    train_set, val_set = FakePoseDataset(12, seed=0), FakePoseDataset(6, seed=1)
    result = fit(student, method, train_set, val_set, _cfg(**kw), run_dir, predict_fn=fake_predict)
    return result, student


def test_resume_matches_uninterrupted_run(tmp_path):
    full, full_model = _train(tmp_path / "full", Supervised(), init_seed=0, epochs=3)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "killed", _KillAt(kill_at=2), init_seed=0, epochs=3)
    # a fresh process would build a freshly initialised model: use another init seed to prove
    # the weights come from the checkpoint
    resumed, resumed_model = _train(tmp_path / "killed", Supervised(), init_seed=123, epochs=3)
    assert [r["epoch"] for r in resumed["history"]] == [1, 2, 3]
    assert resumed["metrics"] == full["metrics"]
    for a, b in zip(full_model.state_dict().values(), resumed_model.state_dict().values()):
        assert torch.equal(a, b)
    for name in ("last.pt", "best.pt", "metrics.csv", "metrics.json", "train_config.json"):
        assert (tmp_path / "killed" / name).is_file()
    assert torch.load(tmp_path / "killed" / "last.pt", weights_only=True)["epoch"] == 2


class _ExplodingMethod(Method):
    def forward(self, batch, student, teachers):
        out = student(batch["image"])
        good = out["heatmaps"].pow(2).mean()
        return {"task": good, "distill_kl": good * float("nan")}, out


def test_nan_loss_names_the_term(tmp_path):
    with pytest.raises(NonFiniteLossError, match="distill_kl"):
        _train(tmp_path, _ExplodingMethod(), init_seed=0, epochs=1)


class _ExplodingFrom(Supervised):
    """From training step ``start`` on, a loss term of 4e25 (the issue's): finite, no gradient."""

    def __init__(self, start):
        super().__init__()
        self.start, self.steps = start, 0

    def forward(self, batch, student, teachers):
        terms, out = super().forward(batch, student, teachers)
        size = 4e25 if self.steps >= self.start else 0.0
        self.steps += student.training
        return {**terms, "exploded": terms["heatmap_mse"].detach() * 0 + size}, out


def test_finite_explosion_is_flagged_as_divergence(tmp_path):
    # 3 steps per epoch: the loss explodes from epoch 2's first step
    result, _ = _train(tmp_path / "exploded", _ExplodingFrom(start=3), init_seed=0, epochs=3)
    assert result["diverged"] is True
    assert "epoch 2 mean loss 4e+25" in result["divergence"] and "limit 100 x" in result["divergence"]
    assert [bool(r.get("diverged")) for r in result["history"]] == [False, True, True]
    assert result["history"][-1]["epoch"] == 3                   # the run completes, flagged
    assert "diverged" in (tmp_path / "exploded" / "metrics.csv").read_text()
    # within the first epoch too: the reference is the loss of the run's first step
    early, _ = _train(tmp_path / "early", _ExplodingFrom(start=1), init_seed=0, epochs=1)
    assert early["diverged"] and "epoch 1 mean loss" in early["divergence"]


def test_normal_runs_are_not_flagged(tmp_path):
    from kdlib.train.trainer import DIVERGENCE_FACTOR, divergence
    result, _ = _train(tmp_path / "normal", Supervised(), init_seed=0, epochs=3)
    assert result["diverged"] is False and result["divergence"] == ""
    assert not any("diverged" in r for r in result["history"])
    first = result["history"][0]["loss_first_step"]
    assert all(r["loss"] < first for r in result["history"])     # training lowers the loss
    # the rule's edges: a rise of 10x is not a divergence, 100x and more is
    assert divergence(10.0, 1.0, 2) is None and divergence(DIVERGENCE_FACTOR, 1.0, 2) is None
    assert "limit 100 x" in divergence(1.01 * DIVERGENCE_FACTOR, 1.0, 2)


# ---------------------------------------------------------------- DDP (gloo, 2 CPU processes)
def _ddp_worker(rank, world_size, run_dir, init_file):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}",
                                         rank=rank, world_size=world_size)
    torch.set_num_threads(1)
    try:
        torch.manual_seed(rank)  # different init per rank: DDP must broadcast rank 0's weights
        student = FakePoseNet()
        result = fit(student, Supervised(), FakePoseDataset(16), FakePoseDataset(4, seed=1),
                     _cfg(epochs=1), run_dir, predict_fn=fake_predict)
        # parameters are synchronised; BN running statistics stay per-rank (rank 0's are saved)
        torch.save({"params": dict(student.named_parameters()), "history": result["history"]},
                   Path(run_dir) / f"rank{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


def test_ddp_gloo_two_processes(tmp_path):
    mp.start_processes(_ddp_worker, args=(2, str(tmp_path), str(tmp_path / "init")), nprocs=2,
                       join=True, start_method="fork")
    states = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for key, value in states[0]["params"].items():
        assert torch.equal(value, states[1]["params"][key]), key
    assert "val/AP" in states[0]["history"][0] and "val/AP" not in states[1]["history"][0]
    assert (tmp_path / "last.pt").is_file() and (tmp_path / "metrics.csv").is_file()


# ---------------------------------------------------------------- experiments: cache, teachers, lock
def _fake_cfg(**kw):
    from kdlib.experiment import ExperimentConfig
    base = dict(profile="smoke", dataset="fake", student_builder="fake", model="fake", seed=0,
                train={"show_progress": False})
    base.update(kw)
    return ExperimentConfig(**base)


def _run_in_process(cfg_dict, runs, log):
    os.environ.update(KDLIB_RUNS=runs, FAKE_BUILD_LOG=log, OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    from toy.fake import register_fakes
    from kdlib.experiment import ExperimentConfig, run_experiment
    register_fakes()
    run_experiment(ExperimentConfig.from_dict(cfg_dict), show_progress=False)


def test_experiment_cache_teachers_and_lock(tmp_path, monkeypatch):
    from dataclasses import asdict
    from toy.fake import register_fakes
    from kdlib.experiment import ExperimentConfig, config_hash, run_experiment
    log = tmp_path / "builds.log"
    monkeypatch.setenv("KDLIB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("FAKE_BUILD_LOG", str(log))
    register_fakes()
    teacher = _fake_cfg(seed=7)
    student = _fake_cfg(teachers={"teacher": teacher}, init_from=teacher, paper="toy")
    assert config_hash(student) == config_hash(_fake_cfg(teachers={"teacher": teacher},
                                                         init_from=teacher, paper="other"))
    assert ExperimentConfig.from_dict(asdict(student)) == student
    # two processes need the same teacher at once: it is trained once (file lock)
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_run_in_process, args=(asdict(teacher), str(tmp_path / "runs"), str(log)))
             for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert log.read_text().split() == ["7"]
    result = run_experiment(student, show_progress=False)       # teacher cached; init from it
    assert log.read_text().split() == ["7", "7", "0"]           # teacher rebuilt to load it, student built
    for key in ("metrics", "params_M", "gflops_paper", "train_time_s", "run_dir", "checkpoint"):
        assert key in result
    assert Path(result["run_dir"], "config.json").is_file()
    again = run_experiment(student, show_progress=False)        # finished: stored result returned
    assert again["metrics"] == result["metrics"] and log.read_text().split() == ["7", "7", "0"]


def test_bench_train_method_overheads():
    importlib.import_module("kdlib.models")
    from kdlib.profiles import get_profile
    from kdlib.benchmarks.train import method_overheads
    rows = method_overheads(get_profile("smoke"), _cfg(batch_size=2), ["supervised", "sdp", "unified"],
                            steps=1, rounds=1, log=None)
    by_name = {r["method"]: r for r in rows}
    assert by_name["sdp"]["ratio_vs_plain"] > 0 and "joint COCO+MPII" in by_name["unified"]["note"]


def test_task_loss_adds_hourglass_intermediate_supervision():
    """Every stack of a Stacked Hourglass is supervised (aux_heatmaps), as in bearpaw/pytorch-pose."""
    from kdlib.losses import joints_mse
    from kdlib.methods.base import task_loss
    g = torch.Generator().manual_seed(0)
    target, weight = torch.rand(2, 3, 8, 6, generator=g), torch.ones(2, 3)
    final, aux = torch.rand(2, 3, 8, 6, generator=g), torch.rand(2, 3, 8, 6, generator=g)
    batch = {"heatmap": target, "target_weight": weight}
    plain = task_loss({"heatmaps": final}, batch)["heatmap_mse"]
    stacked = task_loss({"heatmaps": final, "aux_heatmaps": [aux]}, batch)["heatmap_mse"]
    torch.testing.assert_close(stacked, plain + joints_mse(aux, target, weight))
