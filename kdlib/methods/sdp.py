"""SDP: self-distillation from the previous batch, with a stepping distillation distance.

J. Li, L. Fang, Y. Wu, S. Wang, "Progressive Target Refinement by Self-Distillation for Human
Pose Estimation" (USTC). Paper text: ``../shared/papers/000_04c93dea662a4252.txt``.

The method in a paragraph. Every training step has two columns (Fig. 2): the fresh batch I^t and
the backup batch I^{t-s} -- the very same augmented crops the model saw s steps earlier. Both go
through the current model Theta_t (Eq. 1); both are supervised by their ground-truth heatmaps
(Eq. 2, one MSE over the concatenation); the backup column is also pulled towards the heatmaps the
model itself predicted for those crops at step t-s (Eq. 3, the "soft target"). The total is
L_gt + alpha * L_sd (Eq. 5). Because the soft target comes from an older copy of the same model, it
is refined as training progresses -- no teacher network, no second training stage. When the
learning rate drops at a milestone (lr /= gamma) the distance grows (s *= gamma, Eq. 4), so that
teacher and student stay different enough to carry information.

What this needs: a ring buffer of the last s batches (images, GT heatmaps, target weights and the
model's detached predictions), kept on the training device (``buffer_device='cpu'`` parks it in
host memory, ``compact_buffer=True`` stores the crops as their uint8 pixel codes -- bit-exact -- and
the maps in float16: 0.46 instead of 1.31 MB per 256x256 MPII sample). No extra forward pass: the
soft target of a batch is the prediction already computed when that batch was the fresh column.

Reductions and the weighted ratio (Eq. 2, 3, 5). The paper writes "MSE" for both terms and builds
on FPD's code, whose MSE is HRNet's JointsMSELoss (``lib/core/loss.py``: ``0.5 * MSELoss('mean')``
per joint, summed over joints, divided by K = ``0.5 * mean`` over (B, K, h, w)):

    L_gt = sum_stacks 0.5 * mean_{2B,K,h,w} (w * (H_hat - H))^2                   # Eq. (2)
    L_sd = sum_stacks 0.5 * mean_{B,K,h,w}  (w * (H_hat^{t-s}_t - H_hat^{t-s}_{t-s}))^2   # Eq. (3)
    L_total = L_gt + alpha * L_sd                                                  # Eq. (5)

Both are per-element means of the same squared error, so the weighted ratio alpha * L_sd : L_gt =
alpha x (mean squared distance of the backup column to its old prediction) : (mean squared distance of
both columns to their GT) -- independent of B, K, h, w and of the number of stacks. (Section 4.5's
reading, "the distillation loss term is probably more important than the ground truth loss", is
this ratio at alpha = 3.) ``tests/test_sdp.py::test_weighted_ratio_pinned`` pins it against a
hand-written computation; a sum instead of a mean over any axis changes it.

Decisions the paper leaves open (each is a parameter or documented behaviour, tested in
``tests/test_sdp.py``):

* Eq. (2) is one MSE over the concatenated columns, so both columns carry the same weight: with
  equal batch sizes L_gt is the mean of the fresh-column and backup-column losses (not their sum).
  The GT and SD terms use HRNet's JointsMSELoss (``kdlib.losses.joints_mse``), both weighted by
  ``target_weight`` -- as FPD's code does for its distillation term (``KD`` loss = JointsMSELoss
  with target weights, ilovepose/fast-human-pose-estimation.pytorch ``lib/core/function.py``).
* The step counter t is global over the run (Eq. 1 indexes iterations), so the buffer persists
  across epochs. During the first s steps of a run no batch from s steps earlier exists: those steps
  train on the fresh column alone (L_sd = 0). After a stepping milestone the buffer refills from
  s_old to s_new batches; meanwhile the backup stays at the distance in use before (s_old), so the
  self-distillation term never switches off mid-run. ``history()`` records, per step, whether L_sd
  was active and the distance actually used.
* Both columns go through ONE forward pass on the concatenated batch (Fig. 2 feeds both columns
  into the model; BatchNorm statistics are over 2B samples). Under DDP each process keeps its own
  buffer of its own shard's batches: the backup column is local data, nothing to synchronise.
* L_gt is computed by ``kdlib.methods.base.task_loss`` -- the very loss the supervised baseline
  uses -- on the concatenated columns, so a baseline/SDP comparison differs only by the method.
  Multi-stack networks (Hourglass) are therefore supervised on every stack, as the baseline is.
  The soft target is the final heatmaps of step t-s (the prediction Eq. 3 names). With
  ``sd_stacks='all'`` (default) every stack of the backup column is distilled towards it, as FPD's
  code -- on which SDP's training is built (Section 4.1) -- distils every stack towards its teacher
  (``lib/core/function.py::fpd_train``): L_sd then has as many terms as L_gt and alpha keeps the
  meaning it has for single-output networks (SBL, HRNet). ``sd_stacks='last'`` distils the final
  stack only (for a 4-stack Hourglass the distillation weight per stack drops to alpha/4).
* Memory: s grows x10 at each milestone, so an initial s = 100 (Table 6) reaches 10^4 batches:
  ~147 GB for MPII at batch 32 even compact, which no GPU and few hosts hold -- the paper does not
  say how that run stored its buffer. ``max_buffer_gb`` (default: 16 GiB on a GPU, 80% of the
  host's RAM with ``buffer_device='cpu'``) turns an overflow into a clear error, raised at the
  milestone when the projected size is already too large.
* Resume is exact: the ring buffer travels in the checkpoint with the distance s, the step
  counter, the last distance used, the L_sd history and the tracked-sample snapshots
  (``get_extra_state``), so a killed and resumed run trains on the same backup columns as an
  uninterrupted one (``tests/test_sdp.py::test_resume_matches_uninterrupted_run``). Without it L_sd
  was off for the first s steps after every resume (kdlib issue 15: PCKh 12.28 -> 11.40).
  The cost is the buffer's size in every ``last.pt`` (``buffer_memory_mb()``; compact_buffer
  shrinks it ~3x); ``checkpoint_buffer=False`` leaves it out again and a resumed run refills it.
  Under DDP only rank 0 writes the checkpoint, so a resumed rank 0 gets its own buffer back and
  the other ranks refill theirs.
"""
from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from kdlib.data.topdown import IMAGENET_MEAN, IMAGENET_STD
from kdlib.losses import joints_mse
from kdlib.methods.base import Method, method_params, task_loss

