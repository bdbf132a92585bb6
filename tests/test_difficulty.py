"""`python -m kdlib.studies.difficulty`: the large/small table and its decoding ceiling (smoke size)."""
from kdlib.studies.difficulty import COLUMNS, PAIR, difficulty_table, main


def test_table_has_both_networks_and_the_ceiling(isolated_runs, capsys):
    main(['--profile', 'smoke'])
    out = capsys.readouterr().out
    assert 'large - small' in out and 'decoding ceiling' in out
    written = (isolated_runs / 'results' / 'smoke' / 'difficulty_seed0.csv').read_text()
    assert all(model in written for model in PAIR.values())
    table = difficulty_table('smoke', show_progress=False)      # cached runs: same numbers again
    ceiling = table.loc['decoding ceiling (GT targets)']
    assert 0 < ceiling['AP'] < 100 and ceiling['AP50'] > ceiling['AP']   # argmax at 1/4 resolution
    assert list(table.columns[:len(COLUMNS)]) == list(COLUMNS)
    assert table['params_M'].iloc[0] > table['params_M'].iloc[-2]       # large is larger than small
