"""TwoStage-GCN paper (Ji et al., "A Coarse-to-Fine Human Pose Estimation Method based on
Two-stage Distillation and Progressive Graph Neural Network"): Tables I-IV transcribed, the
claims the kit checks, and the schemes of Table IV as experiment configs.

Run rows carry the notebook parameters of ``notebooks/02_two_stage_gcn.ipynb``: ``dataset``,
``scheme`` (a key of ``SCHEMES``) and ``tables=''`` (a driver cell trains only its own row).
``experiments(scheme, dataset, profile, seed)`` turns a scheme into the chain of
``ExperimentConfig`` runs (teacher -> stage-1 student -> stage-2 refiner), cached by the runner, so
rows that share a run (the teacher, the stage-1 student of schemes 4 and 6) train it once.

Notes on the transcription:
- Table II is on COCO test-dev2017, whose labels are not public and which has no offline
  evaluator: the kit evaluates its Table II rows on val2017 (the same runs as Table I), so those
  cells compare a val number with the paper's test-dev number.
- Table III's printed header reads AP, AP50, AP75, AP^M, AP^L, AR, but from HrHRNet on the rows
  are CrowdPose's AP^E, AP^M, AP^H (HigherHRNet-W48: 65.9 / 86.4 / 70.6 / 73.3 / 66.5 / 57.9 is
  its published CrowdPose-test line); they are transcribed under APE/APM/APH. For the first three
  rows (Mask R-CNN, AlphaPose+, SimpleBaseline) the sixth number (65.9 / 72.7 / 67.2) fits neither
  AP^H nor the CrowdPose paper's values; it is kept under 'AR (as printed)' in the row's note only.
- The kit evaluates COCO with the ground-truth person boxes; the paper uses SimpleBaseline's
  detections (56.4 AP) on COCO and YOLOv3 on CrowdPose (Sec. IV-B).
- GFLOPs/Params of the kit's rows come from ``kdlib.models.summary`` (paper convention); the
  refiner's count includes its frozen student.
- The HRNet-W32 256x192 rows of Tables I and II are runs (scheme ``'hrnet_w32'``: the heatmap
  HRNet-W32 trained on the labels, no teacher), because Sec. IV-C's "1.8% / 1.6% higher than
  HRNet" is a claim about them.
- SimCC labels: teacher and student are trained against the same label type (Gaussian SA-SimDR
  labels; ``label_smoothing`` adds the same uniform smoothing to both). Sec. IV-B's "the student
  model also adopts the label smoothing" is SimCC's Gaussian label smoothing, which the SimCC
  teacher was trained with too; a student-only uniform smoothing would make the soft-argmax
  pose terms of Eq. (2)-(3) pull against its KL loss (``kdlib/methods/two_stage.py``).
- Claims are paired effects in AP points (``kdlib.paper_tables``): each is the paper's sentence
  as a strict "higher than" (margin 0; none of its claims is a non-inferiority or an absolute
  threshold), so a seed's effect is that seed's gain of one row over another. Every table with
  run rows is measured against the undistilled SimCC HRNet-W32 (scheme ``'baseline'``), except
  GAINS, whose claim compares the gains of two datasets (two baselines: none is set).
- The papers interface: ``row_runs`` (the chain behind a row: teacher, stage-1 student, GCN) and
  ``row_metrics`` (the row model's numbers, the chain's training time).
"""
from __future__ import annotations

import copy


from kdlib.experiment import ExperimentConfig
from kdlib.teachers import teacher_run
from kdlib.paper_tables import Claim, Row, Table, best, every, gain, larger_gain, ordered

COCO_COLUMNS = ['Params(M)', 'GFLOPs', 'AP', 'AP50', 'AP75', 'APM', 'APL', 'AR']
CROWD_COLUMNS = ['Params(M)', 'GFLOPs', 'AP', 'AP50', 'AP75', 'APE', 'APM', 'APH']
ABLATION_COLUMNS = ['AP', 'AP50', 'AP75']