ALPHA = 3.0        # Eq. (5) weight, Section 4.1 ("set to 3")
DISTANCE = 1       # initial s, Section 4.1 ("set to ... 1")
SD_STACKS = ('all', 'last')


# ----------------------------------------------------------------------------- losses (pure)

def ground_truth_loss(pred: Tensor, target: Tensor, target_weight: Tensor) -> Tensor:
    """Eq. (2): MSE([H^t_t, H^{t-s}_t], [H^t, H^{t-s}]) -- one mean over the concatenated columns.

    pred, target: (2B, K, h, w) -- fresh rows first, backup rows after; target_weight: (2B, K).
    """
    return joints_mse(pred, target, target_weight)                       # Eq. (2)


def self_distillation_loss(pred_backup: Tensor, soft_target: Tensor,
                           target_weight: Tensor | None = None) -> Tensor:
    """Eq. (3): L_sd = MSE(H^{t-s}_t, H^{t-s}_{t-s}), the current prediction on the backup crops
    against the (detached) prediction the model made on them at step t-s.

    pred_backup, soft_target: (B, K, h, w); target_weight: (B, K) or None (all joints).
    """
    soft_target = soft_target.detach().to(pred_backup.dtype)
    if target_weight is None:
        target_weight = pred_backup.new_ones(pred_backup.shape[:2])
    return joints_mse(pred_backup, soft_target, target_weight)           # Eq. (3)


def total_loss(l_gt: Tensor, l_sd: Tensor, alpha: float = ALPHA) -> Tensor:
    """Eq. (5): L_total = L_gt + alpha * L_sd."""
    return l_gt + alpha * l_sd                                            # Eq. (5)


