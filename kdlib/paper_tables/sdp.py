"""SDP paper (Li et al., "Progressive Target Refinement by Self-Distillation for Human Pose
Estimation"): Tables 1-7 transcribed row by row, with the claims the kit checks.

``kind='run'`` rows carry the notebook parameters (``notebooks/01_sdp.ipynb``) that reproduce
them; ``kind='quoted'`` rows are literature numbers the kit shows, marked as quoted. Networks are
the model zoo's paper names (``sbl_r50``, ``hourglass4``, ``hourglass8``, ``hrnet_w32``); a profile's
``model_variant`` turns them into their classroom / smoke analogues.

Notes on the transcription:
- Table 1 is on the MPII *test* set, whose labels are not public: the kit evaluates its SDP
  Hourglass-4 row on the MPII valid split (the same protocol as Table 5), so that row compares
  a valid-split number to the paper's test-split number. Every other row of Table 1 is quoted.
- Table 3: the paper's rows are PCKh@0.5, GFLOPs and training time (12h / 51h / - / 23h); the
  kit measures all three (GFLOPs in the paper convention of ``kdlib.models.summary``, time on the
  machine that ran it, FPD's time including its Hourglass-8 teacher) and adds the time ratio to
  the Hourglass-4 baseline, the only time figure comparable across machines. OKDHP is quoted
  (the paper itself quotes it from the OKDHP paper; its time is not reported).
- Table 4 "Baseline" and Table 7 alpha = 0 carry the same numbers (88.53 / 33.91) in the paper:
  alpha = 0 is the plain baseline there, so the kit runs it as the supervised baseline. A kit-only
  row, alpha = 0 with the backup column still trained on its ground truth (Eq. 5 read literally),
  separates "seeing each batch twice" from distillation.
- Table 2 is on COCO val2017 with the person detector's boxes (AP 56.4, Section 4.1 "the same
  person detectors provided by Simple Baseline"): its rows validate on detector boxes
  (``val_boxes='det'`` -> ``val_dataset_params={'boxes': 'det'}``) while training on GT boxes.
- Table 6 is printed transposed in the paper (s across columns); here one row per s. Its s = 10
  and s = 100 rows keep the ring buffer in host memory, compactly (``host_buffer=True``): with
  stepping, s reaches 1000 / 10000 batches (projection: ``kdlib.methods.sdp.buffer_bytes``).
- Fig. 4 is a figure, not a table: its two claims (occluded keypoints get lower, and wider,
  refined soft targets) are checked on a measured "table" ``fig4`` -- peak and half-maximum width
  of the refined target, over every labelled keypoint of the COCO val split (GT boxes: COCO's flags
  separate visible from occluded keypoints, the HRNet MPII annotations do not), for the SDP SBL-R50
  model of Table 2.
- Claims are paired-seed effects (``kdlib.paper_tables``), each quoting the sentence it tests.
  Baselines: Table 3 the Hourglass-4 row, Table 4 the supervised baseline, Table 6 s = 1 (the
  default), Table 7 alpha = 0. Tables 2 and 5 pair each network with its own supervised row (three
  baselines, so no table-wide one); Table 1 and Fig. 4 have a single run row.

Training settings (``training_settings``; ``paper`` and ``gpu`` profiles only -- the smaller
profiles keep the kit's short schedules). Section 4.1: "We follow the training details in previous
pose distillation methods [10, 21], including input size, data augmentation, total epochs, and
learning rate schedule", i.e. FPD's code (ilovepose/fast-human-pose-estimation.pytorch,
``experiments/fpd_{mpii,coco}/<net>/*.yaml``): Hourglass Adam 2.5e-4, 140 epochs, x0.1 at 90 and
120 (FPD's Hourglass-8 teacher: 150 epochs, 120/140); SBL-R50 Adam 1e-3 from ImageNet ResNet-50,
140 epochs, 90/120; HRNet-W32 Adam 1e-3 from ImageNet, 210 epochs, 170/200. MPII: rotation 30
deg, scale 0.25, no half-body; COCO: rotation 40, scale 0.3 (Hourglass, SBL) or 45 / 0.35 (HRNet),
half-body 0.3 (the paper lists half-body; FPD's Hourglass/SBL COCO configs leave it at 0). The yamls' ``WD: 0.0001`` is inert: FPD's
``lib/utils/utils.py::get_optimizer`` builds ``optim.Adam(model.parameters(), lr=cfg.TRAIN.LR)``
without it, so the kit trains with weight decay 0 (a parameter of ``Recipe``). The ``gpu`` profile
keeps its own epoch count and scales the milestones by the same fractions (90/140, 120/140); SDP's
stepping follows them (the trainer calls ``on_lr_milestone`` at each). ImageNet initialisation is
used on the ``paper`` profile only (SynthPose runs must not depend on weights files).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from kdlib.paper_tables import Claim, Effect, Row, Table, gain, gains, lower, ordered
from kdlib.profiles import scaled_milestones

MPII_COLUMNS = ['Head', 'Sho.', 'Elb.', 'Wri.', 'Hip', 'Kne.', 'Ank.', 'Mean']
COCO_COLUMNS = ['AP', 'AP50', 'AP75', 'APM', 'APL', 'AR', 'AR50', 'AR75', 'ARM', 'ARL']
ABLATION_COLUMNS = ['Mean', 'Mean@0.1']          # PCKh@0.5, PCKh@0.1
FIG4_COLUMNS = ['Peak (visible)', 'Peak (occluded)', 'Width (visible)', 'Width (occluded)']


def _run(network: str, method: str = 'sdp', dataset: str = 'mpii', **params) -> dict:
    """Notebook parameters for one run-row (SDP defaults alpha = 3, s = 1, stepping: Sec. 4.1)."""
    base = dict(network=network, method=method, dataset=dataset)
    if method == 'sdp':
        base.update(alpha=3.0, s=1, stepping=True)
    if dataset == 'coco':
        base.update(val_boxes='det')          # Table 2: detector boxes (AP 56.4)
    base.update(params)
    return base


def _mpii(values: list[float]) -> dict[str, float]:
    return dict(zip(MPII_COLUMNS, values))


def _coco(values: list[float]) -> dict[str, float]:
    return dict(zip(COCO_COLUMNS, values))


def _pckh(at05: float, at01: float) -> dict[str, float]:
    return {'Mean': at05, 'Mean@0.1': at01}


# ----------------------------------------------------------------------------- claim effects
# Each effect reads one seed's rows, r[row label][column], and is > 0 when the claim holds
# (kdlib.paper_tables: judged on paired seeds).

ALPHAS = ('1', '2', '3', '4')                   # Table 7's alpha > 0 rows


def _alpha_flat(r: dict) -> float:
    """Table 7: the spread of PCKh@0.5 over alpha = 1..4 is smaller than the smallest gain of those
    alphas over alpha = 0 -- that gain minus that spread (points)."""
    values = [r[a]['Mean'] for a in ALPHAS]
    return min(values) - r['0']['Mean'] - (max(values) - min(values))


def _time_ratios(r: dict) -> dict[str, float]:
    """Table 3's derived column: each row's training time over the Hourglass-4 baseline's, same
    seed and machine (the only time figure comparable across machines)."""
    base = r['HG-4Stacks']['Training Time (h)']
    return {label: cols['Training Time (h)'] / base for label, cols in r.items()
            if 'Training Time (h)' in cols}


def _within_row(label: str, larger: str, smaller: str, unit: str) -> Effect:
    """Row ``label``'s column ``larger`` exceeds its column ``smaller`` (Fig. 4: visible vs occluded)."""
    return Effect(lambda r: r[label][larger] - r[label][smaller], unit=unit)