# ----------------------------------------------------------------------------- the schemes
# stage1: None = supervised SimCC (L_KL only), else two_stage method_params (Eq. 5 switches);
# stage2: None = no refiner, else two_stage_gcn method_params (target 'teacher' Eq. 6 | 'gt');
# head: 'simcc' unless given ('heatmap': the HRNet baseline of Tables I-II, one supervised run).
_FEATURE = dict(feature_kd=True, pose_l1=False, pose_structure=False)
SCHEMES = {
    'hrnet_w32': dict(model='hrnet_w32', head='heatmap', stage1=None, stage2=None),
    'teacher':  dict(model='hrnet_w48', stage1=None, stage2=None),
    'baseline': dict(model='hrnet_w32', stage1=None, stage2=None),
    'scheme1':  dict(model='hrnet_w32', stage1=None, stage2=dict(target='gt')),
    'scheme2':  dict(model='hrnet_w32', stage1=_FEATURE, stage2=None),
    'scheme3':  dict(model='hrnet_w32', stage1=dict(_FEATURE, pose_l1=True), stage2=None),
    'scheme4':  dict(model='hrnet_w32', stage1=dict(_FEATURE, pose_l1=True, pose_structure=True),
                     stage2=None),
    'scheme5':  dict(model='hrnet_w32', stage1=None, stage2=dict(target='teacher')),
    'scheme6':  dict(model='hrnet_w32', stage1=dict(_FEATURE, pose_l1=True, pose_structure=True),
                     stage2=dict(target='teacher')),
}
STAGE2_EPOCH_FRACTION = 30 / 210      # Sec. IV-B: 30 GCN epochs against 210 stage-1 epochs
STAGE2_LR = 1e-3                      # Sec. IV-B
LABEL_SMOOTHING = 0.0                 # uniform smoothing on top of SimCC's Gaussian labels, teacher
                                      # and student alike (module docstring; Sec. IV-B's "label
                                      # smoothing" = the Gaussian labels themselves)
VAL_SPLITS = {'coco': 'val', 'crowdpose': 'test'}   # Tables I/II: val2017; III/IV: CrowdPose test
# CrowdPose's protocol trains on trainval (train + val, 12k images) and tests on test. SynthPose
# writes no trainval file: the smaller profiles train on its train split, the same role.
PAPER_TRAIN_SPLITS = {'coco': 'train', 'crowdpose': 'trainval'}


def train_split(profile: str, dataset: str) -> str:
    return PAPER_TRAIN_SPLITS[dataset] if profile == 'paper' else 'train'


def stage2_epochs(profile_epochs: int) -> int:
    """The GCN's epochs: 30 of 210 in the paper, the same fraction of a smaller profile's."""
    return max(1, round(profile_epochs * STAGE2_EPOCH_FRACTION))


