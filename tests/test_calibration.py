"""`python -m kdlib.studies.calibration`: per pairing the teacher/student gap and the canary, judged
on paired seeds (smoke size: the numbers are meaningless, the plumbing is not)."""
import json

from kdlib.experiment import config_hash
from kdlib.studies.calibration import PAIRINGS, calibration_table, main

VERDICTS = {'reproduced', 'contradicted', 'inconclusive'}


def test_pairings_are_the_papers_own_runs():
    for paper, pairing in PAIRINGS.items():
        runs = pairing.runs('smoke', seed=1)
        student, canary, teacher = runs['student'], runs['canary'], runs['teacher']
        assert student.seed == canary.seed == 1 and not student.teachers, paper
        assert student.model == canary.model and student.dataset == canary.dataset, paper
        assert config_hash(teacher) in {config_hash(t) for t in canary.teachers.values()}, paper
        assert config_hash(teacher) == config_hash(pairing.runs('smoke', seed=0)['teacher']), paper


def test_calibration_table_is_judged_on_paired_seeds(isolated_runs, capsys):
    main(['--profile', 'smoke', '--papers', 'ekr', '--seeds', '2'])
    out = capsys.readouterr().out
    assert 'SimDR HRNet-W32 -> SimDR Lite-HRNet-18' in out
    record = json.loads((isolated_runs / 'results' / 'smoke' / 'calibration_ekr.json').read_text())
    ekr = record['pairings']['ekr']
    table = calibration_table(record)                   # recomputed from the record alone
    assert table.loc['ekr', 'gap verdict'] in VERDICTS and table.loc['ekr', 'canary verdict'] in VERDICTS
    assert 'provenance' in record and (isolated_runs / 'results' / 'smoke' / 'calibration_ekr.md').is_file()
    assert sorted(ekr['values']['student']) == ['0', '1']            # both seeds, paired
    teacher = ekr['values']['teacher']
    assert teacher['0'] == teacher['1']                               # one teacher serves both seeds
    assert set(ekr['history']) == {'teacher', 'student', 'canary'}


def test_committed_calibration_results_are_what_their_records_give():
    """docs/results/<profile>/calibration*.md: the tables are recomputed from the committed records
    (per-run values, ceilings and times) and must match to the printed digit (no hand edits)."""
    from pathlib import Path

    from kdlib.studies.calibration import calibration_table, markdown
    committed = sorted((Path(__file__).resolve().parents[1] / 'docs' / 'results').glob('*/calibration*.json'))
    for path in committed:
        record = json.loads(path.read_text())
        page = markdown(calibration_table(record), record.get('provenance'))
        assert page == path.with_suffix('.md').read_text(), path


def test_published_record_merges_every_committed_study(tmp_path):
    """Notebook 00 shows the committed classroom measurements (no training) through one merged record."""
    from pathlib import Path

    from kdlib.studies.calibration import published_record
    studies = sorted((Path(__file__).resolve().parents[1] / 'docs' / 'results' / 'classroom')
                     .glob('calibration*.json'))
    merged = published_record('classroom')
    pairings = set().union(*(json.loads(p.read_text())['pairings'] for p in studies))
    assert len(studies) >= 2 and set(merged['pairings']) == pairings
    assert merged['sources'] == [p.name for p in studies]
    table = calibration_table(merged)
    seeds = sorted({json.loads(p.read_text())['seeds'] for p in studies})      # e.g. '3/4 seeds'
    assert list(table.index) == list(merged['pairings'])
    assert table.index.name == f"classroom, {'/'.join(map(str, seeds))} seeds"
    assert published_record('classroom', root=tmp_path) is None