FIG4_ROW = 'SBL-R50 + SDP (COCO val, GT boxes)'
SDP_PAIRS = [('SBL-R50 + SDP', 'SBL-R50'), ('HG-4Stacks + SDP', 'HG-4Stacks'),   # (with, without)
             ('HRNet-W32 + SDP', 'HRNet-W32')]                                # Tables 2 and 5
REGARDLESS = ('Sec. 4.2: "the proposed SDP method brings better performances to the networks '
              'regardless of their architecture"')

TABLES = {
    'table1': Table(
        title='Table 1: MPII test set, PCKh@0.5 (kit: SDP Hourglass-4 on the valid split -- MPII '
              'test labels are not public)',
        columns=MPII_COLUMNS, metric_source='mpii',
        rows=[
            Row('Newell et al. [ECCV16]', _mpii([98.2, 96.3, 91.2, 87.1, 90.1, 87.4, 83.6, 90.9]), 'quoted'),
            Row('Ning et al. [TMM17]', _mpii([98.1, 96.3, 92.2, 87.8, 90.6, 87.6, 82.7, 91.2]), 'quoted'),
            Row('Chu et al. [CVPR17]', _mpii([98.5, 96.3, 91.9, 88.1, 90.6, 88.0, 85.0, 91.5]), 'quoted'),
            Row('Chen et al. [ICCV17]', _mpii([98.1, 96.5, 92.5, 88.5, 90.2, 89.6, 86.0, 91.9]), 'quoted'),
            Row('Yang et al. [ICCV17]', _mpii([98.5, 96.7, 92.5, 88.7, 91.1, 88.6, 86.0, 92.0]), 'quoted'),
            Row('Ke et al. [ECCV18]', _mpii([98.5, 96.8, 92.7, 88.4, 90.6, 89.3, 86.3, 92.1]), 'quoted'),
            Row('Tang et al. [ECCV18]', _mpii([98.4, 96.9, 92.6, 88.7, 91.8, 89.4, 86.2, 92.3]), 'quoted'),
            Row('FPD [CVPR19]', _mpii([98.3, 96.4, 91.5, 87.4, 90.9, 87.1, 83.7, 91.1]), 'quoted'),
            Row('OKDHP [CVPR21]', _mpii([98.2, 96.6, 92.3, 88.0, 91.0, 88.5, 84.5, 91.7]), 'quoted'),
            Row('SDP (Ours), Hourglass-4', _mpii([98.4, 96.9, 92.7, 88.6, 91.3, 89.0, 85.5, 92.1]),
                'run', _run('hourglass4')),
        ],
        claims=[]),   # the kit's valid-split number is not comparable with the quoted test numbers
    'table2': Table(
        title='Table 2: COCO val2017, AP/AR (kit: validated on the person detector boxes, AP 56.4; '
              'trained on GT boxes)',
        columns=COCO_COLUMNS, metric_source='coco',
        rows=[
            Row('SBL-R50', _coco([70.4, 88.6, 78.3, 67.1, 77.2, 76.3, 92.9, 83.4, 72.1, 82.4]),
                'run', _run('sbl_r50', 'supervised', 'coco')),
            Row('SBL-R50 + SDP', _coco([71.7, 89.2, 79.0, 68.2, 78.6, 77.4, 93.3, 84.0, 73.1, 83.6]),
                'run', _run('sbl_r50', 'sdp', 'coco')),
            Row('HG-4Stacks', _coco([73.0, 89.1, 79.8, 69.6, 79.8, 78.5, 93.2, 84.5, 74.3, 84.6]),
                'run', _run('hourglass4', 'supervised', 'coco')),
            Row('HG-4Stacks + SDP', _coco([74.2, 90.3, 80.5, 70.6, 80.8, 79.4, 93.7, 85.9, 75.3, 85.7]),
                'run', _run('hourglass4', 'sdp', 'coco')),
            Row('HRNet-W32', _coco([74.4, 90.5, 81.9, 70.8, 81.0, 79.8, 94.2, 86.5, 75.7, 85.8]),
                'run', _run('hrnet_w32', 'supervised', 'coco')),
            Row('HRNet-W32 + SDP', _coco([75.2, 90.6, 82.3, 71.5, 82.2, 80.5, 94.2, 86.8, 76.3, 86.7]),
                'run', _run('hrnet_w32', 'sdp', 'coco')),
        ],
        claims=[Claim(f'SDP improves every network on COCO (AP; effect: the smallest of the three '
                      f'gains). {REGARDLESS}', gains(SDP_PAIRS, 'AP'))],
        baseline=dict(SDP_PAIRS)),                      # each network against its undistilled self
    'table3': Table(
        title='Table 3: distillation efficiency on MPII, student Hourglass-4 (FPD teacher: '
              'Hourglass-8, its training time included)',
        columns=['Mean', 'GFLOPs', 'Training Time (h)', 'Time ratio'], metric_source='mpii',
        rows=[
            Row('HG-4Stacks', {'Mean': 89.2, 'GFLOPs': 14.3, 'Training Time (h)': 12.0, 'Time ratio': 1.0},
                'run', _run('hourglass4', 'supervised')),
            Row('FPD [CVPR19]', {'Mean': 89.7, 'GFLOPs': 66.0, 'Training Time (h)': 51.0,
                                 'Time ratio': 51 / 12},
                'run', _run('hourglass4', 'fpd', teacher='hourglass8', kd_alpha=0.5)),
            Row('OKDHP [CVPR21]', {'Mean': 90.0, 'GFLOPs': 47.0}, 'quoted'),
            Row('SDP (Ours)', {'Mean': 89.9, 'GFLOPs': 14.3, 'Training Time (h)': 23.0,
                               'Time ratio': 23 / 12},
                'run', _run('hourglass4')),
        ],
        derived={'Time ratio': _time_ratios}, baseline='HG-4Stacks',
        claims=[Claim('SDP trains in less time than FPD, teacher included (effect: FPD\'s time ratio '
                      'minus SDP\'s, in Hourglass-4 training times). Sec. 4.2: "our method is faster '
                      'to train than FPD"',
                      replace(lower('SDP (Ours)', 'FPD [CVPR19]', 'Time ratio'), unit='HG-4 times')),
                Claim(f'SDP improves the Hourglass-4 baseline (PCKh@0.5; Table 3: 89.9 vs 89.2). '
                      f'{REGARDLESS}', gain('SDP (Ours)', 'HG-4Stacks', 'Mean')),
                Claim('SDP is not less accurate than FPD by more than 0.2 PCKh@0.5 points '
                      '(non-inferiority, margin 0.2: the largest gap the paper itself calls '
                      '"comparable", SDP 92.1 vs Tang et al. 92.3 in Table 1). Sec. 4.2: "the '
                      'proposed method achieves better training efficiency while keeping better '
                      'or comparable performance"',
                      gain('SDP (Ours)', 'FPD [CVPR19]', 'Mean', margin=-0.2))]),
    'table4': Table(
        title='Table 4: stepping strategy ablation, MPII valid, SBL-R50 (alpha = 3)',
        columns=ABLATION_COLUMNS, metric_source='mpii',
        rows=[
            Row('Baseline', _pckh(88.53, 33.91), 'run', _run('sbl_r50', 'supervised')),
            Row('SDP, no stepping', _pckh(89.12, 34.28), 'run', _run('sbl_r50', stepping=False)),
            Row('SDP, stepping', _pckh(89.43, 35.05), 'run', _run('sbl_r50', stepping=True)),
        ],
        baseline='Baseline',
        claims=[Claim('SDP without stepping beats the baseline (PCKh@0.5). Sec. 4.3: "the '
                      'self-distillation framework already improves the performance greatly"',
                      gain('SDP, no stepping', 'Baseline', 'Mean')),
                Claim('stepping beats no stepping (PCKh@0.5). Sec. 4.3: "the stepping strategy '
                      'further boosts the network performance by 0.31% [...] in PCKh@0.5"',
                      gain('SDP, stepping', 'SDP, no stepping', 'Mean')),
                Claim('stepping beats no stepping (PCKh@0.1). Sec. 4.3: "[...] and 0.77% in '
                      'PCKh@0.1"', gain('SDP, stepping', 'SDP, no stepping', 'Mean@0.1'))]),
    'table5': Table(
        title='Table 5: MPII valid, PCKh@0.5, without / with SDP',
        columns=MPII_COLUMNS, metric_source='mpii',
        rows=[
            Row('SBL-R50', _mpii([96.4, 95.3, 89.0, 83.2, 88.4, 83.9, 79.6, 88.5]), 'run',
                _run('sbl_r50', 'supervised')),
            Row('SBL-R50 + SDP', _mpii([97.0, 95.5, 89.9, 85.1, 88.8, 85.0, 81.2, 89.4]), 'run',
                _run('sbl_r50')),
            Row('HG-4Stacks', _mpii([96.6, 95.6, 89.1, 83.8, 88.7, 84.9, 81.0, 89.1]), 'run',
                _run('hourglass4', 'supervised')),
            Row('HG-4Stacks + SDP', _mpii([96.9, 95.7, 90.5, 85.6, 89.6, 86.0, 81.7, 89.9]), 'run',
                _run('hourglass4')),
            Row('HRNet-W32', _mpii([97.1, 95.9, 90.3, 86.4, 89.1, 87.1, 83.3, 90.3]), 'run',
                _run('hrnet_w32', 'supervised')),
            Row('HRNet-W32 + SDP', _mpii([97.2, 96.2, 91.0, 86.7, 89.6, 87.2, 83.4, 90.6]), 'run',
                _run('hrnet_w32')),
        ],
        baseline=dict(SDP_PAIRS),                       # each network against its undistilled self
        claims=[Claim(f'SDP improves every network on MPII (Mean PCKh@0.5; effect: the smallest of '
                      f'the three gains). {REGARDLESS}', gains(SDP_PAIRS, 'Mean'))]),
    'table6': Table(
        title='Table 6: initial distillation distance s, MPII valid, SBL-R50 (alpha = 3, stepping; '
              's = 10, 100: buffer in host memory)',
        columns=ABLATION_COLUMNS, metric_source='mpii',
        rows=[
            Row('1', _pckh(89.43, 35.05), 'run', _run('sbl_r50', s=1)),
            Row('10', _pckh(89.24, 34.52), 'run', _run('sbl_r50', s=10, host_buffer=True),
                note='buffer in host memory, compact (s reaches 1000 batches)'),
            Row('100', _pckh(88.77, 33.98), 'run', _run('sbl_r50', s=100, host_buffer=True),
                note='buffer in host memory, compact (s reaches 10000 batches)'),
        ],
        baseline='1',
        claims=[Claim('s = 1 is best and each tenfold larger initial s degrades (PCKh@0.5; effect: '
                      'the smaller of the two steps). Sec. 4.4: "the performance degrades with an '
                      'order of magnitude increase in the distillation distance"',
                      ordered(['1', '10', '100'], 'Mean'))]),
    'table7': Table(
        title='Table 7: loss weight alpha, MPII valid, SBL-R50 (s = 1, stepping)',
        columns=ABLATION_COLUMNS, metric_source='mpii',
        rows=[
            Row('0', _pckh(88.53, 33.91), 'run', _run('sbl_r50', 'supervised')),
            Row('0 (backup column, GT only; kit-only)', {}, 'run', _run('sbl_r50', alpha=0.0)),
            Row('1', _pckh(89.38, 34.96), 'run', _run('sbl_r50', alpha=1.0)),
            Row('2', _pckh(89.40, 34.85), 'run', _run('sbl_r50', alpha=2.0)),
            Row('3', _pckh(89.43, 35.05), 'run', _run('sbl_r50', alpha=3.0)),
            Row('4', _pckh(89.37, 35.00), 'run', _run('sbl_r50', alpha=4.0)),
        ],
        baseline='0',
        claims=[Claim('every alpha in 1..4 beats alpha = 0 (PCKh@0.5; effect: the smallest gain). '
                      'Sec. 4.5: "the remarkable improvement from the self-distillation loss term"',
                      gains([(a, '0') for a in ALPHAS], 'Mean')),
                Claim('PCKh@0.5 is flat over alpha = 1..4: its spread there is smaller than the '
                      'smallest gain over alpha = 0 (a margin relative to the distillation gain, '
                      'not in points: the gains differ in size between SynthPose and MPII). Sec. '
                      '4.5: "The performance is robust regardless of alpha varying from 1 to 4"',
                      Effect(_alpha_flat))]),
    'fig4': Table(
        title='Fig. 4: refined soft targets (GT + alpha x soft) / (1 + alpha), occluded vs visible '
              'keypoints, COCO val (GT boxes), SBL-R50 + SDP of Table 2; peak value and half-maximum '
              'width (heatmap pixels)',
        columns=FIG4_COLUMNS, metric_source='coco',
        rows=[Row(FIG4_ROW, {}, 'run', _run('sbl_r50', 'sdp', 'coco', fig4=True),
                  note="the paper shows examples only: occluded peaks 0.73 / 0.83 vs visible 0.92 / 0.96")],
        claims=[Claim('occluded keypoints get lower refined targets than visible ones (mean peak). '
                      'Sec. 4.6: "lower confidences [...] are assigned to the heatmap targets for the '
                      'occluded keypoints than visible ones"',
                      _within_row(FIG4_ROW, 'Peak (visible)', 'Peak (occluded)', 'peak value')),
                Claim('occluded keypoints get wider refined targets than visible ones (mean '
                      'half-maximum width). Sec. 4.6: "[...] and larger activation areas are '
                      'assigned to the heatmap targets for the occluded keypoints"',
                      _within_row(FIG4_ROW, 'Width (occluded)', 'Width (visible)', 'heatmap pixels'))]),
}