def experiments(scheme: str, dataset: str = 'crowdpose', profile: str = 'smoke', seed: int = 0,
                stage1_params: dict | None = None, stage2_params: dict | None = None,
                refiner_params: dict | None = None, label_smoothing: float = LABEL_SMOOTHING
                ) -> dict[str, ExperimentConfig]:
    """The runs of one scheme: {'teacher', 'student', ['refiner']}: the last one is the row's model
    (the heatmap baseline 'hrnet_w32' is a single supervised run: {'student'}).

    `stage1_params` / `stage2_params` override the scheme's method parameters (e.g. alpha, beta,
    edge_weights, feature_reduction; block_weights), `refiner_params` the IGP-GCN's (hidden,
    predict, sample_at). `label_smoothing` is the uniform smoothing of the SimCC labels of every
    run of the chain, teacher included (one label type: module docstring).
    """
    if scheme not in SCHEMES:
        raise KeyError(f'unknown scheme {scheme!r}; Table IV names: {sorted(SCHEMES)}')
    if dataset not in VAL_SPLITS:
        raise KeyError(f'TwoStage-GCN runs on {sorted(VAL_SPLITS)}, got dataset {dataset!r}')
    spec = SCHEMES[scheme]
    common = dict(paper='two_stage_gcn', profile=profile, dataset=dataset, seed=seed,
                  train_split=train_split(profile, dataset), val_split=VAL_SPLITS[dataset])
    if spec.get('head', 'simcc') == 'heatmap':
        return {'student': ExperimentConfig(model=spec['model'], head='heatmap', **common)}
    common.update(head='simcc', pipeline={'label_smoothing': label_smoothing} if label_smoothing else {})
    if scheme == 'teacher':          # the row shows the teacher: a run the kit trains
        return {'teacher': teacher_run(ExperimentConfig(model='hrnet_w48', **common), released_on_paper=False)}
    teacher = teacher_run(ExperimentConfig(model='hrnet_w48', **common))   # paper: SimCC's release
    runs = {'teacher': teacher}
    # SimCC's HRNet students start from ImageNet (SimCC configs, PRETRAINED: hrnet_w32-36af842e.pth)
    init = {'pretrained': 'imagenet'} if profile == 'paper' else {}
    if spec['stage1'] is None:
        student = ExperimentConfig(model=spec['model'], model_params=dict(init), **common)
    else:
        student = ExperimentConfig(model=spec['model'], method='two_stage', model_params=dict(init),
                                   method_params={**spec['stage1'], **(stage1_params or {})},
                                   teachers={'teacher': teacher}, **common)
    runs['student'] = student
    if spec['stage2'] is not None:
        method_params = {**spec['stage2'], **(stage2_params or {})}
        epochs = stage2_epochs(student.resolved_profile()['epochs'])
        runs['refiner'] = ExperimentConfig(
            model=spec['model'], student_builder='igp_gcn', init_from=copy.deepcopy(student),
            method='two_stage_gcn', method_params=method_params, model_params=dict(refiner_params or {}),
            teachers={'teacher': teacher} if method_params['target'] == 'teacher' else {},
            epochs=epochs, lr=STAGE2_LR, **common)
    return runs


def final_run(runs: dict[str, ExperimentConfig]) -> ExperimentConfig:
    """The run whose model is the row's (refiner > student > teacher)."""
    return runs.get('refiner') or runs.get('student') or runs['teacher']


# ----------------------------------------------------------------------------- table helpers
def _run(dataset: str, scheme: str) -> dict:
    return dict(dataset=dataset, scheme=scheme, tables='')


def _values(columns: list[str], values: list) -> dict[str, float]:
    return {c: v for c, v in zip(columns, values) if v is not None}


def _coco(params, gflops, *metrics) -> dict[str, float]:
    return _values(COCO_COLUMNS, [params, gflops, *metrics])


def _crowd(params, gflops, *metrics) -> dict[str, float]:
    return _values(CROWD_COLUMNS, [params, gflops, *metrics])


def _quoted(label: str, paper: dict, note: str = '') -> Row:
    return Row(label=label, paper=paper, kind='quoted', note=note)


# ----------------------------------------------------------------------------- claim effects
# ----------------------------------------------------------------------------- Table I
W32, W48, OURS = 'SimCC [19] HRNet-W32 256x192', 'SimCC [19] HRNet-W48 256x192', 'Ours HRNet-W32 256x192'
HR32 = 'HRNet [4] HRNet-W32 256x192'
_HR32_NOTE = 'kit: heatmap HRNet-W32 trained on the labels (scheme hrnet_w32)'

