"""Unified-MT paper (Khan et al., BMVC 2024, arXiv:2405.20084): Tables 1-5 transcribed row by row,
with the claims the kit checks.

Every row of every table is the paper's own run (no literature rows): RTMPose-t ("Tiny") and
RTMPose-s ("Small") students trained on MPII alone, on COCO alone, or on the joint COCO+MPII set
with the unified 21-point skeleton, with or without multi-teacher distillation from two RTMPose-m
teachers (one per dataset). Run rows carry the parameters of `notebooks/04_unified_skeleton.ipynb`:

    student    'rtmpose_t' | 'rtmpose_s'
    training   'mpii' | 'coco' | 'unified'          (the training set)
    distill    True | False                        (unified only: Eq. 8 with / without L_D)
    eval_mode  'all' | 'shared'                    ('shared' = the 12 points COCO and MPII share)

Notes on the transcription:
- Table 1 marks single-dataset rows with '*' when the *other* dataset is evaluated on the 12
  shared points only: "MPII*" = the MPII model with COCO evaluated on 12 points; "COCO*" = the
  COCO model with MPII evaluated on 12 points (its COCO columns use all 17). The MPII columns of
  the MPII rows and the COCO columns of COCO* are in-dataset numbers. 'Kpts' is the number of
  keypoints the model predicts; 'Avg' = (PCKh + AP) / 2 (it matches the paper's rows, e.g.
  (87.75 + 19.82) / 2 = 53.79).
- Table 1's Small/MPII row prints AP75 = 53.51 between AP50 = 60.85 and AR75 = 16.17; it cannot be
  above AP50 and is almost certainly a typo (the Tiny row reads 3.93): transcribed as printed,
  flagged here, excluded from no claim (no claim reads it).
- Table 2's "Distill: No" rows are the unified students trained with L_CK only; their MPII and
  COCO numbers are the means of Table 4 and Table 3.
- Table 4's 'Shoulder'... columns are the kit's PCKh columns (Head, Sho., Elb., ...).
- Table 5 (Halpe, GT boxes): all 21 predicted points, evaluated in the 26-point Halpe frame: 20
  by name and the thorax approximated by the shoulders' midpoint (Section 5). The kit adds the
  column 'OKS MPII-only' (no paper value): the mean OKS similarity, on Halpe's COCO images, of the
  4 points COCO never labels (pelvis, thorax, upper neck, head top), and two kit rows without
  paper values, the MPII-only students on Halpe, for the claim of Fig. 2 / Section 5 that the
  unified student predicts those points on COCO images.

Claims: each is a sentence of the paper (quoted in its text) that its own numbers support and
that the kit's numbers can contradict, written as an effect that is > 0 exactly when it holds, in
one unit (PCKh or COCO AP/AR points, a fraction, OKS similarity), and judged on paired seeds
(`kdlib.paper_tables`). A claim about both students, or about several columns of one unit, is the
smallest of its parts. The size of the "slight" MPII dip is a share of the undistilled PCKh (keeps
>= 98%), not a number of points sized for the paper's 80-85 PCKh. Left out: "a model trained on
MPII alone collapses on COCO's 17 points" (Table 1 rows MPII vs MPII*) -- structural, since the 5
face points such a model lacks count as misses and cap its OKS at 12/17 < 0.75; and "RTMPose-s
beats RTMPose-t", which the paper does not claim.

Baselines (`Table.baseline`, the row each table's effects are measured against): Table 1
'Tiny MPII*' (the single-dataset model the unified one is measured against, COCO scored on the
points it predicts); Tables 2-4 'Tiny no distill' (a table names one row, so the Small rows'
effects over it mix size and distillation: Small's distillation effect is the difference of the
two Small rows' effects); Table 5 'Tiny MPII-only' (the kit row that learned the MPII-only points
on MPII images alone; it has no paper values, so the report shows no paper effect there).
"""
from __future__ import annotations

from kdlib import teachers
from kdlib.paper_tables import Claim, Effect, Row, Table, every, gains, share_at_least