HEADLINE = 'table4'    # the quick profile: baseline vs SDP (without / with stepping) on SBL-R50


# ----------------------------------------------------------------------------- the kit's runs

@dataclass(frozen=True)
class Recipe:
    """One network's training in the code SDP follows (FPD's yamls; see the module docstring)."""
    lr: float
    epochs: int
    milestones: tuple[int, ...]
    source: str
    weight_decay: float = 0.0     # the yamls' WD 1e-4 never reaches Adam (get_optimizer)
    pretrained: str | None = None
    pipeline: dict = field(default_factory=dict)


_MPII_AUG = dict(rot_factor=30.0, scale_factor=0.25, half_body_prob=0.0)
_COCO_AUG = dict(rot_factor=40.0, scale_factor=0.3, half_body_prob=0.3)
_FPD = 'ilovepose/fast-human-pose-estimation.pytorch experiments/'
RECIPES = {   # (network or family, dataset) -> Recipe
    ('hourglass', 'mpii'): Recipe(2.5e-4, 140, (90, 120), _FPD + 'fpd_mpii/hourglass/hg_template.yaml',
                                  pipeline=_MPII_AUG),
    ('hourglass8', 'mpii'): Recipe(2.5e-4, 150, (120, 140),        # FPD's teacher (Table 3)
                                   _FPD + 'fpd_mpii/hourglass/hg8_256x256_d256x3_adam_lr2.5e-4.yaml',
                                   pipeline=_MPII_AUG),
    ('sbl_r50', 'mpii'): Recipe(1e-3, 140, (90, 120),
                                _FPD + 'fpd_mpii/resnet/res50_256x256_d256x3_adam_lr1e-3.yaml',
                                pretrained='imagenet', pipeline=_MPII_AUG),
    ('hrnet_w32', 'mpii'): Recipe(1e-3, 210, (170, 200), _FPD + 'fpd_mpii/hrnet/w32_256x256_adam_lr1e-3.yaml',
                                  pretrained='imagenet', pipeline=_MPII_AUG),
    ('hourglass', 'coco'): Recipe(2.5e-4, 140, (90, 120),
                                  _FPD + 'fpd_coco/hourglass/hg4_256x192_d256x3_adam_lr2.5e-4.yaml',
                                  pipeline=_COCO_AUG),
    ('sbl_r50', 'coco'): Recipe(1e-3, 140, (90, 120),
                                _FPD + 'fpd_coco/resnet/res50_256x192_d256x3_adam_lr1e-3.yaml',
                                pretrained='imagenet', pipeline=_COCO_AUG),
    ('hrnet_w32', 'coco'): Recipe(1e-3, 210, (170, 200), _FPD + 'fpd_coco/hrnet/w32_256x192_adam_lr1e-3.yaml',
                                  pretrained='imagenet',
                                  pipeline=dict(rot_factor=45.0, scale_factor=0.35, half_body_prob=0.3)),
}
RECIPE_PROFILES = ('paper', 'gpu')


