"""Decoding and rescoring of each head as its own reference code does (issue 13).

The SimCC cases run fixed, realistic SimCC logits (a model that fits SimCC's normalised Gaussian
labels: peak bin probabilities ~0.1, sharper for well-localised people) through the kit's whole
path (`predict_dataset` -> `evaluate` -> pycocotools) and compare the AP with an independent
re-statement of the reference rule written here with numpy loops:
leeyegy/SimCC lib/core/function.py `validate_sa_simdr` (Gaussian labels: flip-average the logits,
softmax, argmax / k, score = the smaller of the two maxima) and `validate_simdr` (one-hot labels:
average the softmax probabilities, score = the larger), lib/utils/transforms.py `flip_back_simdr`
+ TEST.SHIFT_HEATMAP, lib/dataset/coco.py `evaluate` (box score x mean of the joint scores above
TEST.IN_VIS_THRE, 0.01 in experiments/coco/hrnet/sa_simdr/w48_256x192_adam_lr1e-3_split2_sigma4.yaml
and simdr/nmt_w48_256x192_adam_lr1e-3.yaml), lib/nms/nms.py `oks_nms` at OKS_THRE 0.9.
RTMPose's unnormalised labels ('rtmpose') follow mmpose instead: rtmcc_head.py `RTMCCHead.predict`
(mean flipped logits, `flip_vectors` without shift), `get_simcc_maximum` (smaller logit maximum,
location -1 where it is <= 0) and CocoMetric (keypoint_score_thr 0.2, oks_nms 0.9).
"""
import contextlib
import copy
import io
import json

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from kdlib.data.formats import load_coco
from kdlib.data.topdown import PipelineConfig, TopDownDataset
from kdlib.data.transforms import affine_points, box_to_center_scale, crop_matrix
from kdlib.skeletons import SKELETONS

SK = SKELETONS['coco']
INPUT = (256, 192)                      # (H, W), SimCC COCO 256x192
SPLIT = 2.0                             # SIMDR_SPLIT_RATIO
SIGMA = 4.0                             # SA-SimDR sigma (bins)


# ----------------------------------------------------------------------------- fixtures
def write_gt(path, num_images=60, seed=0):
    """COCO GT: 1-3 people per image, a few unlabelled joints (as tests/test_evaluation.py)."""
    rng = np.random.default_rng(seed)
    images, anns = [], []
    for i in range(1, num_images + 1):
        images.append(dict(id=i, file_name=f'{i:012d}.jpg', width=640, height=480))
        for p in range(rng.integers(1, 4)):
            x0, y0 = 30 + 200 * p, rng.uniform(10, 60)
            w, h = rng.uniform(70, 160), rng.uniform(180, 380)
            kpts = np.c_[rng.uniform(x0, x0 + w, 17), rng.uniform(y0, y0 + h, 17),
                         rng.choice([0, 1, 2], 17, p=[0.1, 0.2, 0.7])]
            kpts[kpts[:, 2] == 0, :2] = 0
            anns.append(dict(id=len(anns) + 1, image_id=i, category_id=1, iscrowd=0,
                             bbox=[x0, y0, w, h], area=0.6 * w * h,
                             keypoints=kpts.reshape(-1).round(2).tolist(),
                             num_keypoints=int((kpts[:, 2] > 0).sum())))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(images=images, annotations=anns,
                                    categories=[dict(id=1, name='person')])))