STUDENTS = {'Tiny': 'rtmpose_t', 'Small': 'rtmpose_s'}
T1_COLUMNS = ['PCK', 'PCK@0.1', 'AP', 'AP50', 'AP75', 'AR', 'AR50', 'AR75', 'Kpts', 'Avg']
COCO_COLUMNS = ['AP', 'AP50', 'AP75', 'APM', 'APL', 'AR', 'AR50', 'AR75', 'ARM', 'ARL']
MPII_COLUMNS = ['Head', 'Sho.', 'Elb.', 'Wri.', 'Hip', 'Kne.', 'Ank.', 'Mean', 'Mean@0.1']


def _run(size: str, training: str, distill: bool = True, eval_mode: str = 'all') -> dict:
    return dict(student=STUDENTS[size], training=training,
                distill=bool(distill and training == 'unified'), eval_mode=eval_mode)


def _t1(values: list[float]) -> dict[str, float]:
    return dict(zip(T1_COLUMNS, values))


# ----------------------------------------------------------------------------- Table 1
_T1 = {  # size -> label -> (row parameters, paper values)
    'Tiny': {
        'MPII': (('mpii', True, 'all'), [87.75, 29.66, 19.82, 57.56, 3.93, 25.75, 62.37, 14.37, 16, 53.79]),
        'MPII*': (('mpii', True, 'shared'), [87.75, 29.66, 53.23, 76.61, 56.43, 59.12, 81.40, 62.46, 16, 70.49]),
        'COCO*': (('coco', True, 'shared'), [77.62, 17.79, 67.99, 88.07, 75.59, 73.50, 92.03, 80.38, 17, 72.81]),
        'Unified': (('unified', True, 'all'), [79.75, 19.58, 62.03, 85.66, 69.39, 68.12, 90.05, 75.13, 21, 70.89]),
    },
    'Small': {
        'MPII': (('mpii', True, 'all'), [89.69, 32.28, 21.86, 60.85, 53.51, 27.96, 65.52, 16.17, 16, 55.78]),
        'MPII*': (('mpii', True, 'shared'), [89.69, 32.28, 57.48, 78.88, 61.57, 63.33, 83.61, 67.50, 16, 73.59]),
        'COCO*': (('coco', True, 'shared'), [81.93, 22.82, 72.17, 89.19, 79.38, 77.23, 92.85, 84.74, 17, 77.05]),
        'Unified': (('unified', True, 'all'), [84.16, 24.66, 68.63, 88.30, 75.73, 74.14, 92.10, 80.71, 21, 76.40]),
    },
}
TABLE1_ROWS = [Row(f'{size} {label}', _t1(values), params=_run(size, *args))
               for size, rows in _T1.items() for label, (args, values) in rows.items()]


def _per_size(better: str, worse: str, sizes=tuple(STUDENTS)) -> list[tuple[str, str]]:
    """(better, worse) row labels for each student size, e.g. ('Tiny Unified', 'Tiny MPII*')."""
    return [(f'{s} {better}', f'{s} {worse}') for s in sizes]


# ----------------------------------------------------------------------------- Tables 2-4
_T2 = {('Tiny', False): (80.21, 60.69, 70.45), ('Tiny', True): (79.75, 62.03, 70.89),
       ('Small', False): (85.46, 67.14, 76.30), ('Small', True): (84.16, 68.63, 76.40)}
_T3 = {('Tiny', False): [60.69, 85.21, 67.71, 58.06, 66.13, 67.00, 89.77, 73.82, 62.67, 73.18],
       ('Tiny', True): [62.03, 85.66, 69.39, 59.14, 67.73, 68.12, 90.05, 75.13, 63.69, 74.37],
       ('Small', False): [67.14, 87.49, 74.67, 64.17, 73.13, 72.95, 91.78, 79.77, 68.62, 79.17],
       ('Small', True): [68.63, 88.30, 75.73, 65.52, 74.79, 74.14, 92.10, 80.71, 69.91, 80.25]}