def scale_milestones(milestones: tuple[int, ...], of_epochs: int, epochs: int) -> tuple[int, ...]:
    """``milestones`` of an ``of_epochs`` schedule at the same fractions of ``epochs``."""
    return scaled_milestones(epochs, tuple(milestones), of_epochs)


def training_settings(profile: str, network: str, dataset: str) -> dict:
    """ExperimentConfig fields of the paper's training for ``network`` on ``dataset`` (``paper``:
    the recipe's epochs; ``gpu``: the profile's epochs, milestones scaled); {} on other profiles."""
    from kdlib.profiles import get_profile
    family = 'hourglass' if network.startswith('hourglass') else network
    recipe = RECIPES.get((network, dataset), RECIPES.get((family, dataset)))
    if profile not in RECIPE_PROFILES or recipe is None:
        return {}
    epochs = recipe.epochs if profile == 'paper' else get_profile(profile)['epochs']
    milestones = scale_milestones(recipe.milestones, recipe.epochs, epochs)
    out = dict(lr=recipe.lr, weight_decay=recipe.weight_decay, pipeline=dict(recipe.pipeline),
               profile_overrides={'lr_milestones': milestones})
    if profile == 'paper':
        out['epochs'] = recipe.epochs
        if recipe.pretrained:
            out['model_params'] = {'pretrained': recipe.pretrained}
    return out


