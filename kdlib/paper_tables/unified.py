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
  by name and the thorax approximated by the shoulders' midpoint (Section 5).
"""
from __future__ import annotations

from kdlib.paper_tables import Claim, Row, Table

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


def _unified_best_average(r) -> bool:
    """The unified model has a higher Avg than the single-dataset models evaluated on the full
    skeletons (rows without '*'), for both sizes."""
    return all(r[f'{s} Unified']['Avg'] > r[f'{s} MPII']['Avg'] for s in STUDENTS)


def _collapse(r) -> bool:
    """A model trained on MPII alone collapses on COCO's full skeleton: its COCO AP on all 17
    points is far (>= 10 AP) below the same model on the 12 shared points."""
    return all(r[f'{s} MPII*']['AP'] - r[f'{s} MPII']['AP'] >= 10 for s in STUDENTS)


def _small_beats_tiny(r) -> bool:
    return r['Small Unified']['Avg'] > r['Tiny Unified']['Avg']


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


def _distill_helps(column: str):
    return lambda r: all(r[_label(s, True)][column] > r[_label(s, False)][column] for s in STUDENTS)


def _distill_costs_mpii(r) -> bool:
    """The paper's nuance: distillation costs a little MPII PCKh (< 2 points) for both sizes."""
    return all(0 < r[_label(s, False)]['MPII (PCKh)'] - r[_label(s, True)]['MPII (PCKh)'] < 2
               for s in STUDENTS)


# ----------------------------------------------------------------------------- Table 5
_T5 = {'Tiny': [66.84, 90.63, 74.66, 64.69, 70.03, 69.74, 91.44, 76.98, 66.65, 73.96],
       'Small': [72.75, 92.69, 80.81, 70.35, 76.21, 75.20, 93.30, 82.17, 72.11, 79.48]}


def _halpe_close(r) -> bool:
    """The 21 points are predicted on Halpe with AP close (within 10 AP) to the in-dataset COCO AP
    of the same unified model (Table 1 / Table 3; the paper: 66.84 vs 62.03, 72.75 vs 68.63)."""
    return all(abs(r[f'{s} Unified']['AP'] - r[f'{s} Unified']['COCO AP']) < 10 for s in STUDENTS)


TABLES = {
    'table1': Table(
        title='Table 1: single-dataset vs unified training (MPII valid PCKh, COCO val AP/AR)',
        columns=T1_COLUMNS, rows=TABLE1_ROWS, metric_source='coco+mpii',
        claims=[
            Claim('Single-dataset (MPII) models collapse on the other dataset\'s full skeleton',
                  _collapse),
            Claim('The unified model has a better average than the MPII-only model evaluated '
                  'on both full skeletons', _unified_best_average),
            Claim('RTMPose-s beats RTMPose-t under unified training', _small_beats_tiny),
        ]),
    'table2': Table(
        title='Table 2: unified students with and without distillation (summary)',
        columns=['MPII (PCKh)', 'COCO (AP)', 'Average'], rows=_distill_rows(_T2, ['MPII (PCKh)', 'COCO (AP)', 'Average']),
        metric_source='coco+mpii',
        claims=[Claim('Distillation improves COCO AP for both students', _distill_helps('COCO (AP)')),
                Claim('Distillation improves the average for both students', _distill_helps('Average')),
                Claim('Distillation costs a little MPII PCKh (the paper\'s nuance)', _distill_costs_mpii)]),
    'table3': Table(
        title='Table 3: COCO val detail, unified students with and without distillation',
        columns=COCO_COLUMNS, rows=_distill_rows(_T3, COCO_COLUMNS), metric_source='coco',
        claims=[Claim('Distillation improves AP and AR for both students',
                      lambda r: _distill_helps('AP')(r) and _distill_helps('AR')(r))]),
    'table4': Table(
        title='Table 4: MPII valid per-joint PCKh@0.5, unified students with and without distillation',
        columns=MPII_COLUMNS, rows=_distill_rows(_T4, MPII_COLUMNS), metric_source='mpii',
        claims=[Claim('Distillation lowers MPII mean PCKh slightly for both students',
                      lambda r: all(r[_label(s, True)]['Mean'] < r[_label(s, False)]['Mean']
                                    for s in STUDENTS))]),
    'table5': Table(
        title='Table 5: Halpe val (GT boxes), all 21 predicted points',
        columns=COCO_COLUMNS + ['COCO AP'],
        rows=[Row(f'{size} Unified', dict(zip(COCO_COLUMNS, v)),
                  params=dict(_run(size, 'unified'), eval_mode='halpe'))
              for size, v in _T5.items()],
        metric_source='halpe',
        claims=[Claim('The extra keypoints are predicted with Halpe AP close to the in-dataset AP',
                      _halpe_close)]),
}
HEADLINE = 'table2'


