"""Checkpoints and cache files that are written atomically and verified when read.

A checkpoint holds only tensors and plain Python values (it loads with
``torch.load(weights_only=True)``): model / optimiser / scheduler / scaler / method state dicts, the
epoch, the metric history, and the RNG states of python, numpy, torch and CUDA (numpy's state is
converted to a tensor so the safe unpickler accepts it).

Integrity, for files that outlive the process that wrote them (checkpoints, ``result.json``,
tables):

- every write goes to a temporary sibling ``.<name>.<host>-<pid>-<random>.tmp``, is ``fsync``-ed,
  then renamed over the target (and the folder fsync-ed): a reader sees the old file or the new
  one, never half of one, also after a power cut. The temporary file is created with mode 0666
  minus the umask, as ``open()`` would (``tempfile.mkstemp`` gives 0600: unreadable by a team on a
  shared cluster). Temporary files left by a killed writer (its pid dead on this host, or older than
  a day) are removed by the next write of the same file (``remove_stale_tmp``).
- every dict saved by ``atomic_torch_save`` carries ``CHECKSUM_KEY``: the SHA-256 of its tensors'
  bytes and plain values (``state_checksum``), verified by ``load_checkpoint``, which raises
  ``CheckpointError`` naming the file and what to do, for a truncated, empty, corrupt or
  bit-flipped file (torch's zip reader does not check its records' CRCs: a flipped bit in a weight
  loads silently otherwise). Files without the key (written before, or by other tools) load
  unverified.
- ``read_json`` raises ``CorruptFileError`` naming an unreadable JSON file; ``quarantine`` moves a
  corrupt cache file to ``<its folder>/corrupt-<time>/`` with a warning naming both places, so that
  the caller can recompute it (``read_json_or_isolate``).
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import secrets
import socket
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from kdlib.train.ema import checkpoint_entries

CHECKSUM_KEY = "kdlib_sha256"
STALE_TMP_AGE_S = 24 * 3600            # a temporary file whose writer cannot be identified
_HOST = socket.gethostname()
_OWN_HOST_TMP = re.compile(rf"\.{re.escape(_HOST)}-(\d+)-[0-9a-f]{{8}}\.tmp$")   # see atomic_open


class CorruptFileError(ValueError):
    """A file that exists but cannot be used; the message names it and says what to do."""

    def __init__(self, path, problem: str, remedy: str = ""):
        self.path, self.problem = Path(path), problem
        super().__init__(f"{path}: {problem}." + (f" {remedy}" if remedy else ""))


class CheckpointError(CorruptFileError):
    """A checkpoint that is truncated, empty, unreadable or fails its checksum."""


class CorruptFileWarning(UserWarning):
    """A corrupt cache file was moved aside (``quarantine``) and will be recomputed."""


# ----------------------------------------------------------------------------- atomic writes
@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb"):
    """Open a temporary sibling of ``path`` for writing; on success fsync it and rename it over
    ``path`` (never half-written; mode 0666 minus the umask); on an exception delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(path.parent, path.name)
    tmp = path.with_name(f".{path.name}.{_HOST}-{os.getpid()}-{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)   # the umask applies
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    """``torch.save`` atomically; a dict gets ``CHECKSUM_KEY`` (verified by ``load_checkpoint``)."""
    if isinstance(obj, dict):
        body = {k: v for k, v in obj.items() if k != CHECKSUM_KEY}
        obj = {**body, CHECKSUM_KEY: state_checksum(body)}
    with atomic_open(path, "wb") as handle:
        torch.save(obj, handle)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write text atomically (CSV, JSON, Markdown: see ``atomic_open``)."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename inside ``folder`` durable (no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:                 # exists, owned by someone else
        return True
    return True


def remove_stale_tmp(folder: str | os.PathLike, name: str = "") -> list[Path]:
    """Delete the ``.<name>.*.tmp`` files in ``folder`` (every ``.*.tmp`` without ``name``) whose
    writer is dead: written on this host by a pid that no longer exists, or, for names without a
    host and pid (older kdlib used ``tempfile.mkstemp``), untouched for ``STALE_TMP_AGE_S``."""
    prefix, removed = f".{name}." if name else ".", []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not (entry.name.startswith(prefix) and entry.name.endswith(".tmp")) or not entry.is_file():
            continue
        if _tmp_is_stale(entry):
            Path(entry.path).unlink(missing_ok=True)
            removed.append(Path(entry.path))
    return removed


def _tmp_is_stale(entry: os.DirEntry) -> bool:
    mine = _OWN_HOST_TMP.search(entry.name)
    if mine:
        return not pid_alive(int(mine[1]))
    try:
        return time.time() - entry.stat().st_mtime > STALE_TMP_AGE_S
    except OSError:
        return False


# ----------------------------------------------------------------------------- corrupt files
def quarantine(path: str | os.PathLike, reason: str) -> Path:
    """Move ``path`` to ``<its folder>/corrupt-<time>/<name>``, warn naming both; return the new path."""
    path = Path(path)
    folder = path.parent / f"corrupt-{time.strftime('%Y%m%d-%H%M%S')}"
    folder.mkdir(exist_ok=True)
    target, n = folder / path.name, 1
    while target.exists():
        target, n = folder / f"{path.name}.{n}", n + 1
    os.replace(path, target)
    warnings.warn(f"{path} is corrupt ({reason}); moved it to {target}: it will be recomputed",
                  CorruptFileWarning, stacklevel=2)
    return target


def read_json(path: str | os.PathLike, check=None, remedy: str = ""):
    """The JSON value in ``path``, None when there is no such file. Raises ``CorruptFileError``
    naming the file when it is not JSON or when ``check(value)`` returns a problem (a string)."""
    path = Path(path)
    try:
        value = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValueError as err:              # JSONDecodeError, UnicodeDecodeError
        raise CorruptFileError(path, f"not valid JSON ({err})", remedy) from None
    problem = check(value) if check else None
    if problem:
        raise CorruptFileError(path, problem, remedy)
    return value


def read_json_or_isolate(path: str | os.PathLike, check=None):
    """``read_json``, but a corrupt file is moved aside (``quarantine``) and None returned, so that
    the caller recomputes it (cache files: ``result.json``, a driver's ``summary.json``)."""
    try:
        return read_json(path, check)
    except CorruptFileError as err:
        quarantine(path, err.problem)
        return None


def file_digest(path: str | os.PathLike, algorithm: str = "sha1") -> str:
    """Hex digest of a file's bytes (``hashlib`` algorithm), computed once per process for a given
    (file, inode, size, mtime)."""
    path = Path(path)
    st = path.stat()
    key = (algorithm, str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.new(algorithm)
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def file_sha1(path: str | os.PathLike) -> str:
    """SHA-1 of a file's bytes (the run key's data fingerprint)."""
    return file_digest(path, "sha1")


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (released checkpoints, written checkpoints' integrity)."""
    return file_digest(path, "sha256")


_DIGESTS: dict[tuple, str] = {}


# ----------------------------------------------------------------------------- checksums
def state_checksum(state) -> str:
    """SHA-256 over a (nested) state: each tensor's dtype, shape and bytes, and the plain values
    (dict entries in key order; lists and tuples alike, as ``weights_only`` may return either)."""
    digest = hashlib.sha256()
    _update(digest, state)
    return digest.hexdigest()


def _update(digest, value) -> None:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"T{tensor.dtype}{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().data)
    elif isinstance(value, dict):
        digest.update(f"D{len(value)};".encode())
        for key in sorted(value, key=repr):
            _update(digest, key)
            _update(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"L{len(value)};".encode())
        for item in value:
            _update(digest, item)
    else:
        digest.update(f"{type(value).__name__}:{value!r};".encode())


# ----------------------------------------------------------------------------- RNG states
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


# ----------------------------------------------------------------------------- checkpoints
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
    """``torch.load(path, weights_only=True)``, its checksum verified and removed.

    Raises ``FileNotFoundError`` for a missing file and ``CheckpointError`` (naming the file and
    what to do) for one that is empty, truncated, unreadable or fails its checksum.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except PermissionError:
        raise
    except Exception as err:                 # zip / EOF / EINVAL / unpickling errors name no file
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(path, f"cannot be read as a checkpoint ({path.stat().st_size} bytes; "
                                    f"{type(err).__name__}: {reason})", _remedy(path)) from err
    if isinstance(state, dict) and CHECKSUM_KEY in state:
        stored = state.pop(CHECKSUM_KEY)
        if state_checksum(state) != stored:
            raise CheckpointError(path, "its content does not match the SHA-256 checksum stored when "
                                        "it was written (a bit flipped on disk or in a copy)",
                                  _remedy(path))
    return state


def _remedy(path: Path) -> str:
    """What to do about a corrupt checkpoint, by its role in a run folder."""
    if path.name == "last.pt" and (path.parent / "result.json").is_file():
        return (f"It is the final checkpoint of the finished run {path.parent}: move that folder "
                f"aside (or delete it) and rerun to train the run again.")
    if path.name == "last.pt":
        return (f"Move it aside (or delete it) and rerun: the run in {path.parent} then restarts "
                f"from epoch 1 (run_experiment does this itself, with a warning).")
    return "Restore it from a good copy, or delete it and rerun what wrote it."


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
