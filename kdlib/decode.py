"""Decoding of model outputs into joint coordinates, flip test, and the map back to the image.

Each head is decoded and scored as its own reference code does (kit's own batched torch code):
* Heatmaps -- HRNet lib/core/inference.py `get_max_preds` / `get_final_preds`: argmax, coordinates
  of non-positive maxima zeroed, then the quarter-pixel shift towards the higher neighbour
  (only where 1 < x < W - 1 and 1 < y < H - 1, as there); score = the heatmap maximum (a fitted
  heatmap peaks near 1, which HRNet's rescoring threshold TEST.IN_VIS_THRE = 0.2 reads).
* DARK (optional) -- Zhang et al., "Distribution-Aware Coordinate Representation", CVPR 2020,
  github.com/ilovepose/DarkPose lib/core/inference.py: Gaussian-blur the heatmap (kernel 11,
  i.e. sigma 2 by OpenCV's rule, zero border, rescaled to the original maximum), take logs, one
  Newton step of the second-order Taylor expansion at the argmax.
* SimCC -- one rule per label type (`PipelineConfig.simcc_sigma` / `simcc_normalize`, read by
  `dataset_simcc_label`), each its reference's; coordinates are always argmax bin / k.
  'gaussian' (SimCC's normalised SA-SimDR labels, sigma > 0) -- github.com/leeyegy/SimCC
  lib/core/function.py `validate_sa_simdr`: flip test averages the *logits*, then softmax over
  bins; score = the *smaller* of the two 1D maxima (`mask = max_val_x > max_val_y;
  max_val_x[mask] = max_val_y[mask]`). 'onehot' (SimDR, sigma == 0, with or without label
  smoothing) -- `validate_simdr`: flip test averages the softmax *probabilities*; score = the
  *larger* maximum. These scores are probabilities: a model fitted to SimCC's normalised labels
  peaks near 1 / (sigma sqrt(2 pi)) ~ 0.1 (sigma 4 bins), so SimCC's configs rescore people with
  TEST.IN_VIS_THRE 0.01, not HRNet's 0.2 (`kdlib.evaluation.keypoint_score_threshold`).
  'rtmpose' (mmpose `SimCCLabel(normalize=False)`: RTMPose's unnormalised labels, peak 1, learnt
  through KLDiscretLoss(beta=10, label_softmax=True)) -- mmpose rtmcc_head.py `RTMCCHead.predict`:
  flip test averages the logits (`flip_vectors`: no one-bin shift), no softmax; codecs/
  simcc_label.py `SimCCLabel.decode` -> codecs/utils/post_processing.py `get_simcc_maximum`: score
  = the smaller of the two *logit* maxima, location -1 where that score <= 0. CocoMetric then
  rescores with keypoint_score_thr 0.2: such logits are comparable to 0.2 because softmax
  gradients sum to zero over the bins, so the logits keep roughly their initial ~0 level and fit
  the peak-1, tail-0 label itself (up to that level).
  A head='both' model is decoded and scored from its SimCC output (`predict` reads 'coords',
  then 'simcc_x', then 'heatmaps').
* Flip test -- HRNet function.py `validate` (heatmaps: mirror, swap pairs, shift right one
  column, TEST.SHIFT_HEATMAP) and SimCC `flip_back_simdr` (reverse x bins, swap pairs, shift left
  one bin for k = 2; in general round(k - 1) bins, the offset a mirrored input gives); mmpose's
  `flip_vectors` does not shift ('rtmpose').
* Back to the image -- HRNet lib/utils/transforms.py `transform_preds`: inverse of the crop's
  affine (no rotation at test time); input pixel u -> c + (u - W/2) * scale_w / W.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def heatmap_argmax(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, K, H, W) -> integer-cell coords (B, K, 2) (x, y) and maxima (B, K); coords 0 where max <= 0."""
    b, k, h, w = heatmaps.shape
    maxvals, idx = heatmaps.reshape(b, k, -1).max(dim=-1)                   # (B, K)
    coords = torch.stack([idx % w, idx // w], dim=-1).to(heatmaps.dtype)  # (B, K, 2)
    return coords * (maxvals > 0).unsqueeze(-1), maxvals


def _gather(heatmaps: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """heatmaps[b, k, y, x] for (B, K) integer index tensors (clamped into the map)."""
    b, k, h, w = heatmaps.shape
    x, y = x.clamp(0, w - 1), y.clamp(0, h - 1)
    return heatmaps.reshape(b, k, -1).gather(-1, (y * w + x).unsqueeze(-1)).squeeze(-1)


def quarter_offset(heatmaps: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """HRNet's post-process: move 0.25 cell towards the higher neighbour in x and in y."""
    h, w = heatmaps.shape[-2:]
    x, y = coords[..., 0].long(), coords[..., 1].long()
    inside = ((x > 1) & (x < w - 1) & (y > 1) & (y < h - 1)).to(coords.dtype)
    dx = _gather(heatmaps, x + 1, y) - _gather(heatmaps, x - 1, y)
    dy = _gather(heatmaps, x, y + 1) - _gather(heatmaps, x, y - 1)
    return coords + 0.25 * torch.stack([dx.sign(), dy.sign()], dim=-1) * inside.unsqueeze(-1)


def _blur(heatmaps: torch.Tensor, kernel: int) -> torch.Tensor:
    """DARK gaussian_blur: separable Gaussian, zero border, rescaled to each map's own maximum."""
    sigma = 0.3 * ((kernel - 1) * 0.5 - 1) + 0.8                            # OpenCV's sigma rule
    t = torch.arange(kernel, dtype=heatmaps.dtype, device=heatmaps.device) - (kernel - 1) / 2
    g = torch.exp(-t * t / (2 * sigma * sigma))
    g = g / g.sum()
    b, k, h, w = heatmaps.shape
    x = heatmaps.reshape(b * k, 1, h, w)
    x = F.conv2d(x, g.view(1, 1, 1, -1), padding=(0, kernel // 2))
    x = F.conv2d(x, g.view(1, 1, -1, 1), padding=(kernel // 2, 0)).reshape(b, k, h, w)
    peak_in = heatmaps.amax(dim=(-2, -1), keepdim=True)
    peak_out = x.amax(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
    return x * peak_in / peak_out


def dark_refine(heatmaps: torch.Tensor, coords: torch.Tensor, kernel: int = 11) -> torch.Tensor:
    """DARK Taylor refinement of integer argmax `coords` (B, K, 2) on (B, K, H, W) heatmaps."""
    h, w = heatmaps.shape[-2:]
    hm = _blur(heatmaps, kernel).clamp_min(1e-10).log()
    x, y = coords[..., 0].long(), coords[..., 1].long()
    at = lambda dx_, dy_: _gather(hm, x + dx_, y + dy_)                      # noqa: E731
    dx = 0.5 * (at(1, 0) - at(-1, 0))
    dy = 0.5 * (at(0, 1) - at(0, -1))
    dxx = 0.25 * (at(2, 0) - 2 * at(0, 0) + at(-2, 0))
    dyy = 0.25 * (at(0, 2) - 2 * at(0, 0) + at(0, -2))
    dxy = 0.25 * (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1))
    det = dxx * dyy - dxy * dxy
    ok = (x > 1) & (x < w - 2) & (y > 1) & (y < h - 2) & (det != 0)
    safe = torch.where(ok, det, torch.ones_like(det))
    off_x = -(dyy * dx - dxy * dy) / safe                                    # -H^-1 grad
    off_y = -(dxx * dy - dxy * dx) / safe
    off = torch.stack([off_x, off_y], dim=-1) * ok.unsqueeze(-1).to(coords.dtype)
    return coords + off


def decode_heatmaps(heatmaps: torch.Tensor, stride: float = 4.0, dark: bool = False,
                    dark_kernel: int = 11) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, K, H, W) heatmaps -> coords in input pixels (B, K, 2), scores = heatmap maxima (B, K)."""
    coords, maxvals = heatmap_argmax(heatmaps)
    coords = dark_refine(heatmaps, coords, dark_kernel) if dark else quarter_offset(heatmaps, coords)
    return coords * stride, maxvals


SIMCC_LABELS = ('gaussian', 'onehot', 'rtmpose')


def simcc_label(sigma, normalize: bool = True) -> str:
    """SimCC label type of a pipeline's `simcc_sigma` (one number or per axis) / `simcc_normalize`
    (module docstring): 'onehot' if sigma == 0, else 'gaussian' (SimCC, normalised) or 'rtmpose'
    (mmpose, peak 1)."""
    if min(np.atleast_1d(np.asarray(sigma, dtype=float))) <= 0:
        return 'onehot'
    return 'gaussian' if normalize else 'rtmpose'


def dataset_simcc_label(dataset) -> str:
    """SimCC label type the samples of `dataset` were labelled with (its PipelineConfig),
    looking through wrappers (`.dataset`: Subset, CrossEvalDataset); 'gaussian', the kit's
    default, when no PipelineConfig is found."""
    while dataset is not None:
        cfg = getattr(dataset, 'cfg', None)
        if cfg is not None and hasattr(cfg, 'simcc_sigma'):
            return simcc_label(cfg.simcc_sigma, getattr(cfg, 'simcc_normalize', True))
        dataset = getattr(dataset, 'dataset', None)
    return 'gaussian'


def _check_label(label: str) -> None:
    if label not in SIMCC_LABELS:
        raise ValueError(f'simcc_label must be one of {SIMCC_LABELS}, got {label!r}')


def simcc_maps(simcc_x: torch.Tensor, simcc_y: torch.Tensor, flipped=None,
               label: str = 'gaussian') -> tuple[torch.Tensor, torch.Tensor]:
    """The 1D maps a label type's reference decodes, from logits (B, K, L), flip-averaged.

    flipped: (x, y) logits of the mirrored input already brought back (`flip_back_simcc`), or None.
    'gaussian': softmax((x + x_flip) / 2) (SimCC `validate_sa_simdr`); 'onehot': (softmax(x) +
    softmax(x_flip)) / 2 (`validate_simdr`); 'rtmpose': (x + x_flip) / 2, logits (`RTMCCHead.predict`).
    """
    _check_label(label)
    if flipped is not None:
        fx, fy = flipped
        if label == 'onehot':
            return (0.5 * (simcc_x.softmax(-1) + fx.softmax(-1)),
                    0.5 * (simcc_y.softmax(-1) + fy.softmax(-1)))
        simcc_x, simcc_y = 0.5 * (simcc_x + fx), 0.5 * (simcc_y + fy)
    if label == 'rtmpose':
        return simcc_x, simcc_y
    return simcc_x.softmax(-1), simcc_y.softmax(-1)


def decode_simcc(maps_x: torch.Tensor, maps_y: torch.Tensor, split_ratio: float,
                 label: str = 'gaussian') -> tuple[torch.Tensor, torch.Tensor]:
    """(B, K, Wk), (B, K, Hk) maps (`simcc_maps`: probabilities, or logits for 'rtmpose') ->
    coords in input pixels (B, K, 2) = argmax / k, and scores (B, K).

    score = min(max_x, max_y) for 'gaussian' (SimCC `validate_sa_simdr`) and 'rtmpose' (mmpose
    `get_simcc_maximum`, which also puts the location at bin -1 where the score is <= 0);
    max(max_x, max_y) for 'onehot' (SimCC `validate_simdr`).
    """
    _check_label(label)
    max_x, ix = maps_x.max(dim=-1)                                           # (B, K)
    max_y, iy = maps_y.max(dim=-1)
    coords = torch.stack([ix, iy], dim=-1).to(maps_x.dtype)                  # (B, K, 2) bins
    scores = torch.maximum(max_x, max_y) if label == 'onehot' else torch.minimum(max_x, max_y)
    if label == 'rtmpose':
        coords = torch.where((scores <= 0).unsqueeze(-1), -torch.ones_like(coords), coords)
    return coords / split_ratio, scores


def flip_back_heatmaps(heatmaps: torch.Tensor, flip_index, shift: bool = True) -> torch.Tensor:
    """Heatmaps of a mirrored input -> heatmaps of the input (mirror, swap pairs, shift 1 column)."""
    out = heatmaps.flip(-1)[:, torch.as_tensor(flip_index, device=heatmaps.device)]
    if shift:
        out = torch.cat([out[..., :1], out[..., :-1]], dim=-1)   # HRNet: out[..., 1:] = out[..., :-1]
    return out


def flip_back_simcc(simcc_x: torch.Tensor, simcc_y: torch.Tensor, flip_index,
                    split_ratio: float = 2.0, shift: bool = True):
    """SimCC outputs of a mirrored input -> outputs of the input (reverse x bins, swap pairs, shift)."""
    index = torch.as_tensor(flip_index, device=simcc_x.device)
    x, y = simcc_x.flip(-1)[:, index], simcc_y[:, index]
    n = int(round(split_ratio - 1)) if shift else 0
    if n > 0:                                                     # SimCC: x[..., :-1] = x[..., 1:]
        x = torch.cat([x[..., n:], x[..., -n:]], dim=-1)
    return x, y


def to_original(coords, center, scale, input_size):
    """Input-crop pixels (B, K, 2) -> original-image pixels through centre/scale (B, 2) each.

    input_size = (H, W). Works on numpy arrays or torch tensors.
    """
    h, w = input_size
    zoom = scale[:, None, :1] / w                                   # (B, 1, 1) source px per input px
    half = coords.new_tensor([w / 2, h / 2]) if torch.is_tensor(coords) else np.array([w / 2, h / 2])
    return center[:, None, :] + (coords - half) * zoom


def _flip_coords(coords: torch.Tensor, flip_index, width: int) -> torch.Tensor:
    """Coordinates predicted on a mirrored input -> on the input (u -> W - 1 - u, swap pairs)."""
    out = coords[:, torch.as_tensor(flip_index, device=coords.device)].clone()
    out[..., 0] = width - 1 - out[..., 0]
    return out


def _float32(out: dict) -> dict:
    return {k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in out.items()}


def score_kind(out: dict) -> str:
    """What the scores of a model output are: 'simcc' (SimCC maxima, read per label type) or
    'heatmaps' (heatmap maxima). Refiners ('coords' + 'scores') pass on their base model's."""
    return 'simcc' if 'simcc_x' in out else 'heatmaps'


@torch.no_grad()
def predict(model, images: torch.Tensor, flip_index, flip_test: bool = True, dark: bool = False,
            shift: bool | None = None, simcc_label: str = 'gaussian',
            info: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates in input pixels (B, K, 2) and scores (B, K) of `model` on (B, 3, H, W) images.

    Uses the output's `coords`/`scores` when present (refiners), else `simcc_x`/`simcc_y` (also
    for head='both'), else `heatmaps` (CONTRACTS.md). flip_test averages with the prediction on
    the mirrored images; shift: the flipped map's one-cell shift (None: the reference's -- yes,
    but not for 'rtmpose'). simcc_label: 'gaussian' | 'onehot' | 'rtmpose', the SimCC labels the
    model was trained on (`dataset_simcc_label`); it picks the reference decoder (module docstring).
    info: if a dict, receives 'decoded' ('coords' | 'simcc' | 'heatmaps') and 'scores'
    (`score_kind`), which tell the evaluator how to read the scores.
    """
    out = _float32(model(images))          # decode in float32 even under autocast (bf16 loses
    out_f = _float32(model(images.flip(-1))) if flip_test else None   # the 1/4-cell offsets)
    width = images.shape[-1]
    if info is not None:
        decoded = 'coords' if 'coords' in out else 'simcc' if 'simcc_x' in out else 'heatmaps'
        info.update(decoded=decoded, scores=score_kind(out), simcc_label=simcc_label)
    if 'coords' in out:
        coords, scores = out['coords'], out.get('scores')
        if scores is None:
            scores = torch.ones(coords.shape[:2], device=coords.device, dtype=coords.dtype)
        if flip_test:
            coords = 0.5 * (coords + _flip_coords(out_f['coords'], flip_index, width))
        return coords, scores
    if 'simcc_x' in out:
        k = out['simcc_x'].shape[-1] / width
        shift = simcc_label != 'rtmpose' if shift is None else shift
        flipped = (flip_back_simcc(out_f['simcc_x'], out_f['simcc_y'], flip_index, k, shift)
                   if flip_test else None)
        maps_x, maps_y = simcc_maps(out['simcc_x'], out['simcc_y'], flipped, simcc_label)
        return decode_simcc(maps_x, maps_y, k, simcc_label)
    if 'heatmaps' not in out:
        raise KeyError(f"predict: model output has none of 'coords', 'simcc_x', 'heatmaps' "
                       f'(got {sorted(out)})')
    heatmaps = out['heatmaps']
    if flip_test:
        shift = True if shift is None else shift
        heatmaps = 0.5 * (heatmaps + flip_back_heatmaps(out_f['heatmaps'], flip_index, shift))
    return decode_heatmaps(heatmaps, width / heatmaps.shape[-1], dark)