def _logits(xy, rng, quality, mirrored=False, style='gaussian'):
    """SimCC logits (K, W k), (K, H k) of a model that fits its labels, around joints `xy` (K, 2)
    in crop pixels; `quality` in [0, 1] (0: sharp and accurate, 1: wide and wrong).
    style 'gaussian' / 'onehot': softmax(logits) ~ SimCC's normalised label (log of a Gaussian);
    'rtmpose': the logits themselves ~ RTMPose's peak-1 label (mmpose, KL on softmax(10 x))."""
    h, w = INPUT
    if mirrored:                                       # the mirrored crop's joints
        xy = xy[SK.flip_index].copy()
        xy[:, 0] = w - 1 - xy[:, 0]
    err = rng.normal(0, 1.0 + 9.0 * quality, xy.shape)                   # (K, 2) px
    spread = SIGMA * (1 + 1.5 * quality) * rng.uniform(0.8, 1.6, (len(xy), 1))   # (K, 1) bins
    out = []
    for axis, n in ((0, int(w * SPLIT)), (1, int(h * SPLIT))):
        bins = np.arange(n)[None]                                          # (1, n)
        mu = SPLIT * (xy[:, axis:axis + 1] + err[:, axis:axis + 1])        # (K, 1)
        if style == 'rtmpose':
            peak = 1.0 - 0.7 * quality * rng.uniform(0.5, 1.5, (len(xy), 1))
            out.append(peak * np.exp(-(bins - mu) ** 2 / (2 * spread ** 2))
                       + rng.normal(0, 0.03, (len(xy), n)))
        else:
            out.append(-(bins - mu) ** 2 / (2 * spread ** 2) + rng.normal(0, 0.4, (len(xy), n)))
    return [torch.tensor(o, dtype=torch.float32) for o in out]


class SimccOutputs:
    """Fixed logits for every record of `dataset`, of the plain crop and of its mirror."""

    def __init__(self, dataset, seed=0, style='gaussian'):
        rng = np.random.default_rng(seed)
        cfg = dataset.cfg
        self.center, self.scale, plain, mirrored = [], [], [], []
        for r in dataset.records:
            c, s = box_to_center_scale(r['bbox'], cfg.aspect_ratio, cfg.padding)
            joints = r['joints'].astype(np.float64).copy()
            x, y, bw, bh = r['bbox']
            joints[joints[:, 2] <= 0, :2] = (x + bw / 2, y + bh / 2)
            xy = affine_points(joints[:, :2], crop_matrix(c, s, 0.0, INPUT))   # (K, 2) crop px
            quality = rng.uniform() ** 1.5
            plain.append(_logits(xy, rng, quality, style=style))
            mirrored.append(_logits(xy, rng, quality, mirrored=True, style=style))
            self.center.append(c)
            self.scale.append(s)
        self.x = torch.stack([p[0] for p in plain])                     # (N, K, W k)
        self.y = torch.stack([p[1] for p in plain])                     # (N, K, H k)
        self.fx = torch.stack([p[0] for p in mirrored])
        self.fy = torch.stack([p[1] for p in mirrored])


class FixedSimccModel(torch.nn.Module):
    """Returns the stored logits of the sample whose index is written in pixel (0, 0) (or, on a
    mirrored input, in pixel (0, W - 1): the marker in channel 1 tells which)."""

    def __init__(self, outputs: SimccOutputs):
        super().__init__()
        self.o = outputs

    def forward(self, images):
        mirrored = images[:, 1, 0, -1] > 0                                   # (B,)
        idx = torch.where(mirrored, images[:, 0, 0, -1], images[:, 0, 0, 0]).long()
        x = torch.where(mirrored[:, None, None], self.o.fx[idx], self.o.x[idx])
        y = torch.where(mirrored[:, None, None], self.o.fy[idx], self.o.y[idx])
        return {'simcc_x': x, 'simcc_y': y}


class Crops(torch.utils.data.Dataset):
    """`base`'s samples reduced to what prediction reads: an image carrying the index, centre,
    scale, index; `skeleton`, `cfg`, `records`, `info` and `evaluate` are the base dataset's."""

    def __init__(self, base, outputs: SimccOutputs):
        self.base, self.o = base, outputs
        self.skeleton, self.cfg = base.skeleton, base.cfg
        self.records, self.info = base.records, base.info

    def __len__(self):
        return len(self.records)

    def __getitem__(self, i):
        image = torch.zeros(3, *INPUT)
        image[0, 0, 0], image[1, 0, 0] = float(i), 1.0
        return dict(image=image, center=torch.from_numpy(self.o.center[i]),
                    scale=torch.from_numpy(self.o.scale[i]), index=torch.tensor(i))

    def evaluate(self, *args, **kw):
        return self.base.evaluate(*args, **kw)


