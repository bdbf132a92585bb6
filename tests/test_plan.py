"""`python -m kdlib.reproduce <paper> --plan`: the runs a table needs and what they cost, before
anything trains (each paper module's `row_runs`, the papers interface)."""
import importlib

import pytest

from kdlib.experiment import config_hash
from kdlib.plan import QUOTED_TRAIN_SAMPLES, plan, planned_runs
from kdlib.reproduce import PAPERS, main


@pytest.mark.parametrize('paper', [p for p, (_, m) in PAPERS.items() if m])
def test_every_row_of_every_table_has_its_runs(paper):
    module = importlib.import_module(PAPERS[paper][1])
    for table in module.TABLES.values():
        for row in table.run_rows():
            runs = module.row_runs('smoke', 1, **row.params)
            assert 'row' in runs and list(runs)[-1] == 'row', row.label       # dependencies first
            assert len({config_hash(c) for c in runs.values()}) == len(runs)    # each run once


def test_plan_lists_each_run_once_teachers_first_and_costs_them():
    table, configs = planned_runs('ekr', 'smoke', ['headline'], [0, 1])
    assert len(table) == 5                       # 2 baselines, 2 EKR students, 1 shared teacher
    teacher = table[table['method'] == 'supervised'].query('model == "hrnet_w32"')
    assert len(teacher) == 1 and table.index.get_loc(teacher.index[0]) < \
        table.index.get_loc(table[table['method'] == 'ekr'].index[0])
    assert set(configs) == set(table.index)
    costed = plan('ekr', 'smoke', ['headline'], [0])
    assert (costed['step s'] > 0).all() and (costed['device-hours'] > 0).all()
    assert (costed['steps'] == costed['epochs'] * -(-costed['train samples'] // costed['batch'])).all()


def test_paper_profile_plan_quotes_missing_dataset_sizes(capsys):
    table = plan('sdp', 'paper', ['table2'], [0], measure=False)      # COCO is not on this disk
    assert set(table['samples from']) == {'quoted'}
    assert set(table['train samples']) == {QUOTED_TRAIN_SAMPLES['coco']}
    assert (table['epochs'] >= 140).all()                            # the papers' schedules
    main(['ekr', '--profile', 'smoke', '--headline', '--seeds', '1', '--plan'])     # HEADLINE = 'headline'
    out = capsys.readouterr().out
    assert 'device-hours' in out and 'measured on cpu' in out and 'headline / ' in out
    with pytest.raises(SystemExit):                    # two ways of choosing tables at once
        main(['ekr', '--profile', 'smoke', '--headline', '--table', 'headline', '--plan'])
    assert '--headline and --table' in capsys.readouterr().err


def test_paper_profile_distils_from_the_releases_and_names_missing_files(tmp_path, monkeypatch):
    """`--profile paper`: the teachers the papers took from a release are that release
    (kdlib.teachers.RELEASED), listed as files (present or MISSING), never as training runs."""
    monkeypatch.setenv('KDLIB_WEIGHTS', str(tmp_path))
    table = plan('elpn_mapd', 'paper', ['table6'], [0], measure=False)
    released = table[table['method'].str.startswith('released')]
    assert len(released) == 1 and released['model'].iloc[0] == 'hrnet_w32'
    assert 'MISSING' in released['method'].iloc[0] and 'pose_hrnet_w32_256x256.pth' in released['method'].iloc[0]
    assert not ((table['model'] == 'hrnet_w32') & (table['epochs'] > 0)).any()   # no teacher trained


def test_plan_shows_which_runs_are_done_which_resume_and_what_is_left(isolated_runs, capsys):
    """The plan reads the run cache: a run with a result.json is 'done', one with epochs in its
    metrics.csv resumes ('epoch k/N'), and the hours left count only what is still to train."""
    import pandas as pd
    from kdlib.experiment import run_dir_of
    table, configs = planned_runs('ekr', 'smoke', ['headline'], [0])
    assert set(table['state']) == {''} and table['trained min'].isna().all()
    finished, resumed = table.index[0], table.index[-1]
    for key, epochs in ((finished, table.loc[finished, 'epochs']), (resumed, 1)):
        run_dir = run_dir_of(configs[key])
        run_dir.mkdir(parents=True)
        pd.DataFrame({'epoch': range(1, epochs + 1), 'epoch_time_s': [30.0] * epochs}).to_csv(
            run_dir / 'metrics.csv', index=False)
    (run_dir_of(configs[finished]) / 'result.json').write_text('{}')
    total = table.loc[resumed, 'epochs']
    assert total > 1
    costed = plan('ekr', 'smoke', ['headline'], [0])
    assert costed.loc[finished, 'state'] == 'done' and costed.loc[finished, 'hours left'] == 0
    assert costed.loc[finished, 'trained min'] == costed.loc[finished, 'epochs'] * 0.5
    assert costed.loc[resumed, 'state'] == f'epoch 1/{total}'
    assert costed.loc[resumed, 'hours left'] == pytest.approx(costed.loc[resumed, 'device-hours'] * (1 - 1 / total))
    untouched = costed.drop(index=[finished, resumed])
    assert (untouched['hours left'] == untouched['device-hours']).all()
    main(['ekr', '--profile', 'smoke', '--headline', '--seeds', '1', '--status'])
    out = capsys.readouterr().out
    assert '1 done, 1 partly trained' in out and 'step times' not in out