TABLE1 = Table(
    title='Table I: COCO val2017 (kit: SynthPose COCO val at the profile\'s input size)',
    columns=COCO_COLUMNS, metric_source='coco', baseline=W32,
    rows=[
        Row(HR32, _coco(28.5, 7.2, 74.4, 90.5, 81.9, 70.8, 81.0, 79.8), params=_run('coco', 'hrnet_w32'),
            note=_HR32_NOTE),
        _quoted('HRNet [4] HRNet-W48 256x192', _coco(63.6, 14.6, 75.1, 90.6, 82.2, 71.5, 81.8, 80.4)),
        _quoted('HRNet [4] HRNet-W32 384x288', _coco(28.5, 16.0, 75.8, 90.6, 82.7, 71.9, 82.8, 81.0)),
        _quoted('HRNet [4] HRNet-W48 384x288', _coco(63.6, 32.9, 76.3, 90.8, 82.9, 72.3, 83.4, 81.2)),
        _quoted('DARK [58] HRNet-32 256x192', _coco(28.5, 7.1, 75.6, 90.5, 82.1, 71.8, 82.8, 80.8)),
        _quoted('DARK [58] HRNet-32 384x288', _coco(63.6, 32.9, 76.6, 90.7, 82.8, 72.7, 83.9, 81.5)),
        _quoted('OKDHP [14] 2-Stack HG 256x192', _coco(13, 25.5, 72.8, 91.5, 79.5, 69.9, 77.1, 75.6)),
        _quoted('OKDHP [14] 4-Stack HG 256x192', _coco(24, 47, 74.8, 92.5, 81.6, 72.1, 78.5, 77.4)),
        _quoted('OKDHP [14] 8-Stack HG 256x192', _coco(None, None, 76.2, 92.6, 83.7, 73.4, 80.2, 78.8)),
        _quoted('FPD [44] HRNet-W32 256x192', _coco(28.5, 7.1, 75.5, 90.6, 82.3, 71.4, 82.0, 80.4)),
        _quoted('SDPose-B [46] HRNet-W32 259x192', _coco(13.2, 5.2, 73.7, 89.6, 80.4, 70.3, 80.5, 79.1)),
        _quoted('DistilPose-L [13] HRNet-W48-stage3 259x192', _coco(21.3, 10.3, 74.4)),
        _quoted('TransPose-H [59] HRNet-W48+Trans 256x192', _coco(17.5, 21.8, 75.8, None, None, None, None, 80.8)),
        _quoted('TFPose [60] ResNet50+Trans 384x288', _coco(None, 20.4, 72.4)),
        _quoted('ViTPose [6] ViTPose-B 256x192', _coco(86, 17.1, 75.8, None, None, None, None, 81.1)),
        Row(W32, _coco(28.5, 7.8, 75.3, None, None, None, None, 80.8), params=_run('coco', 'baseline')),
        Row(W48, _coco(66.3, 14.6, 75.9, None, None, None, None, 81.2), params=_run('coco', 'teacher'),
            note='the teacher of the two-stage distillation'),
        _quoted('SimCC [19] HRNet-W48 384x288', _coco(66.3, 32.9, 76.9, 90.9, 83.2, 73.2, 83.8, 82)),
        Row(OURS, _coco(31, 8.1, 76.2, 90.8, 82.8, 72.0, 82.9, 81.1), params=_run('coco', 'scheme6')),
    ],
    claims=[
        Claim("TwoStage's gain over HRNet-W32: Ours beats the heatmap HRNet-W32 with the same "
              'backbone and input ("1.8% higher than the one of HRNet", Sec. IV-C)', gain(OURS, HR32, 'AP')),
        Claim('Ours beats SimCC with the same backbone and input ("raises by 0.9% in terms of AP", '
              'Sec. IV-C)', gain(OURS, W32, 'AP')),
    ])

