"""EKR paper (Xu, Yan & Zheng, "Lightweight Human Pose Estimation with Enhanced Knowledge Review",
BMVC 2024): Tables 1-4 and the Fig. 5 sensitivity grid, transcribed, with the claims the kit checks.

Run rows carry the parameters of ``notebooks/03_enhanced_knowledge_review.ipynb``: ``dataset``,
``student`` (model zoo name), ``head`` ('simcc' = the paper's SimDR head, or 'heatmap'),
``distiller`` (a ``kdlib.methods.METHODS`` key: 'supervised', 'ekr', 'kd', 'fitnet', 'rkd', 'at',
'sp', 'reviewkd'), ``method_params``, ``measure_cost`` (Tables 2-3: inference memory and speed
by ``kdlib.models.cost.inference_cost``). The teacher of every distiller is HRNet-W32 with a SimDR head
trained by the kit on the same dataset (seed 0, the paper's "pretrained teacher", Section 4.1).

Notes on the transcription:
- Table 1 is printed transposed in the paper (one column per distiller); here one row each.
- Tables 2-3: "Infer memory" (MB) and "Speed" (s) are the paper's; the paper states neither the
  batch nor the device. The kit measures the peak memory of one batched forward and the seconds
  per batch (batch and device in the notebook's output; ``cost_batch`` parameter, default 32).
  Rows marked with * use the SimDR head; "Multi-KD" is the full method (Table 4's last row).
- The kit's SimDR head is SimCC's official one (flatten the K maps at 1/4 resolution, two linear
  layers to the x / y bins): at 256x256 it adds 2 x 4096 x 512 weights, so Lite-HRNet-18 grows from
  1.1 M to 5.3 M parameters, where the paper lists 1.1 M for both heads. The kit reports what its
  models have; the memory claim is checked on them as built.
- Table 3 is on COCO test-dev, not available offline: the kit evaluates on val2017 (GT boxes on
  SynthPose) and compares with the test-dev numbers only loosely.
- Table 4 rows: the baseline is the SimDR student trained without distillation; "cross-stage" is
  Eq. (1) with Knowledge Review's ABF fusion, D = MSE and uniform pair weights.
- Fig. 4 is a figure (one keypoint's 1D distributions before / after distillation, caption: "after
  distillation, a more prominent central Gaussian distribution is produced"). The kit checks it as
  numbers: the mean peak probability and entropy of the student's softmax x / y distributions over
  the visible validation joints (``kdlib.evaluation.sharpness.simcc_sharpness``), measured by the notebook for
  every SimDR run it makes and saved with its metrics; no paper numbers.
- Fig. 5's values are not in the text (figure only): its grid rows carry no paper numbers; the
  paper states the chosen point, alpha = 0.005, beta = 0.04.
- Augmentation (Section 4.1: rotation -30..30 degrees, scale 0.75..1.25, flip, half-body crops,
  box jitter) is ``PIPELINE``, for every run including the teacher. The kit's transform is HRNet's
  (rotation clip(N(0, r), -2r, 2r) with probability 0.6; scale clip(N(1, s), 1 - s, 1 + s)), so
  r = 15, s = 0.25 give the paper's ranges; mmpose's RandomBBoxTransform(rotate_factor=30,
  scale_factor=(0.75, 1.25)), which the paper's wording matches, draws truncated normals over the
  same ranges (rotation std ~16 degrees against ~14 here).
- Claims are the paper's sentences (Sections 4.2-4.3, Fig. 4 and 5 captions); orderings that only
  its tables show (e.g. ReviewKD > FitNet) are not claims, and facts of the architectures (a
  1.1 M-parameter student needs less memory than HRNet-W32) are not checked. Each is an effect
  judged on paired seeds (``kdlib.paper_tables``): a claim over both students is the smaller of the
  two effects; the only threshold is the memory saving's 10% (its claim says why).
- Baselines (``Table.baseline``, the row each run row's paired effect is shown against on
  SynthPose): Table 1, vanilla KD (the paper's reference mechanism, left of "Single Layer" and
  "Multiple Layers"); Tables 2-3, the heatmap Lite-HRNet-18 (Sec. 4.2's "+1.6 PCKh, -20% memory" is
  over it); Table 4 and the headline, the undistilled Lite-HRNet-18 (Table 4's Lite-HRNet-30 rows
  then read as capacity + distillation, beside the paper's effect taken the same way); Fig. 4, the
  undistilled student; Fig. 5, the chosen alpha = 0.005, beta = 0.04.
- The paper's own numbers are inconsistent in places (Table 1 ReviewKD 87.56 > Table 4 "+MFT+WA"
  87.5; Table 2's LiteHRNet30 Multi-KD has 1.7M params vs 1.8M without); transcribed as printed.
"""
from __future__ import annotations

