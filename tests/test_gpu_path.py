"""The GPU path, made as certain as a CPU can make it (no GPU is lent to the project's machines).

1. bf16 autocast + channels_last: one training step of every network in ``MODELS`` (plain
   supervised) and of every method in ``METHODS`` (in its paper's setup, ``kdlib.benchmarks.train.SETUPS``;
   TwoStage-GCN stage 2 and Unified-MT in theirs), through the trainer's own ``_prepare`` (weights
   to channels_last, teachers frozen) and ``train_one_epoch`` with ``amp=True, channels_last=True``
   on CPU. Checked: the student ran in bf16 on a channels_last input; loss, gradients and updated
   weights are finite; bf16 reaches the same parameters as fp32, its loss is within 2% of the fp32
   loss (measured: at most 0.9%) and its gradient norm within 0.1-10 x fp32's (measured 0.64-5.2).
   Not the gradient's direction: at initialisation, with batch 2 and BatchNorm over maps of a few
   pixels, bf16 rounding alone (emulated in fp64) brings the cosine between the whole bf16 and
   fp32 gradients down to 0.33 (Hourglass-8) and 0.73 (RTMPose-m); the norm window still catches
   broken kernels (below).
   RTMPose runs at 128x96: at 64x48 its 7x7 head conv reads a 2x2 map, and oneDNN's bf16 weight
   gradient of a conv whose kernel overhangs the whole input is wrong on CPU (errors of 1e36 x the
   gradient, sometimes inf; fp32 is right, 4x3 and larger maps are right, the papers' 256x192 gives
   8x6). A CPU backend bug, not the network's; AMP is off on CPU unless asked.
2. ``torch.compile``: a paper's student traces without a graph break (``fullgraph=True``) and, in
   train mode, its outputs, gradients and BatchNorm running statistics match eager to
   max |compiled - eager| <= 1e-4 x max |eager| (fp32). Default run: ``backend='aot_eager'``
   (Dynamo + AOTAutograd: graph capture, functionalisation and the backward graph, the
   device-independent half of the compiler) on SBL-R50 (SDP), RTMPose-t (Unified-MT) and ELPN-v1
   (ELPN-MAPD). Slow run: the other students with aot_eager, and every student with ``inductor``
   (cold CPU builds take tens of seconds each).
3. DDP: 2 gloo processes (``mp.spawn``, file:// rendezvous), wrapped by the trainer's ``_prepare``,
   each on half of a batch, give the same gradients (1e-5, same measure) as one process on the
   whole batch, identical on both ranks; ``ddp.all_reduce_mean`` of the two losses is the whole
   batch's loss; the sampler's shards are disjoint. BatchNorm runs in eval mode with fixed,
   non-trivial running statistics in both: train-mode BN normalises by each process's own batch,
   so it is not batch-splittable, and SyncBatchNorm (which would be) refuses CPU tensors.
4. ``python -m kdlib.benchmarks gpu`` (``kdlib/benchmarks/gpu.py``) says there is no GPU and exits 0;
   its measuring code runs on CPU at smoke size.

Small on purpose: smoke variants, 64x48 inputs, batch 2 (about a minute on 2 idle cores).
"""
from __future__ import annotations

import copy
import json
import os
from types import SimpleNamespace

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from kdlib.data import PipelineConfig, build_dataset
from kdlib.experiment import HEAD_TARGETS, dataset_root, ensure_data, pipeline_config
from kdlib.methods import METHODS, build_method
from kdlib.models import MODELS, build_model
from kdlib.profiles import get_profile
from kdlib.train import ddp
from kdlib.benchmarks.train import DEFAULT_SETUP, SETUPS
from kdlib.train.optim import build_optimizer, build_scheduler, trainable_parameters
from kdlib.train.trainer import TrainConfig, TrainStep, _prepare, make_loader, train_one_epoch


PROFILE = get_profile("smoke")
INPUT_SIZE = tuple(PROFILE["input_size"]["coco"])          # (64, 48)
RTM_SIZE = (128, 96)       # RTMPose's input here: see the module docstring (oneDNN bf16 bug)
RTM_PROFILE = get_profile("smoke", input_size={"coco": RTM_SIZE, "crowdpose": RTM_SIZE, "halpe": RTM_SIZE,
                                               "mpii": (128, 128), "default": RTM_SIZE})
