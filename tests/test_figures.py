"""kdlib.figures: the numbers the notebooks' figures and tables show (the notebooks themselves run
in each paper's papermill test)."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from kdlib.figures import common, elpn_mapd, unified
from kdlib.models import build_model, summary
from kdlib.paper_tables import Claim, Row, Table, gain


def test_markdown_safe_puts_at_names_in_backticks_once():
    text = 'Table 1: PCKh@0.5 and mAP(PCKh@0.5); `Mean@0.1` | PCK@0.1 |'
    safe = common.markdown_safe(text)
    assert safe == 'Table 1: `PCKh@0.5` and mAP(`PCKh@0.5`); `Mean@0.1` | `PCK@0.1` |'
    assert common.markdown_safe(safe) == safe                       # idempotent
    assert '@' not in safe.replace('`PCKh@0.5`', '').replace('`Mean@0.1`', '').replace('`PCK@0.1`', '')


def test_table_items_show_found_rows_effects_and_full_claims(monkeypatch):
    table = Table(title='Table 9: PCKh@0.5', columns=['Mean', 'Mean@0.1'], baseline='Base',
                  rows=[Row('Base', {'Mean': 80.0, 'Mean@0.1': 30.0}), Row('Ours', {'Mean': 81.0}),
                        Row('Other', {'Mean': 79.0}), Row('Quoted', {'Mean': 70.0}, kind='quoted')],
                  claims=[Claim('Ours beats Base (PCKh@0.5)', effect=gain('Ours', 'Base', 'Mean'))])
    per_seed = {'Base': {0: {'Mean': 40.0, 'Mean@0.1': 10.0}, 1: {'Mean': 50.0, 'Mean@0.1': 12.0}},
                'Ours': {0: {'Mean': 41.0, 'Mean@0.1': 11.0}, 1: {'Mean': 51.2, 'Mean@0.1': 13.0}}}
    monkeypatch.setattr(common, 'paper_module', lambda paper: SimpleNamespace(TABLES={'t9': table}))
    monkeypatch.setattr(common, '_kit_values', lambda *args: per_seed)
    [item] = common.table_items('sdp', 'smoke', seeds=[0, 1])
    assert item['title'] == 'Table 9: `PCKh@0.5` -- kit rows found: 2 of 3'
    assert '`Mean@0.1`' in item['markdown'] and 'Mean@0.1' not in item['markdown'].replace('`Mean@0.1`', '')
    # smoke is SynthPose: kit value, its paired effect and the paper's effect in separate columns
    assert '| Ours | 46.10 ± 7.21 | +1.10 ± 0.10 | +1.00 |' in item['markdown']
    [claim] = item['claims'].to_dict('records')
    assert claim['seeds'] == [0, 1]
    assert f"| Ours beats Base (`PCKh@0.5`) | **{claim['status']}** |" in item['claims_markdown']


def test_stage_costs_add_up_to_the_whole_forward():
    """Every stage's exchange units are counted (a stage's ModuleList is never called itself):
    the rows sum to ``kdlib.models.summary``'s parameters and true multiply-adds."""
    model = build_model('elpn_v1', 17, input_size=(64, 48), variant='smoke')
    costs = elpn_mapd.stage_costs(model, (64, 48))
    total = summary(model, (64, 48))
    assert costs['Params (M)'].sum() == pytest.approx(total['params_M'], rel=1e-6)
    assert costs['GMACs'].sum() == pytest.approx(total['gflops_true'], rel=1e-6)
    transitions = elpn_mapd._macs_by_module(model, torch.zeros(1, 3, 64, 48))['transitions.2']
    assert costs.loc['stage 4', 'GMACs'] > transitions / 1e9        # the EUs, not the transition alone


def test_block_costs_lightweight_block_is_cheaper():
    blocks = elpn_mapd.block_costs((16, 12))
    light, basic = blocks.loc['Lightweight Basic Block (ELPN, Fig. 4d)'], blocks.loc['BasicBlock (HRNet)']
    assert light['Params (k)'] < basic['Params (k)'] / 4 and light['MMACs'] < basic['MMACs'] / 4
    # BasicBlock(32, 32): two 3x3 convs, 2 * 9 * 32 * 32 weights (+ BN), on a 16x12 map
    assert basic['MMACs'] == pytest.approx(2 * 9 * 32 * 32 * 16 * 12 / 1e6, rel=0.01)


def test_hardness_counts_occluded_joints_and_torso_tilt():
    names = ['left_shoulder', 'right_shoulder', 'left_hip', 'right_hip', 'nose']
    upright = np.array([[0, 0, 2], [10, 0, 2], [0, 20, 2], [10, 20, 2], [5, -5, 1]], float)
    assert elpn_mapd.hardness(upright, names) == (1, 0.0)
    leaning = upright.copy()
    leaning[2:4, 0] += 20                                            # hips 20 px right of the shoulders
    assert elpn_mapd.hardness(leaning, names)[1] == pytest.approx(45.0)
    no_flag = upright.copy()
    no_flag[:, 2] = [2, 2, 2, 0, 2]                                  # no occlusion flag: unlabelled counts
    assert elpn_mapd.hardness(no_flag, names) == (1, 0.0)


def test_unified_joint_table_follows_eq_2_to_5():
    table = unified.joint_table()
    assert table['group'].value_counts().to_dict() == {'shared': 12, 'COCO only': 5, 'MPII only': 4}
    assert table.loc['thorax', 'Halpe idx'] == '-' and table.loc['head_top', 'COCO idx'] == '-'
    assert table.loc['left_wrist', 'flips to'] == 'right_wrist'