from dataclasses import replace

from kdlib.paper_tables import Claim, Effect, Row, Table, best, gain, gains, ordered

STUDENTS = {'litehrnet_18': 'Lite-HRNet-18', 'litehrnet_30': 'Lite-HRNet-30'}
COST_COLUMNS = ['Params', 'Infer memory (MB)', 'Speed (s)']
DISTILLER_LABELS = {'kd': 'KD', 'fitnet': 'FitNet', 'rkd': 'RKD', 'at': 'AF', 'sp': 'SP',
                    'reviewkd': 'ReviewKD', 'ekr': 'Ours'}
ABLATION = [  # (label, distiller, EKR switches) -- Table 4 rows, top to bottom
    ('baseline', 'supervised', None),
    ('cross-stage', 'ekr', dict(mft=False, wa=False, vkd=False)),
    ('+ MFT', 'ekr', dict(wa=False, vkd=False)),
    ('+ WA', 'ekr', dict(mft=False, vkd=False)),
    ('+ MFT + WA', 'ekr', dict(vkd=False)),
    ('+ MFT + WA + VKD', 'ekr', {}),
]
# Fig. 5 grid: a decade either side of the chosen alpha = 0.005, beta = 0.04 (Section 4.3); the
# figure's own grid values are not in the text
FIG5_ALPHAS = (0.0005, 0.005, 0.05)
FIG5_BETAS = (0.004, 0.04, 0.4)
# Section 4.1's augmentation as PipelineConfig overrides (module docstring): rotation within
# +-30 degrees (2 x rot_factor), scale within 0.75..1.25; flip and half-body stay the dataset's
PIPELINE = {'rot_factor': 15.0, 'scale_factor': 0.25}
# Fig. 4 as numbers (``kdlib.evaluation.sharpness.simcc_sharpness``), measured on the validation set
SHARPNESS_COLUMNS = ['Peak probability (%)', 'Entropy (nats)']
PCKH = '`PCKh@0.5`'         # in backticks: a bare "@" renders as a mailto link in markdown


def run(student='litehrnet_18', distiller='ekr', dataset='mpii', head='simcc', measure_cost=False,
        **method_params) -> dict:
    """Notebook parameters of one run-row."""
    return dict(dataset=dataset, student=student, head=head, distiller=distiller,
                method_params=method_params, measure_cost=measure_cost)


def _pck(value: float) -> dict:
    return {'Mean': value}


def _cost(params, memory, speed, metric, value) -> dict:
    out = {'Params': params, 'Infer memory (MB)': memory, 'Speed (s)': speed, metric: value}
    return {k: v for k, v in out.items() if v is not None}


# ----------------------------------------------------------------------------- claim checks
def _value(r: dict, label: str, column: str) -> float:
    """r[label][column]; a missing one names the row (``evaluate_claim`` prints 'no kit result for ...')."""
    try:
        return r[label][column]
    except KeyError:
        raise KeyError(f'{label} / {column}') from None


def _in(unit: str, effect: Effect) -> Effect:
    """The same effect, read in ``unit`` (MB, s, ...) instead of points."""
    return replace(effect, unit=unit)


def _ablation_label(student: str, step: str) -> str:
    return f'{STUDENTS[student]}: {step}'


ONE_BY_ONE = ['baseline', 'cross-stage', '+ MFT', '+ MFT + WA', '+ MFT + WA + VKD']