BATCH = 2
COMPILE_RTOL = 1e-4        # compiled vs eager, relative to the largest value (test docstring)
DDP_RTOL = 1e-5            # 2-process DDP vs one process on the concatenated batch, same measure
AMP_LOSS_RTOL = 2e-2       # |loss bf16 / loss fp32 - 1|
AMP_GRAD_NORM_RATIO = (0.1, 10.0)   # |grad bf16| / |grad fp32| over all parameters of the step
AMP_CFG = TrainConfig(batch_size=BATCH, amp=True, channels_last=True, show_progress=False,
                      max_steps_per_epoch=1)
SIMCC_ONLY = ("rtmpose_t", "rtmpose_s", "rtmpose_m")


def _head(name: str) -> str:
    return "simcc" if name in SIMCC_ONLY else "heatmap"


def _size(name: str) -> tuple[int, int]:
    return RTM_SIZE if name in SIMCC_ONLY else INPUT_SIZE


_DATASETS: dict = {}


def _dataset(head: str, input_size=INPUT_SIZE):
    """The smoke-profile COCO training set with the targets of ``head`` (built once per head, size)."""
    key = (head, tuple(input_size))
    if key not in _DATASETS:
        ensure_data(PROFILE)
        cfg = PipelineConfig(input_size=tuple(input_size), targets=HEAD_TARGETS[head], train=True)
        _DATASETS[key] = build_dataset("coco", "train", dataset_root(PROFILE, "coco"), cfg)
    return _DATASETS[key]


def _batch(dataset, indices=range(BATCH)) -> dict:
    return torch.utils.data.default_collate([dataset[i] for i in indices])


def _model(name: str, head: str, num_joints: int = 17, input_size=None) -> nn.Module:
    return build_model(name, num_joints, head=head, input_size=input_size or _size(name), variant="smoke")


# ------------------------------------------------------------------ 1. bf16 autocast + channels_last
def _fp32_step(student, method, teachers: dict, batch: dict) -> tuple[float, dict]:
    """The same step's loss and gradients in fp32, contiguous, on deep copies (bf16's reference)."""
    step = copy.deepcopy(TrainStep(student, method)).train()
    torch.manual_seed(1)
    terms, _ = step(batch, teachers)
    loss = sum(terms.values())
    loss.backward()
    return float(loss.detach()), {n: p.grad for n, p in step.named_parameters() if p.grad is not None}


def _amp_step(student, method, teachers: dict, batch: dict) -> dict:
    """One ``train_one_epoch`` step in bf16 + channels_last; what the student saw and produced."""
    for teacher in teachers.values():                  # frozen as fit's _prepare does, for both
        teacher.eval().requires_grad_(False)
    reference_loss, reference = _fp32_step(student, method, teachers, batch)
    step = _prepare(student, method, teachers, AMP_CFG, ddp.DistInfo())
    seen = {}
    student.register_forward_hook(lambda module, args, out: seen.update(
        input_channels_last=args[0].is_contiguous(memory_format=torch.channels_last),
        feature_dtype=out["feature"].dtype))
    optimizer = build_optimizer("adam_step", trainable_parameters(step))
    scheduler = build_scheduler("adam_step", optimizer, 1, 1)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    torch.manual_seed(1)
    stats = train_one_epoch(step, [batch], optimizer, scheduler, scaler, teachers, AMP_CFG, 0, False)
    grads = {n: p.grad for n, p in step.named_parameters() if p.grad is not None}
    return dict(seen, loss=stats["loss"], grads=grads, reference=reference, reference_loss=reference_loss,
                params_finite=all(bool(torch.isfinite(p).all()) for p in step.parameters()))


def _norm(grads: dict) -> float:
    return float(torch.cat([g.float().flatten() for g in grads.values()]).norm())


