"""Bad files and interrupted writes: corrupt checkpoints and results, changed data, stale temporaries.

Each test feeds the fault (a truncated, empty or bit-flipped ``last.pt``, a corrupt ``result.json``,
an edited annotation file, a writer killed mid-write) and checks the kit's answer: an error naming
the file and what to do, or the cache entry moved aside and recomputed, with nothing lost.
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from toy.fake import FakePoseNet, register_fakes  # noqa: E402

from kdlib.train.checkpoint import (CHECKSUM_KEY, CheckpointError, CorruptFileError,  # noqa: E402
                                    CorruptFileWarning, atomic_torch_save, atomic_write_text,
                                    load_checkpoint, load_model_weights, read_json,
                                    remove_stale_tmp, save_checkpoint)

torch.set_num_threads(1)
FIXTURES = Path(__file__).parent / "fixtures"
KDLIB = Path(__file__).resolve().parents[1] / "kdlib"


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _checkpoint(path: Path) -> FakePoseNet:
    torch.manual_seed(0)
    model = FakePoseNet()
    optimizer = torch.optim.Adam(model.parameters())
    save_checkpoint(path, model=model, optimizer=optimizer, epoch=0, history=[{"epoch": 1, "loss": 0.5}])
    return model


# ---------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("keep", [0.0, 0.5, 0.97])
def test_truncated_or_empty_checkpoint_names_file_and_remedy(tmp_path, keep):
    path = tmp_path / "last.pt"
    _checkpoint(path)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert str(path) in message and "cannot be read" in message
    assert "restarts from epoch 1" in message                # what to do


def test_bit_flipped_checkpoint_fails_its_checksum(tmp_path):
    path = tmp_path / "last.pt"
    model = _checkpoint(path)
    weight = model.head.weight.detach().contiguous().numpy().tobytes()
    data = bytearray(path.read_bytes())
    at = bytes(data).find(weight)
    assert at >= 0                                           # the tensor's bytes are stored raw
    data[at + 5] ^= 0x40                                     # one bit of one weight
    path.write_bytes(bytes(data))
    flipped = torch.load(path, weights_only=True)            # torch alone does not notice
    assert not torch.equal(flipped["model"]["head.weight"], model.head.weight)
    with pytest.raises(CheckpointError, match="checksum") as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)


def test_checksum_round_trip_and_bare_state_dicts(tmp_path):
    model = _checkpoint(tmp_path / "last.pt")
    state = load_checkpoint(tmp_path / "last.pt")
    assert CHECKSUM_KEY not in state and state["history"] == [{"epoch": 1, "loss": 0.5}]
    atomic_torch_save(model.state_dict(), tmp_path / "bare.pt")            # as best.pt / weights
    assert CHECKSUM_KEY in torch.load(tmp_path / "bare.pt", weights_only=True)
    other = FakePoseNet()
    load_model_weights(other, tmp_path / "bare.pt")                        # strict: no extra key
    assert torch.equal(other.head.weight, model.head.weight)
    torch.save(model.state_dict(), tmp_path / "foreign.pt")                # no checksum: unverified
    load_model_weights(other, tmp_path / "foreign.pt")


# ---------------------------------------------------------------- atomic writes
def test_atomic_writes_respect_the_umask_and_fsync(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    for umask, mode in ((0o022, 0o644), (0o002, 0o664), (0o077, 0o600)):
        old = os.umask(umask)
        try:
            atomic_write_text(tmp_path / f"table_{umask}.csv", "a,b\n1,2\n")
            atomic_torch_save({"x": torch.ones(2)}, tmp_path / f"ckpt_{umask}.pt")
        finally:
            os.umask(old)
        for name in (f"table_{umask}.csv", f"ckpt_{umask}.pt"):
            assert (tmp_path / name).stat().st_mode & 0o777 == mode, name
    assert len(synced) >= 12                                 # each file and its folder
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{k}_{u}.{e}" for u in (0o022, 0o002, 0o077) for k, e in (("table", "csv"), ("ckpt", "pt")))


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    import socket
    host = socket.gethostname()
    dead = tmp_path / f".last.pt.{host}-{_dead_pid()}-0a1b2c3d.tmp"
    alive = tmp_path / f".last.pt.{host}-{os.getppid()}-0a1b2c3d.tmp"       # a live writer
    legacy_old = tmp_path / ".last.pt.k2x_9q7a.tmp"                          # tempfile.mkstemp's
    legacy_new = tmp_path / ".last.pt.zz81_a0b.tmp"
    other_file = tmp_path / f".best.pt.{host}-{_dead_pid()}-0a1b2c3d.tmp"
    for p in (dead, alive, legacy_old, legacy_new, other_file):
        p.write_bytes(b"half a checkpoint")
    os.utime(legacy_old, (0, 0))
    _checkpoint(tmp_path / "last.pt")                        # the next write of last.pt cleans up
    assert not dead.exists() and not legacy_old.exists()
    assert alive.exists() and legacy_new.exists() and other_file.exists()
    assert remove_stale_tmp(tmp_path) == [other_file]       # the whole folder (run_experiment)


def test_every_csv_is_written_atomically():
    """No ``DataFrame.to_csv(<path>)``: CSVs go through ``atomic_write_text(path, df.to_csv())``."""
    to_path = re.compile(r"\.to_csv\((?!\s*(\)|(index|float_format|sep|header)\s*=))")
    offenders = []
    for path in KDLIB.rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if to_path.search(line):
                offenders.append(f"{path.relative_to(KDLIB.parent)}:{number}: {line.strip()}")
    assert not offenders, "non-atomic CSV writes:\n" + "\n".join(offenders)


# ---------------------------------------------------------------- run cache
def _fake_cfg(**kw):
    from kdlib.experiment import ExperimentConfig
    base = dict(profile="smoke", dataset="fake", student_builder="fake", model="fake", seed=0,
                train={"show_progress": False}, profile_overrides={"synthpose": None})
    base.update(kw)
    return ExperimentConfig(**base)


@pytest.fixture
def fake_runs(isolated_runs):
    register_fakes()
    return isolated_runs


def test_corrupt_result_json_is_isolated_and_recomputed_without_training(fake_runs):
    from kdlib.experiment import cached_result, run_experiment
    cfg = _fake_cfg()
    first = run_experiment(cfg, show_progress=False)
    path = Path(first["run_dir"]) / "result.json"
    path.write_text(path.read_text()[:100])                  # truncated JSON
    with pytest.raises(CorruptFileError, match=re.escape(str(path))):
        read_json(path)
    with pytest.warns(CorruptFileWarning, match=re.escape(str(path))):
        assert cached_result(cfg) is None                    # moved aside at once (run not busy)
    aside = list(Path(first["run_dir"]).glob("corrupt-*/result.json"))
    assert len(aside) == 1 and not path.exists()
    again = run_experiment(cfg, show_progress=False)         # recomputed from the final last.pt
    assert again["history"] == first["history"] and again["metrics"] == first["metrics"]
    assert again["train_time_s"] == first["train_time_s"]   # no epoch was trained again
    assert cached_result(cfg)["metrics"] == first["metrics"]
    path.write_text("[1, 2]")                                # valid JSON, not a result
    with pytest.warns(CorruptFileWarning, match="expected a JSON object"):
        assert run_experiment(cfg, show_progress=False)["metrics"] == first["metrics"]


def test_corrupt_last_pt_is_moved_aside_and_the_run_restarts(fake_runs):
    from kdlib.experiment import run_experiment
    cfg = _fake_cfg()
    first = run_experiment(cfg, show_progress=False)
    run_dir = Path(first["run_dir"])
    (run_dir / "result.json").unlink()                       # as if killed before the result
    last = run_dir / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    with pytest.warns(CorruptFileWarning, match=re.escape(str(last))):
        again = run_experiment(cfg, show_progress=False)
    assert len(list(run_dir.glob("corrupt-*/last.pt"))) == 1
    assert again["metrics"] == first["metrics"]              # retrained from epoch 1, same seed
    assert load_checkpoint(last)["epoch"] == first["epochs"] - 1


def test_finished_run_with_corrupt_checkpoint_says_what_to_do(fake_runs):
    from kdlib.experiment import load_trained, run_experiment
    result = run_experiment(_fake_cfg(), show_progress=False)
    Path(result["checkpoint"]).write_bytes(b"")
    with pytest.raises(CheckpointError, match="finished run .* move that folder aside"):
        load_trained(result)


def test_stale_tmp_files_in_a_run_folder_are_removed(fake_runs):
    from kdlib.experiment import run_dir_of, run_experiment
    import socket
    cfg = _fake_cfg()
    run_dir = run_dir_of(cfg)
    run_dir.mkdir(parents=True)
    stale = run_dir / f".best.pt.{socket.gethostname()}-{_dead_pid()}-00000000.tmp"
    stale.write_bytes(b"killed mid-write")
    run_experiment(cfg, show_progress=False)
    assert not stale.exists()


# ---------------------------------------------------------------- data fingerprint
def _real_data_cfg(data_root: Path, **kw):
    return _fake_cfg(dataset="coco", model="sbl_r50", student_builder="model",
                     profile_overrides={"synthpose": None, "data_root": str(data_root)}, **kw)


def test_changed_annotation_file_changes_the_run_key(isolated_runs, tmp_path):
    from kdlib.experiment import cached_result, config_hash, data_fingerprint, run_dir_of
    data = tmp_path / "data"
    shutil.copytree(FIXTURES / "coco", data / "coco")
    cfg = _real_data_cfg(data)
    key = config_hash(cfg)
    fingerprint = data_fingerprint(cfg)
    assert [f[0] for f in fingerprint["train"]] == ["person_keypoints_train2017.json"]
    assert [f[0] for f in fingerprint["val"]] == ["person_keypoints_val2017.json"]
    run_dir_of(cfg).mkdir(parents=True)                      # a finished run of that data
    atomic_write_text(run_dir_of(cfg) / "result.json",
                      json.dumps(dict(config={}, metrics={"AP": 1.0}, checkpoint="", run_dir="")))
    assert cached_result(cfg)["metrics"] == {"AP": 1.0}
    ann = data / "coco" / "annotations" / "person_keypoints_train2017.json"
    text = ann.read_text()
    ann.write_text(text.replace('"iscrowd": 0', '"iscrowd": 1', 1))     # same size, new content
    assert ann.stat().st_size == len(text)
    assert config_hash(cfg) != key and cached_result(cfg) is None       # no stale metrics
    ann.write_text(text)                                     # new mtime, the old content
    assert config_hash(cfg) == key and cached_result(cfg)["metrics"] == {"AP": 1.0}
    det = _real_data_cfg(data, val_dataset_params={"boxes": "det"})
    assert [f[0] for f in data_fingerprint(det)["val"]][-1].startswith("COCO_val2017_detections")


def test_mpii_val_fingerprint_covers_gt_valid_mat(tmp_path):
    from kdlib.experiment import config_hash, data_fingerprint
    shutil.copytree(FIXTURES / "mpii", tmp_path / "mpii")
    cfg = _fake_cfg(dataset="mpii", model="sbl_r50", student_builder="model", val_split="valid",
                    profile_overrides={"synthpose": None, "data_root": str(tmp_path)})
    assert [f[0] for f in data_fingerprint(cfg)["val"]] == ["valid.json", "gt_valid.mat"]
    key = config_hash(cfg)
    mat = tmp_path / "mpii" / "annot" / "gt_valid.mat"
    mat.write_bytes(mat.read_bytes() + b"\0")
    assert config_hash(cfg) != key
    mat.unlink()
    assert data_fingerprint(cfg)["val"][1] == ["gt_valid.mat", None, None]


def test_synthpose_key_is_the_generators_and_needs_no_data(monkeypatch, tmp_path):
    import importlib
    generate = importlib.import_module("kdlib.data.synthpose.generate")
    from kdlib.experiment import ExperimentConfig, config_hash, data_fingerprint
    cfg = ExperimentConfig(profile="smoke", dataset="coco", profile_overrides={
        "data_root": str(tmp_path / "never_generated")})
    assert data_fingerprint(cfg) == {"synthpose_version": generate.VERSION}
    key = config_hash(cfg)
    assert not (tmp_path / "never_generated").exists()       # computing a key generates nothing
    monkeypatch.setattr(generate, "VERSION", generate.VERSION + 1)
    assert config_hash(cfg) != key                           # a new generator: new runs


def test_teacher_data_is_part_of_the_student_key(tmp_path):
    from kdlib.experiment import config_hash
    shutil.copytree(FIXTURES / "coco", tmp_path / "coco")
    teacher = _real_data_cfg(tmp_path, seed=1)
    student = _fake_cfg(teachers={"teacher": teacher})
    key = config_hash(student)
    ann = tmp_path / "coco" / "annotations" / "person_keypoints_val2017.json"
    ann.write_text(ann.read_text() + "\n")
    assert config_hash(student) != key


# ---------------------------------------------------------------- SynthPose
SMALL = dict(num_train=3, num_val=2, image_size=(64, 64), seed=0, formats=("coco", "mpii"))


def test_edited_synthpose_file_is_detected_and_regenerated(tmp_path):
    from kdlib.data.synthpose.generate import STAMP, ensure_root
    root = ensure_root(tmp_path / "sp", SMALL, workers=1, verbose=False)
    stamp = json.loads((root / STAMP).read_text())
    assert "coco/annotations/person_keypoints_train2017.json" in stamp["files"]
    assert "mpii/annot/gt_valid.mat" in stamp["files"]
    ann = root / "coco" / "annotations" / "person_keypoints_train2017.json"
    good = ann.read_bytes()
    ann.write_bytes(good.replace(b'"iscrowd":0', b'"iscrowd":1', 1))
    with pytest.warns(UserWarning, match=re.escape(str(ann))):
        ensure_root(root, SMALL, workers=1, verbose=False)
    assert ann.read_bytes() == good
    assert (root / STAMP).stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def test_interrupted_synthpose_generation_leaves_nothing_behind(tmp_path):
    from kdlib.data.synthpose.generate import ensure_root
    dead, alive = _dead_pid(), os.getppid()
    for name in (f".sp.tmp-{dead}", f".sp.old-{dead}", f".sp.tmp-{alive}", f".other.tmp-{dead}"):
        (tmp_path / name / "coco").mkdir(parents=True)
    with pytest.warns(UserWarning, match="interrupted SynthPose generation"):
        ensure_root(tmp_path / "sp", SMALL, workers=1, verbose=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".sp.lock", "sp", f".sp.tmp-{alive}", f".other.tmp-{dead}"])
