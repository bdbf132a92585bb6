"""Atomic checkpoints that load with ``torch.load(weights_only=True)``.

A checkpoint holds only tensors and plain Python values: model / optimiser / scheduler / scaler /
method state dicts, the epoch, the metric history, and the RNG states of python, numpy, torch and
CUDA (numpy's state is converted to a tensor so the safe unpickler accepts it).
"""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from kdlib.train.ema import checkpoint_entries


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    """torch.save to a temporary file in the same directory, then os.replace (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write text atomically (tmp file + os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def rng_state() -> dict:
    """Python, numpy, torch (and CUDA when present) RNG states as weights_only-safe values."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) RNGs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_rng_state(state: dict) -> None:
    """Restore what ``rng_state`` captured."""
    random.setstate(_as_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(value):
    """random.setstate needs tuples all the way down (a round trip may yield lists)."""
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuple(v) for v in value)
    return value


def save_checkpoint(path, *, model, optimizer=None, scheduler=None, scaler=None, method=None,
                    epoch: int, history: list | None = None, best: dict | None = None,
                    ema=None) -> None:
    """Write everything needed to resume training after ``epoch`` (0-based, completed).

    With an ``ema`` (``kdlib.train.ema``) the ``model`` entry holds the averaged weights (those
    evaluated; mmengine's EMAHook does the same) and ``ema`` the training weights and update count.
    """
    state = {
        **checkpoint_entries(_unwrap(model), ema),
        "epoch": epoch,
        "history": history or [],
        "best": best or {},
        "rng": rng_state(),
    }
    for name, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler),
                      ("method", method)):
        if obj is not None:
            state[name] = obj.state_dict()
    atomic_torch_save(state, path)


def load_checkpoint(path, map_location="cpu") -> dict:
    """``torch.load(path, weights_only=True)`` with a clear error for a missing file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    return torch.load(path, map_location=map_location, weights_only=True)


def load_model_weights(model: torch.nn.Module, path, strict: bool = True) -> None:
    """Load the ``model`` entry of a kdlib checkpoint (or a bare state dict) into ``model``."""
    state = load_checkpoint(path)
    state = state.get("model", state)
    missing, unexpected = _unwrap(model).load_state_dict(state, strict=strict)
    if not strict and (missing or unexpected):
        print(f"load_model_weights({path}): {len(missing)} missing, {len(unexpected)} unexpected keys")


def _unwrap(model):
    """The module inside DDP / torch.compile wrappers."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)