def _check_amp_step(result: dict) -> None:
    assert result["feature_dtype"] == torch.bfloat16, "the student did not run under bf16 autocast"
    assert result["input_channels_last"], "the student's input was not channels_last"
    assert torch.isfinite(torch.tensor(result["loss"])), result["loss"]
    bad = [n for n, g in result["grads"].items() if not bool(torch.isfinite(g).all())]
    assert not bad, f"non-finite gradients: {bad[:5]}"
    assert set(result["grads"]) == set(result["reference"]), "bf16 and fp32 reach different parameters"
    assert abs(result["loss"] / result["reference_loss"] - 1) <= AMP_LOSS_RTOL, result
    ratio = _norm(result["grads"]) / _norm(result["reference"])
    low, high = AMP_GRAD_NORM_RATIO
    assert low <= ratio <= high, f"|grad bf16| / |grad fp32| = {ratio:.3g}"
    assert result["params_finite"], "a parameter became non-finite after the optimiser step"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_network_trains_one_step_in_bf16_channels_last(name):
    torch.manual_seed(0)
    head = _head(name)
    dataset = _dataset(head, _size(name))
    student = _model(name, head)
    result = _amp_step(student, build_method("supervised", {}, student, {}, dataset), {},
                       _batch(dataset))
    _check_amp_step(result)
    missing = [n for n, p in student.named_parameters()
               if p.requires_grad and f"student.{n}" not in result["grads"]]
    assert not missing, f"parameters without a gradient: {missing[:5]}"


def _two_stage_gcn_setup():
    """Stage 2: the IGP-GCN refiner on a (here untrained) frozen HRNet-W32 SimCC student."""
    from kdlib.models.igp_gcn import build_refiner_student
    dataset = _dataset("simcc")
    cfg = SimpleNamespace(model="hrnet_w32", head="simcc", dataset="coco", model_params={})
    student = build_refiner_student(cfg, PROFILE, 17, INPUT_SIZE, None)
    teachers = {"teacher": _model("hrnet_w48", "simcc")}
    return student, teachers, dataset, _batch(dataset), {"target": "teacher"}


def _unified_setup():
    """Unified-MT: RTMPose-t on the joint COCO+MPII set (21 points), one teacher per dataset."""
    from kdlib.experiment import DATASET_BUILDERS
    from kdlib.paper_tables.unified import experiment_config
    from kdlib.skeletons import SKELETONS
    cfg = experiment_config("smoke", 0, "rtmpose_t", "unified")
    pipeline = pipeline_config(cfg, RTM_PROFILE, "coco", True)
    dataset = DATASET_BUILDERS["unified"](cfg, RTM_PROFILE, "train", pipeline)
    split = dataset.cfg.simcc_split_ratio
    student = build_model("rtmpose_t", dataset.skeleton.num_joints, head="simcc", input_size=RTM_SIZE,
                          variant="smoke", simcc_split_ratio=split)
    teachers = {n: build_model("rtmpose_m", SKELETONS[n].num_joints, head="simcc", variant="smoke",
                               input_size=dataset.teacher_input_sizes[n], simcc_split_ratio=split)
                for n in ("coco", "mpii")}
    batch = _batch(dataset, [0, int(dataset.offsets[1])])   # one person from each source
    return student, teachers, dataset, batch, {}


def _paper_setup(name: str):
    """The student, head and teachers ``kdlib.benchmarks train`` measures ``name`` with (SETUPS)."""
    setup = SETUPS.get(name, DEFAULT_SETUP)
    dataset = _dataset(setup["head"], _size(setup["student"]))
    student = _model(setup["student"], setup["head"])
    teachers = {n: _model(m, setup["head"]) for n, m in setup["teachers"].items()}
    return student, teachers, dataset, _batch(dataset), {}


SPECIAL_SETUPS = {"two_stage_gcn": _two_stage_gcn_setup, "unified": _unified_setup}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_trains_one_step_in_bf16_channels_last(name):
    torch.manual_seed(0)
    student, teachers, dataset, batch, params = (
        SPECIAL_SETUPS[name]() if name in SPECIAL_SETUPS else _paper_setup(name))
    method = build_method(name, params, student, teachers, dataset)
    _check_amp_step(_amp_step(student, method, teachers, batch))