def experiment_config(profile: str, seed: int = 0, network: str = 'sbl_r50', method: str = 'sdp',
                      dataset: str = 'mpii', alpha: float = 3.0, s: int = 1, stepping: bool = True,
                      teacher: str = 'hourglass8', kd_alpha: float = 0.5, val_boxes: str = 'gt',
                      host_buffer: bool = False, track_index: int | None = 0, **_notebook_only):
    """The ExperimentConfig of one run-row (its notebook parameters) at ``profile`` / ``seed``.

    SDP runs snapshot training sample ``track_index`` once per epoch (figure only; it changes no
    number). ``host_buffer``: SDP's buffer in host memory, compact (Table 6's s = 10, 100). FPD
    distils from a supervised ``teacher`` run of the same profile, dataset and seed, trained with
    the same recipe family. ``val_boxes='det'``: validate on the person detector's boxes (COCO).
    """
    from kdlib.experiment import ExperimentConfig
    from kdlib.teachers import teacher_run
    if method not in ('sdp', 'fpd', 'supervised'):
        raise ValueError(f"method must be 'sdp', 'fpd' or 'supervised', got {method!r}")
    common = dict(paper='sdp', profile=profile, dataset=dataset, seed=int(seed),
                  val_dataset_params={'boxes': val_boxes} if val_boxes != 'gt' else {})
    settings = training_settings(profile, network, dataset)
    method_params, teachers = {}, {}
    if method == 'sdp':
        method_params = dict(alpha=float(alpha), distance=int(s), stepping=bool(stepping),
                             track_index=track_index)
        if host_buffer:
            method_params.update(buffer_device='cpu', compact_buffer=True)
    elif method == 'fpd':
        method_params = {'kd_alpha': float(kd_alpha)}
        teachers = {'teacher': teacher_run(ExperimentConfig(
            model=teacher, method='supervised', **common, **training_settings(profile, teacher, dataset)))}
    return ExperimentConfig(model=network, method=method, method_params=method_params,
                            teachers=teachers, **common, **settings)