def _each_module_adds(student: str) -> Effect:
    """Section 4.3: "the modules are added one-by-one ... the result is improved over the baseline
    ... with the weight allocation module, the student gains better performance ... [with] the vanilla
    distillation ... the best results": the smallest step of ONE_BY_ONE (best-first for ``ordered``)."""
    return ordered([_ablation_label(student, step) for step in reversed(ONE_BY_ONE)], 'Mean')


def _memory_saving(pairs: list[tuple[str, str]]):
    """Derived column: 100 * (1 - memory(SimDR row) / memory(heatmap row)) on the SimDR row."""
    def derive(r):
        return {simdr: 100.0 * (1.0 - _value(r, simdr, 'Infer memory (MB)') / _value(r, heat, 'Infer memory (MB)'))
                for simdr, heat in pairs}
    return derive


# ----------------------------------------------------------------------------- tables
def _table1() -> Table:
    paper = {'kd': 86.74, 'fitnet': 86.53, 'rkd': 86.94, 'at': 87.12, 'sp': 87.37,
             'reviewkd': 87.56, 'ekr': 87.73}
    rows = [Row(DISTILLER_LABELS[d], _pck(v), 'run', run(distiller=d)) for d, v in paper.items()]
    others = [DISTILLER_LABELS[d] for d in paper if d != 'ekr']
    return Table(
        title=f'Table 1: MPII valid {PCKH}, teacher HRNet-W32 -> student Lite-HRNet-18 (SimDR heads)',
        columns=['Mean'], metric_source='mpii', rows=rows, baseline='KD',
        claims=[Claim(f'Ours beats every other distiller of Table 1 ({PCKH}; 87.73 vs ReviewKD 87.56, '
                      'the best other); effect: its lead over the best of them',
                      best('Ours', others, 'Mean'))])


def _cost_table(dataset: str, metric: str, quoted: list[Row], kit: dict, title: str) -> Table:
    """kit: label -> (paper numbers, run params)."""
    rows = quoted + [Row(label, paper, 'run', params) for label, (paper, params) in kit.items()]
    pairs = [('LiteHRNet18*(Multi-KD)', 'LiteHRNet18'), ('LiteHRNet30*(Multi-KD)', 'LiteHRNet30')]
    saving = 'Memory saving (%)'                        # derived, on the SimDR rows
    return Table(
        title=title, columns=[*COST_COLUMNS, metric, saving], metric_source=dataset,
        rows=rows, derived={saving: _memory_saving(pairs)}, baseline=dict(pairs),
        claims=[Claim('The SimDR head lowers the inference memory of both students vs the heatmap '
                      'head (Sec. 4.2: "reducing inference memory by 20%"); effect: the smaller of the '
                      'two savings, in % of the heatmap student\'s memory',
                      Effect(lambda r: min(r[simdr][saving] for simdr, _ in pairs), unit='%')),
                Claim('The SimDR head cuts Lite-HRNet-18\'s inference memory by more than 10% (Sec. 4.2: '
                      '"reducing inference memory by 20%"; its own tables show 13-17%, so the threshold '
                      'is set below them: a saving of the paper\'s order, not its exact size); effect: '
                      'the saving minus 10%',
                      Effect(lambda r: r['LiteHRNet18*(Multi-KD)'][saving] - 10.0, unit='%')),
                Claim('SimDR + Multi-KD infers faster than the heatmap students (abstract: "speeding up '
                      'inference time"); effect: the smaller of the two time savings per batch',
                      _in('s', gains([(heat, simdr) for simdr, heat in pairs], 'Speed (s)'))),
                Claim(f'SimDR + Multi-KD beats the heatmap baseline for both students '
                      f'({PCKH if metric == "Mean" else metric}; Sec. 4.2: +1.6 PCKh, +1.9 / +2.2 AP); '
                      'effect: the smaller of the two gains', gains(pairs, metric))])