def stepped(lr: float, distance: int, gamma: float) -> tuple[float, int]:
    """Eq. (4): at a milestone lr <- lr / gamma and s <- s * gamma (gamma = 10, Section 3.2)."""
    return lr / gamma, int(round(distance * gamma))                       # Eq. (4)


def refined_target(gt: Tensor, soft: Tensor, alpha: float = ALPHA) -> Tensor:
    """The target Fig. 4 draws: the alpha-weighted average (gt + alpha * soft) / (1 + alpha) of the
    GT and soft heatmaps (Section 4.6). (B, K, h, w) -> (B, K, h, w)."""
    return (gt + alpha * soft) / (1.0 + alpha)


# ----------------------------------------------------------------------------- ring buffer

# kdlib.data.topdown.normalize_image: x = code * scale - shift, two float32 operations
_NORM_SCALE = torch.from_numpy((1.0 / (255.0 * IMAGENET_STD)).astype(np.float32))[:, None, None]
_NORM_SHIFT = torch.from_numpy((IMAGENET_MEAN / IMAGENET_STD).astype(np.float32))[:, None, None]


def decode_image(codes: Tensor) -> Tensor:
    """uint8 pixel codes (B, 3, H, W) -> the float32 crops ``normalize_image`` makes of them."""
    scale, shift = _NORM_SCALE.to(codes.device), _NORM_SHIFT.to(codes.device)
    return codes.float() * scale - shift


def encode_image(image: Tensor) -> Tensor | None:
    """Normalised float32 crops (B, 3, H, W) -> their uint8 pixel codes, or None when the codes do
    not decode back bit-exactly (crops that did not come from ``normalize_image``)."""
    scale, shift = _NORM_SCALE.to(image.device), _NORM_SHIFT.to(image.device)
    codes = ((image.float() + shift) / scale).round_().clamp_(0, 255).to(torch.uint8)
    return codes if torch.equal(decode_image(codes), image) else None


@dataclass
class BufferEntry:
    """One training batch as it was seen at ``step``, plus the model's prediction on it then.

    ``compact``: stored by ``pack`` (uint8 crop codes when exact, float16 maps); ``restore`` gives
    the float32 batch back on the training device.
    """
    step: int
    image: Tensor           # (B, 3, H, W)   the augmented crops (float32, or uint8 codes if compact)
    heatmap: Tensor         # (B, K, h, w)   GT heatmaps
    target_weight: Tensor   # (B, K)
    soft: Tensor            # (B, K, h, w)   detached prediction of the model at `step`
    index: Tensor | None = None   # (B,) dataset indices, for inspection
    compact: bool = False

    def nbytes(self) -> int:
        tensors = (self.image, self.heatmap, self.target_weight, self.soft, self.index)
        return sum(t.numel() * t.element_size() for t in tensors if t is not None)

    def to(self, device) -> 'BufferEntry':
        # to the host synchronously: an asynchronous copy would page-lock the whole buffer
        blocking = torch.device(device).type == 'cpu'
        move = lambda t: None if t is None else t.to(device, non_blocking=not blocking)
        return BufferEntry(self.step, move(self.image), move(self.heatmap), move(self.target_weight),
                           move(self.soft), move(self.index), self.compact)

    def pack(self, device=None) -> 'BufferEntry':
        """Compact copy on ``device`` (None: where it is): uint8 crops, float16 heatmaps and soft."""
        codes = encode_image(self.image)
        image = self.image if codes is None else codes
        return BufferEntry(self.step, image, self.heatmap.half(), self.target_weight,
                           self.soft.half(), self.index, compact=True).to(device or self.image.device)

    def state(self) -> dict:
        """Plain values and tensors (``torch.load(weights_only=True)`` reads them), on the host."""
        tensors = {k: getattr(self, k) for k in ('image', 'heatmap', 'target_weight', 'soft', 'index')}
        return dict(step=self.step, compact=self.compact,
                    **{k: v.detach().cpu() for k, v in tensors.items() if v is not None})

    @classmethod
    def from_state(cls, state: dict) -> 'BufferEntry':
        return cls(int(state['step']), state['image'], state['heatmap'], state['target_weight'],
                   state['soft'], state.get('index'), bool(state['compact']))

    def restore(self, device) -> 'BufferEntry':
        """The batch in float32 on ``device`` (a no-op for a full-precision entry already there)."""
        entry = self.to(device)
        if not entry.compact:
            return entry
        image = decode_image(entry.image) if entry.image.dtype == torch.uint8 else entry.image
        return BufferEntry(entry.step, image, entry.heatmap.float(), entry.target_weight,
                           entry.soft.float(), entry.index)