_T4 = {('Tiny', False): [94.51, 91.24, 78.61, 69.38, 81.34, 72.98, 67.69, 80.21, 19.51],
       ('Tiny', True): [93.83, 90.86, 78.71, 70.14, 79.82, 71.77, 66.82, 79.75, 19.58],
       ('Small', False): [96.01, 94.53, 84.51, 77.26, 86.33, 80.15, 74.87, 85.46, 25.33],
       ('Small', True): [95.74, 93.38, 83.30, 76.80, 83.59, 78.02, 73.78, 84.16, 24.66]}


def _label(size: str, distill: bool) -> str:
    return f"{size} {'+ distill' if distill else 'no distill'}"


def _distill_rows(values: dict, columns: list[str]) -> list[Row]:
    return [Row(_label(size, d), dict(zip(columns, v)), params=_run(size, 'unified', d))
            for (size, d), v in values.items()]


def _distill_pairs(sizes=tuple(STUDENTS)) -> list[tuple[str, str]]:
    """(distilled, undistilled) row labels for each student size."""
    return [(_label(s, True), _label(s, False)) for s in sizes]


def _distill_raises(columns: tuple[str, ...], sizes=tuple(STUDENTS)) -> Effect:
    """Distillation raises every column for every size: the smallest gain (one unit of points)."""
    return every(gains(_distill_pairs(sizes), c) for c in columns)


def _distill_lowers(columns: tuple[str, ...], sizes=tuple(STUDENTS)) -> Effect:
    """Distillation lowers every column for every size: the smallest drop."""
    return every(gains([(n, d) for d, n in _distill_pairs(sizes)], c) for c in columns)


MPII_KEPT_SHARE = 0.98    # "slightly" / "minor dip" (Section 5): the paper's dips are 0.6% and 1.5%


def _distill_keeps_mpii(share: float = MPII_KEPT_SHARE) -> Effect:
    """Each distilled student keeps >= ``share`` of its undistilled MPII PCKh: the smallest excess."""
    return every((share_at_least(d, n, 'MPII (PCKh)', share) for d, n in _distill_pairs()),
                  unit='fraction')


# ----------------------------------------------------------------------------- Table 5
_T5 = {'Tiny': [66.84, 90.63, 74.66, 64.69, 70.03, 69.74, 91.44, 76.98, 66.65, 73.96],
       'Small': [72.75, 92.69, 80.81, 70.35, 76.21, 75.20, 93.30, 82.17, 72.11, 79.48]}


MPII_ONLY_OKS = 'OKS MPII-only'   # kit column: mean OKS similarity of the 4 MPII-only points on Halpe


def _table5_rows() -> list[Row]:
    rows = [Row(f'{size} Unified', dict(zip(COCO_COLUMNS, v)),
                params=dict(_run(size, 'unified'), eval_mode='halpe')) for size, v in _T5.items()]
    rows += [Row(f'{size} MPII-only', {}, params=dict(_run(size, 'mpii'), eval_mode='halpe'),
                 note='kit baseline for the MPII-only points (no paper values)') for size in STUDENTS]
    return rows


T2_COLUMNS = ['MPII (PCKh)', 'COCO (AP)', 'Average']