def row_runs(profile: str, seed: int, **params) -> dict:
    """The papers interface: the run behind a table row (``'row'``) and the runs it needs."""
    from kdlib.paper_tables import call_with, with_dependencies
    return with_dependencies({'row': call_with(experiment_config, profile, seed, params)})


def row_metrics(results: dict, **_params) -> dict[str, float]:
    """The papers interface: a row's numbers from its runs' results (``row_runs``' names).

    Validation metrics and cost of the row's run; ``train_time_s`` / ``train_time_h`` and
    ``GFLOPs`` (paper convention) include the runs it needed, FPD's teacher (Table 3: "51h" for
    FPD counts the teacher's training). A released teacher (``paper`` profile: a
    ``CheckpointRef``) was not trained here: its time and FLOPs are unknown to the kit and left
    out (``released_teachers`` counts them).
    """
    result = results['row']
    needed = [r for name, r in results.items() if name != 'row']
    trained = [r for r in needed if isinstance(r, dict)]
    time_s = result['train_time_s'] + sum(r['train_time_s'] for r in trained)
    metrics = {k: float(v) for k, v in result['metrics'].items()}
    metrics.update(train_time_s=time_s, train_time_h=time_s / 3600,
                   GFLOPs=result['gflops_paper'] + sum(r['gflops_paper'] for r in trained),
                   student_train_time_s=result['train_time_s'], params_M=result['params_M'],
                   released_teachers=float(len(needed) - len(trained)))
    return metrics