# ----------------------------------------------------------------------------- Table II
TABLE2 = Table(
    title='Table II: COCO test-dev2017 (no offline evaluator: the kit\'s rows are evaluated on val)',
    columns=COCO_COLUMNS, metric_source='coco', baseline=W32,
    rows=[
        _quoted('RMPE [29] PyraNet 320x256', _coco(28.1, 26.7, 72.3, 89.2, 79.1, 68.0, 78.6)),
        _quoted('SimpleBaseline [31] ResNet-152 384x288', _coco(68.6, 35.6, 73.7, 91.9, 81.1, 70.3, 80.0, 79.0)),
        _quoted('TransPose-H [59] HRNet-W48+Trans 256x192', _coco(17.5, 21.8, 75.0, 92.2, 82.3, 71.3, 81.1, 80.1)),
        Row(HR32, _coco(28.5, 7.2, 73.5), params=_run('coco', 'hrnet_w32'), note=f'{_HR32_NOTE}; val2017'),
        _quoted('HRNet [4] HRNet-W32 384x288', _coco(63.6, 16.0, 74.9, 92.5, 82.8, 71.3, 80.9, 80.1),
                note='backbone and Params as printed (63.6 M is W48\'s count)'),
        _quoted('DARK [58] HRNet-48 384x288', _coco(63.6, 32.9, 76.2, 92.5, 83.6, 72.5, 82.4, 81.1)),
        _quoted('SPM Hourglass', _coco(None, None, 66.9, 88.5, 72.9, 62.6, 73.1)),
        _quoted('TFPose [60] ResNet50+Trans 384x288', _coco(None, 20.4, 72.2, 90.9, 80.1, 69.1, 78.8)),
        _quoted('PRTR [61] HRNet-W32+Trans 384x288', _coco(41.5, 11.0, 71.7, 90.6, 79.6, 67.6, 78.4, 78.8)),
        _quoted('RLE [62] HRNet-W48 256x192', _coco(28.5, 14.6, 75.7, 92.3, 82.9, 72.3, 81.3)),
        _quoted('DistilPose-L [13] HRNet-W48-stage3 259x192', _coco(21.3, 10.3, 73.7, 91.6, 81.1, 70.2, 79.6)),
        _quoted('OPEC-Net [20] ResNet-152 384x288', _coco(None, None, 73.9, 91.9, 82.2)),
        Row(W32, _coco(28.5, 7.8, 74.3), params=_run('coco', 'baseline'), note='kit: val2017'),
        Row(W48, _coco(66.3, 14.6, 75.4, 92.4, 82.7, 71.9, 81.3, 80.5), params=_run('coco', 'teacher'),
            note='kit: val2017'),
        Row(OURS, _coco(31, 8.1, 75.1, 92.2, 82.7, 71.7, 81, 80.2), params=_run('coco', 'scheme6'),
            note='kit: val2017'),
    ],
    claims=[Claim("TwoStage's gain over HRNet-W32 (\"gains of 1.6% and 0.8%\" over HRNet and SimCC on "
                  'test-dev, Sec. IV-C; the kit checks val)', gain(OURS, HR32, 'AP')),
            Claim('Ours beats SimCC-W32 (+0.8 AP on test-dev, Sec. IV-C; the kit checks val)',
                  gain(OURS, W32, 'AP'))])