def _kit_rows(dataset: str, metric: str, numbers: dict) -> dict:
    def params(student, distiller='supervised', head='heatmap'):
        return run(student, distiller, dataset, head, measure_cost=True)
    spec = {'LiteHRNet18': params('litehrnet_18'), 'LiteHRNet30': params('litehrnet_30'),
            'LiteHRNet18*(Multi-KD)': params('litehrnet_18', 'ekr', 'simcc'),
            'LiteHRNet30*(Multi-KD)': params('litehrnet_30', 'ekr', 'simcc'),
            'HRNet-W32': params('hrnet_w32'), 'SBL-R50': params('sbl_r50')}
    return {label: (_cost(*numbers[label][:3], metric, numbers[label][3]), spec[label]) for label in spec}


def _table2() -> Table:
    quoted = [Row('ViTPose-B', _cost(86, 14090, None, 'Mean', 92.3), 'quoted'),
              Row('HRNet-W48', _cost(64, None, 3.14, 'Mean', 91.4), 'quoted'),
              Row('8-Stack Hourglass', _cost(25.1, 5174, 1.20, 'Mean', 90.2), 'quoted'),
              Row('MobileNetV2', _cost(9.6, 3615, 1.21, 'Mean', 85.4), 'quoted'),
              Row('ShuffleNetV2', _cost(7.6, 1383, 0.69, 'Mean', 82.8), 'quoted'),
              Row('2-Stack Hourglass', _cost(18.6, None, None, 'Mean', 88.6), 'quoted'),
              Row('OKDHP', _cost(18.6, None, None, 'Mean', 89.2), 'quoted')]
    numbers = {'HRNet-W32': (28.5, 8194, 2.35, 90.8), 'SBL-R50': (34.0, 6354, 1.53, 88.5),
               'LiteHRNet18': (1.1, 2900, 0.25, 86.1), 'LiteHRNet30': (1.8, 3334, 0.28, 86.9),
               'LiteHRNet18*(Multi-KD)': (1.1, 2473, 0.22, 87.7),
               'LiteHRNet30*(Multi-KD)': (1.7, 2886, 0.23, 88.9)}
    return _cost_table('mpii', 'Mean', quoted, _kit_rows('mpii', 'Mean', numbers),
                       f'Table 2: MPII valid, 256x256: Params (M), inference memory, speed, {PCKH} '
                       '(* = SimDR head)')


def _table3() -> Table:
    quoted = [Row('ViTPose-B', _cost(86, 15565, None, 'AP', 77.1), 'quoted'),
              Row('HRNet-W48', _cost(64, None, 2.94, 'AP', 74.1), 'quoted'),
              Row('MobileNetV2', _cost(9.6, 3615, 1.19, 'AP', 64.6), 'quoted'),
              Row('ShuffleNetV2', _cost(7.6, 1383, 0.67, 'AP', 59.9), 'quoted'),
              Row('2-Stack Hourglass', _cost(18.6, None, None, 'AP', 71.7), 'quoted'),
              Row('Lite Pose', _cost(1.7, 1174, 0.31, 'AP', 40.6), 'quoted'),
              Row('OKDHP', _cost(18.6, None, None, 'AP', 72.8), 'quoted')]
    numbers = {'HRNet-W32': (28.5, 8194, 2.25, 73.4), 'SBL-R50': (34.0, 6354, 1.51, 70.4),
               'LiteHRNet18': (1.1, 2170, 0.25, 64.8), 'LiteHRNet30': (1.8, 3334, 0.28, 67.2),
               'LiteHRNet18*(Multi-KD)': (1.1, 1794, 0.22, 66.7),
               'LiteHRNet30*(Multi-KD)': (1.7, 2816, 0.24, 69.4)}
    return _cost_table('coco', 'AP', quoted, _kit_rows('coco', 'AP', numbers),
                       'Table 3: COCO, 256x192: Params (M), inference memory, speed, AP (paper: '
                       'test-dev; kit: val2017, test-dev is not available offline)')