# ------------------------------------------------------------------ 2. torch.compile vs eager
STUDENTS = {  # paper -> the networks it trains as students (head as the paper trains it)
    "sdp": (("sbl_r50", "heatmap"), ("hourglass4", "heatmap")),
    "two_stage_gcn": (("hrnet_w32", "simcc"),),
    "ekr": (("litehrnet_18", "simcc"), ("litehrnet_30", "simcc")),
    "unified": (("rtmpose_t", "simcc"), ("rtmpose_s", "simcc")),
    "elpn_mapd": (("elpn_v1", "heatmap"), ("elpn_v2", "heatmap")),
}
# Default run: aot_eager on these (on 2 idle cores: sbl_r50 2 s, rtmpose_t 2 s, elpn_v1 6 s; slow:
# hrnet_w32 7 s, hourglass4 7 s, litehrnet_18 15 s, ...; the first compile also imports Dynamo, ~4 s).
FAST_COMPILE = {"sbl_r50", "rtmpose_t", "elpn_v1"}


# Inductor's layout optimisation (convs switched to channels_last inside the graph) gives SBL-R50's
# deconv weight gradients an error of 1.7e-3 x the largest gradient (3% of that tensor; eager fp32:
# 1.4e-7): the same graph with torch._inductor.config.layout_optimization=False, with the inductor
# decompositions run eagerly (aot_eager_decomp_partition), or in fp64 is exact. A PyTorch CPU issue
# (torch 2.15), not the network's; the GPU path compiles with the same default.
INDUCTOR_XFAIL = {"sbl_r50": "inductor CPU layout optimisation: deconv weight grads 1.7e-3 off (see above)"}


def _compile_cases():
    for paper, students in STUDENTS.items():
        for name, head in students:
            for backend in ("aot_eager", "inductor"):
                marks = [] if backend == "aot_eager" and name in FAST_COMPILE else [pytest.mark.slow]
                if backend == "inductor" and name in INDUCTOR_XFAIL:
                    marks.append(pytest.mark.xfail(reason=INDUCTOR_XFAIL[name], strict=False))
                yield pytest.param(name, head, backend, id=f"{paper}-{name}-{backend}", marks=marks)


def _max_rel_diff(got, expected) -> float:
    """max |got - expected| / max |expected| over matching tensors (one number for all)."""
    pairs = [(g.detach().double(), e.detach().double()) for g, e in zip(got, expected)]
    diff = max(float((g - e).abs().max()) for g, e in pairs)
    return diff / max(max(float(e.abs().max()) for _, e in pairs), 1e-300)


def _train_step_results(model, x: torch.Tensor) -> dict[str, list]:
    """Outputs, gradients and floating-point buffers (BN running statistics) after one train-mode
    forward + backward of ``model`` on ``x``."""
    out = model(x)
    sum(out[k].float().square().mean() for k in ("heatmaps", "simcc_x", "simcc_y") if k in out).backward()
    module = getattr(model, "_orig_mod", model)
    return {**{k: [out[k]] for k in ("heatmaps", "simcc_x", "simcc_y", "feature") if k in out},
            "gradients": [p.grad for p in module.parameters()],
            "buffers": [b for b in module.buffers() if b.is_floating_point()]}


@pytest.mark.parametrize("name, head, backend", list(_compile_cases()))
def test_compiled_student_matches_eager(name, head, backend):
    """fullgraph (no graph break), train mode; each output, all gradients and all BN statistics:
    |compiled fp32 - eager fp64| <= max(1e-4, 10 x |eager fp32 - eager fp64|), relative to the
    largest value (the second term: networks whose BN over few-pixel maps amplifies rounding)."""
    torch.manual_seed(0)
    eager = _model(name, head).train()
    reference, compiled = copy.deepcopy(eager).double(), copy.deepcopy(eager)
    x = torch.randn(BATCH, 3, *_size(name), generator=torch.Generator().manual_seed(1))
    try:
        results = [_train_step_results(eager, x), _train_step_results(reference, x.double()),
                   _train_step_results(torch.compile(compiled, backend=backend, fullgraph=True), x)]
        for key, fp64 in results[1].items():
            eager_error = _max_rel_diff(results[0][key], fp64)
            assert _max_rel_diff(results[2][key], fp64) <= max(COMPILE_RTOL, 10 * eager_error), key
    finally:
        torch._dynamo.reset()