# ----------------------------------------------------------------------------- Table III
C32, COURS = 'SimCC [19] HRNet-W32 256x192', 'Ours HRNet-W32 256x192'
TABLE3 = Table(
    title='Table III: CrowdPose test (AP^E / AP^M / AP^H: see the module note on the header)',
    columns=CROWD_COLUMNS, metric_source='crowdpose', baseline=C32,
    rows=[
        _quoted('Mask R-CNN [28] ResNet101-FPN 320x256', _crowd(None, None, 57.2, 83.5, 60.3),
                note='sixth printed value 65.9 (header: AR)'),
        _quoted('AlphaPose+ [35] ResNet101 320x256', _crowd(None, None, 66.0, 84.2, 71.5),
                note='sixth printed value 72.7 (header: AR)'),
        _quoted('SimpleBaseline [31] ResNet101 320x256', _crowd(None, None, 60.8, 81.4, 65.7),
                note='sixth printed value 67.2 (header: AR)'),
        _quoted('SPPE [29]', _crowd(None, None, 66.0, 84.2, 71.5, 75.5, 66.3, 57.4)),
        _quoted('HrHRNet [5] HRNet-W48 640x640', _crowd(63.8, 154.3, 65.9, 86.4, 70.6, 73.3, 66.5, 57.9)),
        _quoted('DEKR [53] HRNet-W48 640x640', _crowd(65.7, 141.5, 67.3, 86.4, 72.2, 74.6, 68.1, 58.7)),
        Row(C32, _crowd(28.5, 7.8, 66.7, 82.1, 72.0, 74.1, 67.8, 56.2), params=_run('crowdpose', 'baseline')),
        Row(COURS, _crowd(31, 8.1, 68.7, 86.7, 73.5, 75.5, 68.9, 59.3), params=_run('crowdpose', 'scheme6')),
    ],
    claims=[
        Claim('Ours beats SimCC-W32 on CrowdPose ("raises by 2% compared to the one of SimCC", '
              'Sec. IV-C)', gain(COURS, C32, 'AP')),
        Claim('... also on the hardest, most crowded people (AP^H 59.3 vs 56.2, Table III; "help our '
              'model locate the invisible human joints in the challenging occlusion scenes")',
              gain(COURS, C32, 'APH')),
    ])

# ----------------------------------------------------------------------------- Table IV
S = ['Baseline', 'scheme-1', 'scheme-2', 'scheme-3', 'scheme-4', 'scheme-5', 'scheme-6 (ours)']
_ABLATION = {'Baseline': (66.7, 82.1, 72.0), 'scheme-1': (67.6, 85.2, 72.7), 'scheme-2': (67.3, 84.1, 72.3),
             'scheme-3': (67.7, 84.8, 72.6), 'scheme-4': (68.2, 86.3, 73.3), 'scheme-5': (67.9, 85.8, 73.0),
             'scheme-6 (ours)': (68.7, 86.7, 73.5)}
_SCHEME_OF = dict(zip(S, ['baseline'] + [f'scheme{i}' for i in range(1, 7)]))
_NOTES = {'scheme-1': 'IGP-GCN on the baseline, supervised by the labels (no KD)',
          'scheme-2': 'feature distillation (Eq. 1)',
          'scheme-3': 'feature + L1 pose distillation',
          'scheme-4': 'feature + skeleton-aware pose distillation (Eq. 2 = L1 + L_cst)',
          'scheme-5': 'IGP-GCN on the baseline, distilled from the teacher (Eq. 6-7)',
          'scheme-6 (ours)': 'scheme-4 as stage 1, then scheme-5\'s stage 2'}
TABLE4 = Table(
    title='Table IV: ablation on CrowdPose test',
    columns=ABLATION_COLUMNS, metric_source='crowdpose', baseline='Baseline',
    rows=[Row(s, _values(ABLATION_COLUMNS, list(_ABLATION[s])), params=_run('crowdpose', _SCHEME_OF[s]),
              note=_NOTES.get(s, 'SimCC HRNet-W32, no distillation')) for s in S],
    claims=[
        Claim('The IGP-GCN alone adds AP to the baseline ("the AP score of the scheme-1 raises by 0.9% '
              'than the one of baseline model", Sec. IV-D)', gain('scheme-1', 'Baseline', 'AP')),
        Claim('Feature distillation adds AP ("the scheme-2 is higher 0.6% than the baseline", Sec. IV-D)',
              gain('scheme-2', 'Baseline', 'AP')),
        Claim('Pose distillation adds AP on top of feature distillation ("the performance of the '
              'scheme-3 is better than that of the scheme-2", Sec. IV-D)', gain('scheme-3', 'scheme-2', 'AP')),
        Claim('The skeleton-aware loss beats plain L1 (scheme-3 "is inferior to that of the scheme-4", '
              'Sec. IV-D)', gain('scheme-4', 'scheme-3', 'AP')),
        Claim('Distilling the GCN from the teacher beats label supervision, in all three metrics ("all '
              'the evaluation metrics of the scheme-5 are superior to those of the scheme-1", Sec. IV-D; '
              'the effect is the smallest of the AP, AP50 and AP75 gains)',
              every(gain('scheme-5', 'scheme-1', c) for c in ABLATION_COLUMNS)),
        Claim('Two-stage beats one-stage distillation ("0.5% higher than the scheme-4 (one-stage '
              'distillation model)", Sec. IV-D)', gain('scheme-6 (ours)', 'scheme-4', 'AP')),
        Claim('Each component adds AP in the order of Table IV (Baseline < 2 < 3 < 4 < 6; the effect '
              'is the smallest step)', ordered(['scheme-6 (ours)', 'scheme-4', 'scheme-3', 'scheme-2',
                                               'Baseline'], 'AP')),
        Claim('The full method is the best scheme ("significantly better than other several HPE '
              'schemes", Sec. IV-D; its AP lead over the best other scheme)',
              best('scheme-6 (ours)', S[:-1], 'AP')),
    ])