def _table4() -> Table:
    paper = {'litehrnet_18': (85.9, 86.8, 87.3, 87.1, 87.5, 87.7),
             'litehrnet_30': (86.7, 87.6, 88.4, 88.1, 88.7, 88.9)}
    rows = [Row(_ablation_label(s, step), _pck(value), 'run',
                run(s, distiller, **(switches or {})))
            for s, values in paper.items() for (step, distiller, switches), value in zip(ABLATION, values)]
    full, base = '+ MFT + WA + VKD', 'baseline'
    return Table(
        title=f'Table 4: ablation on MPII valid ({PCKH}), teacher HRNet-W32, SimDR heads',
        columns=['Mean'], metric_source='mpii', rows=rows,
        baseline={_ablation_label(s, step): _ablation_label(s, base)       # each student against
                  for s in paper for step, _, _ in ABLATION},              # its undistilled self
        claims=[Claim('Each module adds PCKh when added one by one, Lite-HRNet-18 (Sec. 4.3: baseline < '
                      'cross-stage < + MFT < + MFT + WA < + MFT + WA + VKD); effect: the smallest step',
                      _each_module_adds('litehrnet_18')),
                Claim('Each module adds PCKh when added one by one, Lite-HRNet-30 (same steps); effect: '
                      'the smallest step', _each_module_adds('litehrnet_30')),
                Claim('Distillation lifts both students (Sec. 4.3: "the result is improved over the '
                      'baseline"; full method > baseline); effect: the smaller of the two gains',
                      gains([(_ablation_label(s, full), _ablation_label(s, base)) for s in STUDENTS],
                            'Mean'))])


FIG4_BEFORE, FIG4_AFTER = 'before (SimDR student, no KD)', 'after (EKR)'


def _fig4() -> Table:
    """Fig. 4 as numbers: the same runs as Table 4's Lite-HRNet-18 baseline and full method."""
    rows = [Row(FIG4_BEFORE, {}, 'run', run(distiller='supervised')), Row(FIG4_AFTER, {}, 'run', run())]
    peak = SHARPNESS_COLUMNS[0]
    return Table(
        title='Fig. 4: sharpness of the student\'s 1D x / y distributions on MPII valid (visible joints)',
        columns=['Mean', *SHARPNESS_COLUMNS], metric_source='mpii', rows=rows, baseline=FIG4_BEFORE,
        claims=[Claim('After distillation the 1D distributions have a more prominent centre (Fig. 4 '
                      'caption: "a more prominent central Gaussian distribution"); effect: the rise of '
                      'the mean peak probability',
                      _in('% points', gain(FIG4_AFTER, FIG4_BEFORE, peak)))])


def fig5_label(alpha: float, beta: float) -> str:
    return f'alpha={alpha:g}, beta={beta:g}'


def _fig5() -> Table:
    rows = [Row(fig5_label(a, b), {}, 'run', run(alpha=a, beta=b)) for a in FIG5_ALPHAS for b in FIG5_BETAS]
    chosen = fig5_label(0.005, 0.04)
    others = [r.label for r in rows if r.label != chosen]
    return Table(
        title='Fig. 5: sensitivity to alpha and beta (Eq. 8), HRNet-W32 -> Lite-HRNet-18, MPII valid',
        columns=['Mean'], metric_source='mpii', rows=rows, baseline=chosen,
        claims=[Claim('The chosen alpha = 0.005, beta = 0.04 is the best grid point (Sec. 4.3: "Finally '
                      'alpha = 0.005, beta = 0.04 is selected" from the Fig. 5 study); effect: its lead '
                      'over the best other grid point', best(chosen, others, 'Mean'))])


def _headline() -> Table:
    t4 = _table4()
    keep = [_ablation_label('litehrnet_18', 'baseline'), _ablation_label('litehrnet_18', '+ MFT + WA + VKD')]
    rows = [r for r in t4.rows if r.label in keep]
    return Table(
        title='Headline (Table 4, first and last rows): Lite-HRNet-18 SimDR, without / with EKR, MPII valid',
        columns=['Mean'], metric_source='mpii', rows=rows, baseline=keep[0],
        claims=[Claim(f'EKR lifts Lite-HRNet-18 over its undistilled SimDR baseline ({PCKH}; Table 4: '
                      '85.9 -> 87.7)', gain(keep[1], keep[0], 'Mean'))])