TABLES = {
    'table1': Table(
        title='Table 1: single-dataset vs unified training (MPII valid PCKh, COCO val AP/AR)',
        columns=T1_COLUMNS, rows=TABLE1_ROWS, metric_source='coco+mpii', baseline='Tiny MPII*',
        claims=[Claim('Unified training beats the MPII-only model\'s average (Avg) for both students, '
                      'also when COCO is scored only on the 12 points that model predicts (MPII* rows; '
                      'abstract: "Our joint models achieved an average accuracy of 70.89 and 76.40, '
                      'compared to 53.79 and 55.78 when trained on a single dataset"; Table 1: '
                      '"consistently demonstrates enhanced average performance")',
                      gains(_per_size('Unified', 'MPII*'), 'Avg'))]),
    'table2': Table(
        title='Table 2: unified students with and without distillation (summary)',
        columns=T2_COLUMNS, rows=_distill_rows(_T2, T2_COLUMNS), metric_source='coco+mpii',
        baseline=dict(_distill_pairs()),             # each size against its undistilled self
        claims=[Claim('Distillation improves COCO AP for both students (Section 5, Role of '
                      'Distillation: "improves COCO (AP) performance"; Small "benefits on COCO")',
                      _distill_raises(('COCO (AP)',))),
                Claim('Distillation improves the MPII + COCO average for both students ("resulting '
                      'in an overall higher average score")', _distill_raises(('Average',))),
                Claim('Distillation lowers MPII PCKh for both students ("slightly reduces '
                      'performance on MPII (PCKh)"; "a minor dip in MPII performance")',
                      _distill_lowers(('MPII (PCKh)',))),
                Claim('The MPII dip is slight: each distilled student keeps at least 98% of its '
                      'undistilled MPII PCKh ("slightly", "minor dip"; the kit\'s margin of 2% is '
                      '1.6-1.7 PCKh points at the paper\'s 80-85 and stays relative on any data; '
                      'the paper\'s dips are 0.6% and 1.5%)', _distill_keeps_mpii())]),
    'table3': Table(
        title='Table 3: COCO val detail, unified students with and without distillation',
        columns=COCO_COLUMNS, rows=_distill_rows(_T3, COCO_COLUMNS), metric_source='coco',
        baseline=dict(_distill_pairs()),             # each size against its undistilled self
        claims=[Claim('Distillation improves COCO AP and AR for both students (Section 5: '
                      '"Distillation enhances all aspects of performance, particularly in Average '
                      'Precision (AP) and Average Recall (AR)")', _distill_raises(('AP', 'AR')))]),
    'table4': Table(
        title='Table 4: MPII valid per-joint PCKh 0.5, unified students with and without distillation',
        columns=MPII_COLUMNS, rows=_distill_rows(_T4, MPII_COLUMNS), metric_source='mpii',
        baseline=dict(_distill_pairs()),             # each size against its undistilled self
        claims=[Claim('Distillation lowers Head, Shoulder and Hip PCKh for both students ("primary '
                      'keypoints like Head, Shoulder, and Hip slightly decline"; no bound on '
                      '"slightly": the paper\'s own Small Hip falls 2.74 points)',
                      _distill_lowers(('Head', 'Sho.', 'Hip'))),
                Claim('Distillation improves Wrist and Elbow PCKh of the Tiny student ("shows '
                      'improvements in some keypoints (Wrist, Elbow)"; the Small student\'s Wrist and '
                      'Elbow fall in the paper, so the claim reads Tiny only)',
                      _distill_raises(('Wri.', 'Elb.'), ('Tiny',)))]),
    'table5': Table(
        title='Table 5: Halpe val (GT boxes), all 21 predicted points',
        columns=COCO_COLUMNS + [MPII_ONLY_OKS], rows=_table5_rows(), metric_source='halpe',
        baseline='Tiny MPII-only',
        claims=[Claim('On COCO images the unified student places the 4 points COCO never labels '
                      '(pelvis, thorax, upper neck, head top) better than the MPII-only model, for '
                      'both students (Section 5: "our unified model can effectively predict points '
                      'learned from one dataset on images in the other dataset"; Fig. 2)',
                      Effect(gains(_per_size('Unified', 'MPII-only'), MPII_ONLY_OKS).fn,
                             unit='OKS similarity (0-1)'))]),
}
HEADLINE = 'table2'


# ----------------------------------------------------------------------------- the kit's runs
TEACHER = 'rtmpose_m'          # Section 4.1: RTMPose-m teachers, one per dataset
TEACHER_SEED = teachers.TEACHER_SEED   # one teacher pair serves every student seed
PAPER_RECIPE = dict(epochs=420, batch_size=256)   # Section 4.2 (the `paper` profile only)
# RTMPose's SimCC codec (SimCCLabel, sigma (x, y) in bins, normalize=False): mmpose
# projects/rtmpose/rtmpose/body_2d_keypoint/rtmpose-m_8xb256-420e_coco-256x192.py (4.9, 5.66) and
# .../mpii/rtmpose-m_8xb64-210e_mpii-256x256.py (5.66, 5.66). Per dataset of the crop size.
RTMPOSE_SIMCC_SIGMA = {'coco': (4.9, 5.66), 'mpii': (5.66, 5.66)}
# RTMPose's own task loss on one dataset: the unified method without teachers and alpha = 1
# (KLDiscretLoss beta = 10, label softmax; `kdlib.methods.unified`).
RTMPOSE_TASK_PARAMS = {'distill': False, 'alpha': 1.0}