# ----------------------------------------------------------------------------- gains
GAINS = Table(
    title='Gain of Ours over SimCC-W32: COCO val2017 (Table I) vs CrowdPose test (Table III)',
    columns=['AP'], metric_source='coco+crowdpose',
    rows=[Row('COCO SimCC-W32', {'AP': 75.3}, params=_run('coco', 'baseline')),
          Row('COCO Ours', {'AP': 76.2}, params=_run('coco', 'scheme6')),
          Row('CrowdPose SimCC-W32', {'AP': 66.7}, params=_run('crowdpose', 'baseline')),
          Row('CrowdPose Ours', {'AP': 68.7}, params=_run('crowdpose', 'scheme6'))],
    claims=[Claim('The gain is larger on crowded CrowdPose than on COCO (2.0 vs 0.9 AP; "especially for '
                  'the more complex CrowdPose dataset, the performance improvement of our model is more '
                  'significant", Abstract, Sec. V; the effect is the difference of the two gains)',
                  larger_gain(('CrowdPose Ours', 'CrowdPose SimCC-W32'), ('COCO Ours', 'COCO SimCC-W32'), 'AP'))])

TABLES = {'table1': TABLE1, 'table2': TABLE2, 'table3': TABLE3, 'table4': TABLE4, 'gains': GAINS}
HEADLINE = 'table3'      # the paper's headline: Ours vs SimCC-W32 on CrowdPose (4 runs)


def row_runs(profile: str, seed: int, scheme: str, dataset: str = 'crowdpose', **params) -> dict:
    """The papers interface: the run behind a table row (``'row'``: refiner > student > teacher)
    after the other runs of its scheme, under their names (``'teacher'``, ``'student'``)."""
    from kdlib.paper_tables import with_dependencies
    keep = {k: v for k, v in params.items() if k in ('stage1_params', 'stage2_params', 'refiner_params',
                                                     'label_smoothing')}
    runs = experiments(scheme, dataset, profile, seed, **keep)
    final = final_run(runs)
    return with_dependencies({**{name: cfg for name, cfg in runs.items() if cfg is not final},
                              'row': final})


def row_metrics(results: dict, **_params) -> dict[str, float]:
    """The papers interface: a row's numbers from its runs' results (``row_runs``' names): the row
    model's validation metrics, ``Params(M)`` and ``GFLOPs`` (paper convention), and the
    training time of the whole chain (teacher, stage-1 student, GCN)."""
    final = results['row']
    trained = [r for r in results.values() if isinstance(r, dict)]
    return {**final['metrics'], 'Params(M)': final['params_M'], 'GFLOPs': final['gflops_paper'],
            'train_time_s': sum(r['train_time_s'] for r in trained)}