class BatchRingBuffer:
    """FIFO of the last ``distance`` batches. ``backup(t)`` is the batch pushed at step t - s.

    While the buffer refills after ``grow`` (Eq. 4), ``backup`` keeps returning the batch at the
    distance used last (see the module docstring).
    """

    def __init__(self, distance: int = DISTANCE):
        if int(distance) < 1:
            raise ValueError(f'SDP distillation distance s must be >= 1, got {distance!r}')
        self.distance = int(distance)
        self.last_used: int | None = None       # distance of the last backup handed out
        self._entries: deque[BufferEntry] = deque()

    def __len__(self) -> int:
        return len(self._entries)

    def backup(self, step: int) -> BufferEntry | None:
        """The entry from ``step - distance``; while refilling, from ``step - last_used``; else None."""
        for d in dict.fromkeys((self.distance, self.last_used)):
            if d and len(self._entries) >= d and self._entries[-d].step == step - d:
                self.last_used = d
                return self._entries[-d]
        return None

    def push(self, entry: BufferEntry) -> None:
        self._entries.append(entry)
        while len(self._entries) > self.distance:
            self._entries.popleft()

    def grow(self, distance: int) -> None:
        """Widen the distance (Eq. 4); the stored batches stay, the buffer refills to the new s."""
        if int(distance) < self.distance:
            raise ValueError(f'SDP buffer can only grow: {self.distance} -> {distance}')
        self.distance = int(distance)

    def nbytes(self) -> int:
        return sum(e.nbytes() for e in self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self.last_used = None

    def state(self) -> dict:
        return dict(distance=self.distance, last_used=self.last_used or 0,
                    entries=[e.state() for e in self._entries])

    def load_state(self, state: dict) -> None:
        """Entries come back on the host; ``restore`` moves each to the training device when used."""
        self.clear()
        self.distance, self.last_used = int(state['distance']), int(state['last_used']) or None
        self._entries.extend(BufferEntry.from_state(e) for e in state['entries'])


def buffer_bytes(batch_size: int, image_size: tuple[int, int], num_joints: int,
                 distance: int, stride: int = 4, compact: bool = False) -> int:
    """Projected buffer memory for ``distance`` batches of crops + GT heatmaps + soft targets +
    weights: float32 everything, or ``compact`` (uint8 crops, float16 maps, float32 weights)."""
    h, w = image_size
    image, maps = 3 * h * w, 2 * num_joints * (h // stride) * (w // stride)
    per_sample = image + 2 * maps + 4 * num_joints if compact else 4 * (image + maps + num_joints)
    return distance * batch_size * per_sample


def default_max_buffer_gb(buffer_device: str | None) -> float:
    """16 GiB on the training device; for a host buffer 80% of the host's physical memory, shared
    by the processes torchrun started on this host (each keeps its own buffer)."""
    if buffer_device is not None and str(buffer_device).startswith('cpu'):
        processes = int(os.environ.get('LOCAL_WORLD_SIZE', 1))
        return 0.8 * os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30 / processes
    return 16.0


# ----------------------------------------------------------------------------- the method

def _slice_batch(outputs: dict, n: int) -> dict:
    """Keep the first n rows (the fresh column) of every tensor / list of tensors in ``outputs``."""
    def cut(v):
        if isinstance(v, Tensor) and v.dim() > 0:
            return v[:n]
        if isinstance(v, (list, tuple)):
            return type(v)(cut(x) for x in v)
        return v
    return {k: cut(v) for k, v in outputs.items()}


@dataclass(frozen=True)
class Params:
    """``method_params`` of 'sdp' (``SDP``'s docstring says what each does; ``s`` is accepted as
    an alias of ``distance``, the paper's symbol)."""
    alpha: float = ALPHA              # Eq. (5) weight, Section 4.1
    distance: int = DISTANCE          # initial s, Section 4.1
    stepping: bool = True             # Eq. (4) on (Table 4 turns it off)
    sd_target_weight: bool = True     # not in the paper: FPD's code weights its KD term so
    sd_stacks: str = 'all'            # not in the paper: FPD's code distils every stack
    buffer_device: str | None = None  # None: the training device (the paper's setting)
    compact_buffer: bool = False      # the kit's: uint8 crop codes + float16 maps
    max_buffer_gb: float | None = None  # None: default_max_buffer_gb
    track_index: int | None = None    # figure only: a training sample snapshotted per epoch
    checkpoint_buffer: bool = True    # the kit's: exact resume

    def __post_init__(self):
        if self.alpha < 0:
            raise ValueError(f'SDP alpha must be >= 0, got {self.alpha!r}')
        if self.sd_stacks not in SD_STACKS:
            raise ValueError(f'SDP sd_stacks must be one of {SD_STACKS}, got {self.sd_stacks!r}')


class SDP(Method):
    """Self-distillation from the batch seen s steps earlier (Eq. 1-5), with stepping (Eq. 4).

    alpha: Eq. (5) weight (3, Section 4.1). distance: initial s (1, Section 4.1). stepping: widen s
    at every lr milestone (Table 4 turns it off). sd_target_weight: weight L_sd by target_weight
    like L_gt (FPD's code does so for its KD term). sd_stacks: 'all' distils every stack of a
    multi-stack network towards the old final heatmaps (FPD's code), 'last' the final one only.
    buffer_device: None keeps the buffer on the training device (the paper's setting), 'cpu' parks
    it in host memory. compact_buffer: store uint8 crop codes (bit-exact) and float16 maps.
    max_buffer_gb: refuse to grow the buffer past this (None: ``default_max_buffer_gb``; a clear
    error instead of an out-of-memory crash). track_index: a training-set index whose crop, GT and
    soft target are snapshotted once per epoch (no extra forward: the snapshot is the stored soft
    target). checkpoint_buffer: save the ring buffer with the method's state, for an exact resume.
    """

    def __init__(self, alpha: float = Params.alpha, distance: int = Params.distance,
                 stepping: bool = Params.stepping, sd_target_weight: bool = Params.sd_target_weight,
                 sd_stacks: str = Params.sd_stacks, buffer_device: str | None = Params.buffer_device,
                 compact_buffer: bool = Params.compact_buffer,
                 max_buffer_gb: float | None = Params.max_buffer_gb,
                 track_index: int | None = Params.track_index,
                 checkpoint_buffer: bool = Params.checkpoint_buffer):
        super().__init__()
        Params(alpha, distance, stepping, sd_target_weight, sd_stacks)      # value checks
        self.alpha, self.stepping = float(alpha), bool(stepping)
        self.sd_target_weight, self.sd_stacks = bool(sd_target_weight), sd_stacks
        self.buffer_device, self.compact_buffer = buffer_device, bool(compact_buffer)
        self.max_buffer_gb = float(default_max_buffer_gb(buffer_device) if max_buffer_gb is None
                                   else max_buffer_gb)
        self.track_index, self.checkpoint_buffer = track_index, bool(checkpoint_buffer)
        self.buffer = BatchRingBuffer(distance)
        self.step, self.epoch, self.lr = 0, 0, float('nan')
        self.num_epochs: int | None = None
        self._log_columns = {k: [] for k in HISTORY_COLUMNS}   # one entry per training step
        self._pending: list[Tensor] = []   # (2,) detached [l_gt, l_sd] not yet copied to host
        self.snapshots: list[dict] = []    # tracked sample, one per epoch

    @property
    def distance(self) -> int:
        return self.buffer.distance

    # -- hooks -----------------------------------------------------------------------------
    def on_epoch_start(self, epoch: int, num_epochs: int, lr: float) -> None:
        self.epoch, self.num_epochs, self.lr = int(epoch), int(num_epochs), float(lr)

    def on_lr_milestone(self, epoch: int, gamma: float) -> None:
        """Eq. (4): s *= gamma when stepping is on. ``gamma`` may be given as the lr multiplier
        (0.1) or as the divisor (10); both mean lr /= 10."""
        if not self.stepping:
            return
        factor = 1.0 / gamma if gamma < 1 else gamma
        _, distance = stepped(1.0, self.buffer.distance, factor)          # Eq. (4)
        self._check_projection(distance, epoch)
        self.buffer.grow(distance)

    def _check_projection(self, distance: int, epoch: int) -> None:
        """Fail at the milestone, not hundreds of steps later, if the widened buffer cannot fit:
        it will hold min(s, batches held + steps left) batches of the current size."""
        if not len(self.buffer) or epoch <= 0 or self.num_epochs is None:
            return
        steps_left = self.step / epoch * (self.num_epochs - epoch)
        held = min(distance, len(self.buffer) + steps_left)
        self._raise_if_over(held * self.buffer.nbytes() / len(self.buffer), distance)

    # -- training step ---------------------------------------------------------------------
    def forward(self, batch: dict, student, teachers: dict) -> tuple[dict, dict]:
        fresh = batch['image']                                             # (B, 3, H, W)
        n = fresh.shape[0]
        if not student.training:          # evaluation: plain supervised loss, buffer untouched
            outputs = student(fresh)
            terms = task_loss(outputs, batch)
            return {**terms, 'sd': next(iter(terms.values())).new_zeros(())}, outputs
        backup = self.buffer.backup(self.step)
        if backup is not None:
            backup = backup.restore(fresh.device)                          # float32, training device
        images, target, weight = _columns(batch, backup)                   # (2B, ...)
        outputs = student(images)                                          # Eq. (1)
        terms = task_loss(outputs, {'heatmap': target, 'target_weight': weight})   # Eq. (2)
        l_gt = sum(terms.values())
        l_sd = l_gt.new_zeros(())
        if backup is not None:
            sd_weight = backup.target_weight if self.sd_target_weight else None
            for stack in self._distilled(outputs):                         # (2B, K, h, w) each
                l_sd = l_sd + self_distillation_loss(stack[n:], backup.soft, sd_weight)   # Eq. (3)
        self._log(l_gt.detach(), l_sd.detach(), 0 if backup is None else self.step - backup.step)
        self._remember(batch, outputs['heatmaps'][:n].detach())
        return {**terms, 'sd': self.alpha * l_sd}, _slice_batch(outputs, n)           # Eq. (5)

    def _distilled(self, outputs: dict) -> list[Tensor]:
        """The heatmaps L_sd pulls towards the soft target: every stack, or the final one."""
        if self.sd_stacks == 'last':
            return [outputs['heatmaps']]
        return [*outputs.get('aux_heatmaps', ()), outputs['heatmaps']]

    def _remember(self, batch: dict, soft: Tensor) -> None:
        entry = BufferEntry(self.step, batch['image'], batch['heatmap'], batch['target_weight'],
                            soft, batch.get('index'))
        if self.compact_buffer:
            entry = entry.pack(self.buffer_device)
        elif self.buffer_device is not None:
            entry = entry.to(self.buffer_device)
        self._check_memory(entry.nbytes())
        self.buffer.push(entry)
        self._snapshot(batch, soft)
        self.step += 1

    def _check_memory(self, entry_bytes: int) -> None:
        """Refuse to store more than ``max_buffer_gb`` (checked on the bytes actually held)."""
        growing = len(self.buffer) < self.buffer.distance
        self._raise_if_over(self.buffer.nbytes() + (entry_bytes if growing else 0),
                            self.buffer.distance)

    def _raise_if_over(self, nbytes: float, distance: int) -> None:
        if nbytes / 2**30 > self.max_buffer_gb:
            raise MemoryError(
                f'SDP buffer of s={distance} batches would hold {nbytes / 2**30:.1f} GiB '
                f'(> max_buffer_gb={self.max_buffer_gb}). Lower the initial s or the batch size, '
                f"turn stepping off, use buffer_device='cpu' / compact_buffer=True, or raise max_buffer_gb.")

    def _snapshot(self, batch: dict, soft: Tensor) -> None:
        index = batch.get('index')
        if self.track_index is None or index is None:
            return
        if self.snapshots and self.snapshots[-1]['epoch'] == self.epoch:
            return
        hits = (index == self.track_index).nonzero()
        if len(hits) == 0:
            return
        i = int(hits[0])
        keep = {k: batch[k][i].detach().cpu() for k in ('image', 'heatmap', 'target_weight', 'joints')
                if k in batch}
        self.snapshots.append(dict(epoch=self.epoch, step=self.step, soft=soft[i].cpu(), **keep))

    # -- logging / state -------------------------------------------------------------------
    def _log(self, l_gt: Tensor, l_sd: Tensor, used: int) -> None:
        row = (self.step, self.epoch, self.lr, self.buffer.distance, used)
        for name, value in zip(HISTORY_COLUMNS, row):
            self._log_columns[name].append(value)
        self._pending.append(torch.stack([l_gt.float(), l_sd.float()]))

    def history(self) -> dict[str, list]:
        """Per-step log as columns (``pd.DataFrame(method.history())``): step, epoch, lr, distance
        s, distance_used (0: no backup column), l_gt, l_sd (unweighted L_sd of Eq. 3)."""
        if self._pending:                 # one device sync for all pending steps
            values = torch.stack(self._pending).tolist()
            self._log_columns['l_gt'] += [v[0] for v in values]
            self._log_columns['l_sd'] += [v[1] for v in values]
            self._pending = []
        return self._log_columns

    def buffer_memory_mb(self) -> float:
        return self.buffer.nbytes() / 2**20

    def get_extra_state(self) -> dict:
        history = {k: torch.tensor(v, dtype=torch.float64) for k, v in self.history().items()}
        state = dict(distance=self.buffer.distance, step=self.step, history=history,
                     snapshots=self.snapshots)
        if self.checkpoint_buffer:
            state['buffer'] = self.buffer.state()
        return state

    def set_extra_state(self, state: dict) -> None:
        self.buffer.clear()
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        rank = torch.distributed.get_rank() if distributed else 0
        if 'buffer' in state and rank == 0:          # rank 0's own buffer (it wrote the checkpoint)
            self.buffer.load_state(state['buffer'])
        self.buffer.distance = int(state['distance'])
        self.step = int(state['step'])
        self._log_columns = {k: _as_list(state['history'][k], k) for k in HISTORY_COLUMNS}
        self._pending = []
        self.snapshots = list(state.get('snapshots', []))


HISTORY_COLUMNS = ('step', 'epoch', 'lr', 'distance', 'distance_used', 'l_gt', 'l_sd')


def _as_list(values: Tensor, name: str) -> list:
    return [int(v) for v in values.tolist()] if name in ('step', 'epoch', 'distance', 'distance_used') \
        else values.tolist()


def _columns(batch: dict, backup: BufferEntry | None) -> tuple[Tensor, Tensor, Tensor]:
    """[I^t, I^{t-s}], [H^t, H^{t-s}] and their weights, fresh rows first (Eq. 1-2)."""
    image, heatmap, weight = batch['image'], batch['heatmap'], batch['target_weight']
    if backup is None:
        return image, heatmap, weight
    return (torch.cat([image, backup.image]),                             # (2B, 3, H, W)
            torch.cat([heatmap, backup.heatmap]),                         # (2B, K, h, w)
            torch.cat([weight, backup.target_weight]))                    # (2B, K)


def build_method(params: dict, student, teachers: dict, train_set) -> SDP:
    """METHODS['sdp'] entry: ``params`` are ``Params``' fields (``s``: alias of ``distance``)."""
    params = dict(params or {})
    if 's' in params:
        params['distance'] = params.pop('s')
    return SDP(**vars(method_params(Params, params, 'SDP')))