def _recipe(profile: str) -> dict:
    """RTMPose's schedule on the paper profile; the smaller profiles keep their own sizes."""
    return dict(PAPER_RECIPE) if profile == 'paper' else {}


def rtmpose_pipeline(dataset: str) -> dict:
    """PipelineConfig overrides for RTMPose's SimCC labels on crops of `dataset`'s size.

    Sigma per axis, (x, y) in bins, as mmpose's `SimCCLabel` (RTMPose-*_coco-256x192: (4.9, 5.66)).
    Sigma stays in bins on every profile (as the kit's PAPER_PIPELINES do).
    Augmentation stays the kit's HRNet pipeline (`kdlib.data.topdown`), not RTMPose's
    (RandomBBoxTransform, YOLOXHSV, CoarseDropout, and its stage-2 switch 30 epochs before the end).
    """
    return {'simcc_sigma': RTMPOSE_SIMCC_SIGMA[dataset], 'simcc_normalize': False}


def _common(profile: str, seed: int, model: str, crop: str) -> dict:
    """RTMPose recipe (Section 4.2, 'followed the same data preprocessing pipeline as used by the
    original RTMPose models'): AdamW 4e-3 without decay on norms and biases, linear warm-up, cosine
    over the last half, EMA of the weights for evaluation (`recipe='adamw_cosine'`,
    `kdlib/train/optim.py`); RTMPose's SimCC labels (`rtmpose_pipeline`); 420 epochs and batch 256
    on the `paper` profile, the profile's sizes elsewhere. The paper does not mention the EMA; the
    apparent authors' project comments it out of its unified students' configs
    (thewall27/Unified-2D-HPE-using-Knowledge-Distillation, `rtmpose-t_8xb256-420e_mpii-coco-
    256x192.py`) while MMPose's RTMPose-m teachers were trained with it; the kit keeps it for every
    network (`train={'ema_momentum': 0}` turns it off)."""
    return dict(paper='unified', profile=profile, model=model, head='simcc', recipe='adamw_cosine',
                seed=seed, pipeline=rtmpose_pipeline(crop), **_recipe(profile))


def teacher_config(profile: str, dataset: str):
    """RTMPose-m trained by the kit on one dataset alone (the paper loads MMPose's weights)."""
    from kdlib.experiment import ExperimentConfig
    from kdlib.teachers import teacher_run
    return teacher_run(ExperimentConfig(dataset=dataset, method='unified',
                                        method_params=dict(RTMPOSE_TASK_PARAMS),
                                        **_common(profile, TEACHER_SEED, TEACHER, dataset)))


def experiment_config(profile: str, seed: int, student: str, training: str, distill: bool = True,
                      **_eval):
    """The training run behind a row: single-dataset student (RTMPose's task loss alone), or
    unified (Eq. 8, +/- distillation; crops at COCO's size, the student's input). Recipe:
    `_common`."""
    from kdlib.experiment import ExperimentConfig
    if training in ('coco', 'mpii'):
        return ExperimentConfig(dataset=training, method='unified',
                                method_params=dict(RTMPOSE_TASK_PARAMS),
                                **_common(profile, seed, student, training))
    if training != 'unified':
        raise ValueError(f"training must be 'coco', 'mpii' or 'unified', got {training!r}")
    teachers = {d: teacher_config(profile, d) for d in ('coco', 'mpii')} if distill else {}
    return ExperimentConfig(dataset='unified', method='unified',
                            method_params={'distill': bool(distill)}, teachers=teachers,
                            train={'best_metric': 'Avg'}, **_common(profile, seed, student, 'coco'))