TABLES = {'headline': _headline(), 'table1': _table1(), 'table2': _table2(), 'table3': _table3(),
          'table4': _table4(), 'fig4': _fig4(), 'fig5': _fig5()}
HEADLINE = 'headline'   # quick profile: 3 runs (teacher, baseline, EKR)


# ----------------------------------------------------------------------------- experiments
STUDENT_LR = 5e-4          # Adam, initial lr 5e-4 (Section 4.1)
PAPER_EPOCHS = 300         # Section 4.1 (the paper profile; smaller profiles keep their epochs)


def teacher_config(profile: str, dataset: str):
    """HRNet-W32 with a SimDR head, trained by the kit (``kdlib.teachers.teacher_run``), shared by
    every distiller."""
    from kdlib.experiment import ExperimentConfig
    from kdlib.teachers import teacher_run
    return teacher_run(ExperimentConfig(paper='ekr', profile=profile, dataset=dataset, model='hrnet_w32',
                                        head='simcc', method='supervised', pipeline=dict(PIPELINE)))


def experiment_config(profile: str, seed: int, dataset: str, student: str, head: str,
                      distiller: str, method_params: dict | None = None, **_notebook_only):
    """The ExperimentConfig of one run-row (its notebook parameters) at ``profile``/``seed``."""
    from kdlib.experiment import ExperimentConfig
    teachers = {} if distiller == 'supervised' else {'teacher': teacher_config(profile, dataset)}
    if distiller == 'ekr':          # drop explicit defaults: Fig. 5's centre = Table 1's "Ours" run
        method_params = _without_defaults(method_params or {})
    return ExperimentConfig(paper='ekr', profile=profile, dataset=dataset, model=student, head=head,
                            method=distiller, method_params=dict(method_params or {}),
                            teachers=teachers, seed=seed, lr=STUDENT_LR, pipeline=dict(PIPELINE),
                            epochs=PAPER_EPOCHS if profile == 'paper' else None)


def _without_defaults(params: dict) -> dict:
    from kdlib.methods.base import defaults
    from kdlib.methods.ekr import Params
    fixed = defaults(Params)
    return {k: v for k, v in params.items() if k not in fixed or v != fixed[k]}


def row_metrics(results: dict, head: str = 'simcc', columns=None, **_params) -> dict[str, float]:
    """The papers interface: a row's numbers from its runs' results (``row_runs``' names).

    What the training run stores (metrics, ``Params``, training time) plus, for a SimDR run, the
    Fig. 4 sharpness columns measured on the validation set (skipped when ``columns``, the ones a
    table needs, has none of them). The cost columns (inference memory and speed) are measured by
    the notebook's ``measure_cost`` cells and come from the driver's cell results.
    """
    result = results['row']
    metrics = {**result['metrics'], 'Params': result['params_M'], 'params_M': result['params_M'],
               'train_time_s': result['train_time_s']}
    if head == 'simcc' and (columns is None or set(SHARPNESS_COLUMNS) & set(columns)):
        metrics.update(sharpness_of(result))
    return metrics


def sharpness_of(result: dict) -> dict[str, float]:
    """``kdlib.evaluation.sharpness.simcc_sharpness`` of a finished SimDR run on its validation set."""
    from kdlib.experiment import ExperimentConfig, build_datasets, load_trained
    from kdlib.evaluation.sharpness import simcc_sharpness
    cfg = ExperimentConfig.from_dict(result['config'])
    profile = cfg.resolved_profile()
    val_set = build_datasets(cfg, profile)[1]
    return simcc_sharpness(load_trained(result), val_set, batch_size=profile['batch_size'],
                           device=profile['device'])


def row_runs(profile: str, seed: int, **params) -> dict:
    """The papers interface: the run behind a table row (``'row'``) and the runs it needs."""
    from kdlib.paper_tables import call_with, with_dependencies
    return with_dependencies({'row': call_with(experiment_config, profile, seed, params)})