# ------------------------------------------------------------------ 3. DDP (2 gloo processes) vs one
def _frozen_bn_step(batch: dict, info: ddp.DistInfo) -> tuple[torch.Tensor, dict]:
    """Loss and student gradients of one step of SBL-R50 (smoke) with eval-mode BatchNorm (fixed,
    non-trivial running statistics), wrapped by the trainer's ``_prepare`` (DDP when ``info`` is)."""
    torch.manual_seed(0)
    student = _model("sbl_r50", "heatmap")
    g = torch.Generator().manual_seed(2)
    norms = [m for m in student.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in norms:
        bn.running_mean.uniform_(-0.5, 0.5, generator=g)
        bn.running_var.uniform_(0.5, 2.0, generator=g)
    cfg = TrainConfig(batch_size=BATCH, show_progress=False)
    step = _prepare(student, build_method("supervised", {}, student, {}, None), {}, cfg, info)
    step.train()
    for bn in norms:
        bn.eval()
    terms, _ = step(batch, {})
    loss = sum(terms.values())
    loss.backward()
    return loss.detach(), {n: p.grad for n, p in student.named_parameters()}


def _ddp_worker(rank: int, world_size: int, init_file: str, data_file: str, out_dir: str):
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                                         world_size=world_size)
    torch.set_num_threads(1)
    try:
        info = ddp.setup_distributed()                 # already initialised: this process's ranks
        whole = torch.load(data_file, weights_only=True)
        shard = {k: v[rank * BATCH:(rank + 1) * BATCH] for k, v in whole.items()}
        loss, grads = _frozen_bn_step(shard, info)
        loader = make_loader(list(range(8)), TrainConfig(batch_size=BATCH), 0, True, info)
        torch.save({"info": [info.rank, info.world_size], "grads": grads,
                    "loss": ddp.all_reduce_mean(loss[None]), "indices": list(loader.sampler)},
                   os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        ddp.cleanup()


def test_ddp_two_gloo_processes_equal_one_process_on_the_concatenated_batch(tmp_path):
    whole = _batch(_dataset("heatmap"), range(2 * BATCH))           # (2B, ...): rank r gets rows rB..
    torch.save({k: v for k, v in whole.items() if isinstance(v, torch.Tensor)}, tmp_path / "batch.pt")
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path / "batch.pt"), str(tmp_path)),
             nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    loss, grads = _frozen_bn_step(whole, ddp.DistInfo())
    assert [r["info"] for r in ranks] == [[0, 2], [1, 2]]
    assert sorted(ranks[0]["indices"] + ranks[1]["indices"]) == list(range(8))   # disjoint shards
    for name, grad in grads.items():
        assert torch.equal(ranks[0]["grads"][name], ranks[1]["grads"][name]), name
    names = list(grads)
    assert _max_rel_diff([ranks[0]["grads"][n] for n in names], [grads[n] for n in names]) <= DDP_RTOL
    assert float(ranks[0]["loss"]) == pytest.approx(float(loss), rel=DDP_RTOL)


# ------------------------------------------------------------------ 4. python -m kdlib.benchmarks gpu
def test_gpu_bench_without_a_gpu_says_so_and_exits_0(monkeypatch, capsys):
    from kdlib.benchmarks import gpu as gpu_bench
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_bench.main([]) == 0
    out = capsys.readouterr().out
    assert "no GPU" in out and all(name in out for name in gpu_bench.NETWORKS)
    assert "256x192" in out and "256x256" in out            # the papers' input sizes


def test_gpu_bench_measures_on_cpu_at_smoke_size(capsys, tmp_path):
    from kdlib.benchmarks import gpu as gpu_bench
    argv = ["--device", "cpu", "--variant", "smoke", "--profile", "smoke", "--batch-size", "2",
            "--input-size", *map(str, INPUT_SIZE), "--networks", "sbl_r50", "--modes", "fp32", "amp",
            "amp_cl", "--warmup", "1", "--steps", "1", "--data-steps", "2",
            "--json", str(tmp_path / "r.json")]
    assert gpu_bench.main(argv) == 0
    (result,) = json.loads((tmp_path / "r.json").read_text())
    assert set(result["modes"]) == {"fp32", "amp", "amp_cl"}
    assert all(m["images_per_s"] > 0 for m in result["modes"].values())
    assert 0 <= result["data"]["data_wait_share"] <= 1