def row_metrics(results: dict, training: str, eval_mode: str = 'all', **_params) -> dict:
    """The papers interface: a row's numbers from its runs' results (``row_runs``' names): every
    table column of the row's run (``'row'``), in-dataset and cross-dataset evaluations.

    Table 1: 'PCK', 'PCK@0.1' (MPII valid), COCO 'AP'... (COCO val), 'Kpts', 'Avg'; the dataset
    a model was not trained on is evaluated on all its points or, with eval_mode='shared', on
    the 12 shared points. Tables 2-4 read the unified runs' per-dataset metrics; Table 5
    (eval_mode='halpe') puts the Halpe AP in the COCO-style columns, and the per-point OKS
    similarities (`kdlib.data.unified.keypoint_similarity`) in 'OKS <point>' and 'OKS MPII-only'.
    Cost: ``params_M``, ``gflops_paper``, ``train_time_s`` of the row's run.
    """
    result = results['row']
    m = result['metrics']
    other = 'shared' if eval_mode == 'shared' else 'all'     # the dataset not trained on
    if training == 'unified':
        coco = {k[5:]: v for k, v in m.items() if k.startswith('coco/')}
        mpii = {k[5:]: v for k, v in m.items() if k.startswith('mpii/')}
    elif training == 'mpii':
        mpii, coco = dict(m), cross_evaluate(result, 'coco', other)
    else:
        coco, mpii = dict(m), cross_evaluate(result, 'mpii', other)
    out = dict(mpii, **coco, **{'PCK': mpii['Mean'], 'PCK@0.1': mpii['Mean@0.1'],
                                'Kpts': result['num_joints'], 'Avg': (mpii['Mean'] + coco['AP']) / 2,
                                'MPII (PCKh)': mpii['Mean'], 'COCO (AP)': coco['AP'],
                                'Average': (mpii['Mean'] + coco['AP']) / 2,
                                'params_M': result['params_M'], 'gflops_paper': result['gflops_paper'],
                                'train_time_s': result['train_time_s']})
    if eval_mode == 'halpe':
        out = dict(out, **cross_evaluate(result, 'halpe', 'unified'))
    return out


# ----------------------------------------------------------------------------- notebook views
MODEL_NAMES = {'rtmpose_t': 'RTMPose-t', 'rtmpose_s': 'RTMPose-s', 'rtmpose_m': 'RTMPose-m'}


def row_runs(profile: str, seed: int, **params) -> dict:
    """The papers interface: the run behind a table row (``'row'``) and the runs it needs."""
    from kdlib.paper_tables import call_with, with_dependencies
    return with_dependencies({'row': call_with(experiment_config, profile, seed, params)})


def cross_evaluate(result: dict, dataset: str, joints: str = 'all', split: str = 'val') -> dict:
    """Evaluate a finished run's model (any skeleton) on another dataset's `split` (Table 1, 5)."""
    from dataclasses import replace

    from kdlib.data import build_dataset
    from kdlib.data.unified import UNIFIED, CrossEvalDataset
    from kdlib.experiment import ExperimentConfig, load_trained, pipeline_config, train_config
    from kdlib.profiles import dataset_root
    from kdlib.skeletons import SKELETONS
    from kdlib.train.trainer import evaluate
    cfg = ExperimentConfig.from_dict(result['config'])
    profile = cfg.resolved_profile()
    model = load_trained(result)
    pipeline = replace(pipeline_config(cfg, profile, dataset, False),
                       input_size=tuple(result['input_size']))
    val = build_dataset(dataset, split, dataset_root(profile, dataset), pipeline)
    skeleton = UNIFIED if result['num_joints'] == UNIFIED.num_joints else SKELETONS[cfg.dataset]
    tcfg = train_config(cfg, profile)
    tcfg.show_progress = False
    return evaluate(model.to(tcfg.device), CrossEvalDataset(val, skeleton, joints), tcfg)