# ----------------------------------------------------------------------------- the kit's runs
TEACHER = 'rtmpose_m'          # Section 4.1: RTMPose-m teachers, one per dataset
TEACHER_SEED = 0               # one teacher pair serves every student seed
PAPER_RECIPE = dict(epochs=420, batch_size=256)   # Section 4.2 (the `paper` profile only)


def _recipe(profile: str) -> dict:
    """RTMPose's schedule on the paper profile; the smaller profiles keep their own sizes."""
    return dict(PAPER_RECIPE) if profile == 'paper' else {}


def teacher_config(profile: str, dataset: str):
    """RTMPose-m trained by the kit on one dataset alone (the paper loads MMPose's weights)."""
    from kdlib.experiment import ExperimentConfig
    return ExperimentConfig(paper='unified', profile=profile, dataset=dataset, model=TEACHER,
                            head='simcc', recipe='adamw_cosine', seed=TEACHER_SEED, **_recipe(profile))


def experiment_config(profile: str, seed: int, student: str, training: str, distill: bool = True,
                      **_eval):
    """The training run behind a row: single-dataset student, or unified (+/- distillation).

    RTMPose recipe (Section 4.2): AdamW 4e-3, linear warm-up, cosine over the last half
    (`recipe='adamw_cosine'`); 420 epochs and batch 256 on the `paper` profile, the profile's
    sizes elsewhere.
    """
    from kdlib.experiment import ExperimentConfig
    common = dict(paper='unified', profile=profile, model=student, head='simcc',
                  recipe='adamw_cosine', seed=seed, **_recipe(profile))
    if training in ('coco', 'mpii'):
        return ExperimentConfig(dataset=training, **common)
    if training != 'unified':
        raise ValueError(f"training must be 'coco', 'mpii' or 'unified', got {training!r}")
    teachers = {d: teacher_config(profile, d) for d in ('coco', 'mpii')} if distill else {}
    return ExperimentConfig(dataset='unified', method='unified',
                            method_params={'distill': bool(distill)}, teachers=teachers,
                            train={'best_metric': 'Avg'}, **common)


def row_metrics(result: dict, training: str, eval_mode: str = 'all', **_params) -> dict:
    """All table columns of one trained run: in-dataset and cross-dataset evaluations.

    Table 1: 'PCK', 'PCK@0.1' (MPII valid), COCO 'AP'... (COCO val), 'Kpts', 'Avg'; the dataset
    a model was not trained on is evaluated on all its points or, with eval_mode='shared', on
    the 12 shared points. Tables 2-4 read the unified runs' per-dataset metrics; Table 5
    (eval_mode='halpe') puts the Halpe AP in the COCO-style columns and the COCO AP in 'COCO AP'.
    """
    from kdlib.data.unified import cross_evaluate
    m = result['metrics']
    if training == 'unified':
        coco = {k[5:]: v for k, v in m.items() if k.startswith('coco/')}
        mpii = {k[5:]: v for k, v in m.items() if k.startswith('mpii/')}
    elif training == 'mpii':
        mpii, coco = dict(m), cross_evaluate(result, 'coco', eval_mode)
    else:
        coco = dict(m)
        mpii = cross_evaluate(result, 'mpii', 'shared' if eval_mode == 'shared' else 'all')
    out = dict(mpii, **coco, **{'PCK': mpii['Mean'], 'PCK@0.1': mpii['Mean@0.1'],
                                'Kpts': result['num_joints'], 'Avg': (mpii['Mean'] + coco['AP']) / 2,
                                'MPII (PCKh)': mpii['Mean'], 'COCO (AP)': coco['AP'],
                                'Average': (mpii['Mean'] + coco['AP']) / 2})
    if eval_mode == 'halpe':
        out = dict(out, **cross_evaluate(result, 'halpe', 'unified'), **{'COCO AP': coco['AP']})
    return out