def simcc_set(tmp_path, label='gaussian', num_images=60, seed=0):
    """(dataset, model, outputs) for a SimCC model trained on `label`-type labels."""
    write_gt(tmp_path / 'coco/annotations/person_keypoints_val2017.json', num_images, seed)
    records, info = load_coco(tmp_path / 'coco', 'val')
    cfg = PipelineConfig(input_size=INPUT, targets=('simcc',), simcc_sigma=0.0 if label == 'onehot'
                         else SIGMA, simcc_normalize=label != 'rtmpose')
    base = TopDownDataset(records, info['skeleton'], cfg, info)
    outputs = SimccOutputs(base, seed, label)
    return Crops(base, outputs), FixedSimccModel(outputs), outputs


# ----------------------------------------------------------------------------- the reference rule
def _softmax(a):
    e = np.exp(a - a.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def reference_simcc_ap(dataset, outputs: SimccOutputs, label='gaussian', in_vis_thre=0.01,
                       oks_thre=0.9):
    """AP of SimCC's own validator + HRNet/SimCC COCO evaluation, written out with loops;
    label 'rtmpose': mmpose RTMCCHead.predict + SimCCLabel.decode + CocoMetric instead."""
    x, y = outputs.x.numpy().astype(np.float64), outputs.y.numpy().astype(np.float64)
    fx = outputs.fx.numpy().astype(np.float64)[:, :, ::-1].copy()   # flip_back_simdr type='x'
    fy = outputs.fy.numpy().astype(np.float64).copy()
    for a, b in SK.flip_pairs:
        fx[:, [a, b]], fy[:, [a, b]] = fx[:, [b, a]], fy[:, [b, a]]
    if label != 'rtmpose':                                            # mmpose flip_vectors: none
        fx[:, :, 0:-1] = fx[:, :, 1:].copy()                          # TEST.SHIFT_HEATMAP
    if label == 'gaussian':                                           # validate_sa_simdr
        px, py = _softmax((x + fx) * 0.5), _softmax((y + fy) * 0.5)
    elif label == 'onehot':                                           # validate_simdr
        px, py = (_softmax(x) + _softmax(fx)) * 0.5, (_softmax(y) + _softmax(fy)) * 0.5
    else:                                                             # RTMCCHead.predict
        px, py = (x + fx) * 0.5, (y + fy) * 0.5
    people = []
    h, w = INPUT
    for i, r in enumerate(dataset.records):
        kpts = np.zeros((17, 3))
        for k in range(17):
            mx, my = px[i, k].max(), py[i, k].max()
            score = max(mx, my) if label == 'onehot' else min(mx, my)
            u, v = px[i, k].argmax() / SPLIT, py[i, k].argmax() / SPLIT
            if label == 'rtmpose' and score <= 0:                     # get_simcc_maximum
                u = v = -1 / SPLIT
            c, s = outputs.center[i], outputs.scale[i]                # transform_preds, no rotation
            kpts[k] = (c[0] + (u - w / 2) * s[0] / w, c[1] + (v - h / 2) * s[0] / w, score)
        kept = [t for t in kpts[:, 2] if t > in_vis_thre]             # lib/dataset/coco.py evaluate
        kpt_score = sum(kept) / len(kept) if kept else 0.0
        people.append(dict(image=r['image_id'], keypoints=kpts, score=kpt_score * r['score'],
                           area=float(np.prod(outputs.scale[i]))))
    results = []
    for img in sorted({p['image'] for p in people}):
        group = [p for p in people if p['image'] == img]
        order = sorted(range(len(group)), key=lambda j: -group[j]['score'])
        keep = []
        while order:                                                  # lib/nms/nms.py oks_nms
            i, rest = order[0], order[1:]
            keep.append(i)
            var = (2 * SK.sigmas) ** 2
            order = []
            for j in rest:
                d2 = ((group[j]['keypoints'][:, :2] - group[i]['keypoints'][:, :2]) ** 2).sum(1)
                e = d2 / var / ((group[i]['area'] + group[j]['area']) / 2 + np.spacing(1)) / 2
                if np.mean(np.exp(-e)) <= oks_thre:
                    order.append(j)
        for i in keep:
            results.append(dict(image_id=int(img), category_id=1, score=float(group[i]['score']),
                                keypoints=group[i]['keypoints'].reshape(-1).tolist()))
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(dataset.info['ann_file'])
        ev = COCOeval(gt, gt.loadRes(copy.deepcopy(results)), 'keypoints')
        ev.params.kpt_oks_sigmas = SK.sigmas
        ev.evaluate(), ev.accumulate(), ev.summarize()
    return 100.0 * ev.stats[0]


# ----------------------------------------------------------------------------- tests
def test_simcc_ap_equals_the_reference_rule(tmp_path):
    from kdlib.train.trainer import TrainConfig, evaluate, predict_dataset
    dataset, model, outputs = simcc_set(tmp_path)
    pred = predict_dataset(model, dataset, SK.flip_index)
    probs = pred['scores'].max()
    assert 0.03 < probs < 0.4, probs                # a fitted SimCC model's peak probabilities
    kit = evaluate(model, dataset, TrainConfig(batch_size=16))['AP']
    ref = reference_simcc_ap(dataset, outputs, 'gaussian')
    assert kit == pytest.approx(ref, abs=1e-6)
    # the former rule (mean of probabilities, larger maximum, HRNet's 0.2) is not the reference's
    old = reference_simcc_ap(dataset, outputs, 'onehot', in_vis_thre=0.2)
    assert abs(old - ref) > 1.0


def test_simcc_rescored_person_scores_are_not_all_zero(tmp_path):
    from kdlib.evaluation import rescore
    from kdlib.train.trainer import predict_dataset
    dataset, model, _ = simcc_set(tmp_path, num_images=10)
    pred = predict_dataset(model, dataset, SK.flip_index)
    box = np.ones(len(pred['indices']))
    assert (rescore(pred['scores'], box) == 0).all()                 # HRNet's 0.2 on SimCC scores
    person = rescore(pred['scores'], box, **pred['evaluate_kw'])
    assert (person > 0).all() and len(np.unique(person)) == len(person)


def test_onehot_simcc_labels_follow_validate_simdr(tmp_path):
    from kdlib.train.trainer import TrainConfig, evaluate
    dataset, model, outputs = simcc_set(tmp_path, 'onehot', num_images=30)
    kit = evaluate(model, dataset, TrainConfig(batch_size=16))['AP']
    assert kit == pytest.approx(reference_simcc_ap(dataset, outputs, 'onehot'), abs=1e-6)


def test_rtmpose_labels_follow_mmpose(tmp_path):
    """simcc_normalize=False (RTMPose's codec): mmpose decodes the mean logits (no flip shift, no
    softmax) and CocoMetric rescores at 0.2; softmax probabilities would all fall under it."""
    from kdlib.evaluation import rescore
    from kdlib.train.trainer import TrainConfig, evaluate, predict_dataset
    dataset, model, outputs = simcc_set(tmp_path, 'rtmpose', num_images=30)
    pred = predict_dataset(model, dataset, SK.flip_index)
    assert pred['evaluate_kw'] == {'in_vis_thre': 0.2}
    assert 0.5 < np.median(pred['scores']) < 1.2                          # logit maxima ~ peak 1
    assert (rescore(pred['scores'], np.ones(len(pred['scores'])), 0.2) > 0).all()
    kit = evaluate(model, dataset, TrainConfig(batch_size=16))['AP']
    assert kit == pytest.approx(reference_simcc_ap(dataset, outputs, 'rtmpose', 0.2), abs=1e-6)


def test_heatmap_scoring_keeps_hrnet_threshold():
    from kdlib.decode import predict
    from kdlib.evaluation import IN_VIS_THRE, keypoint_score_threshold
    info = {}

    class Heat(torch.nn.Module):
        def forward(self, images):
            return {'heatmaps': torch.rand(images.shape[0], 17, 16, 12)}

    predict(Heat(), torch.zeros(2, 3, 64, 48), SK.flip_index, info=info)
    assert info['scores'] == 'heatmaps'
    assert keypoint_score_threshold(info['scores'], 'gaussian') == IN_VIS_THRE == 0.2
