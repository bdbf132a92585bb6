"""Model zoo: output contract of every network, sizes against the papers, variants, pretrained.

SIZE_TABLE holds every params/GFLOPs figure the papers give for the zoo's networks, with the
measured value where a paper's figure cannot be reproduced by a faithful build (`measured=`): the
test then checks that the build still gives what the note says. Full-size models are built once
(cached) on CPU; the whole file runs in well under 2 minutes on one core.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

from kdlib.models import MODELS, build_model, summary
from kdlib.models.pretrained import _translate


@dataclass(frozen=True)
class Size:
    id: str
    name: str
    input_size: tuple[int, int]
    params: float | None = None            # M, quoted
    gflops: float | None = None            # quoted, in `convention`
    convention: str = 'paper'               # 'paper' (HRNet counter, /1024^3) or 'true' (/1e9)
    source: str = ''
    num_joints: int = 17
    kw: dict = field(default_factory=dict)
    measured: dict = field(default_factory=dict)  # where the quote is not reproducible: what we get
    note: str = ''


_T5 = ("ELPN Table 5 params are internally inconsistent: its own rows give +1.7M per stage-3 EU and "
       "+7.0M per stage-4 EU ((1,2,1)->(1,2,2)), so (1,1,3) would be 24.1M and (1,4,3) 29.2M, not 23.4 / "
       "28.5. The build matches the rows anchored on official HRNet-W32 ((1,4,3) 28.54M, (1,1,3) 23.42M) "
       "and gives 0.7-0.8M less on the others; all FLOPs agree within 2%.")
SIZE_TABLE = [
    Size('sbl_r50', 'sbl_r50', (256, 192), 34.0, 8.9, source='ELPN Table 1 / SDP'),
    Size('hrnet_w32', 'hrnet_w32', (256, 192), 28.5, 7.1, source='ELPN Table 1, TwoStage-GCN Table I'),
    Size('hrnet_w48', 'hrnet_w48', (256, 192), 63.6, 14.6, source='ELPN Table 1, TwoStage-GCN Table I'),
    Size('hrnet_w32_simcc', 'hrnet_w32', (256, 192), 31.0, source="TwoStage-GCN Table I ('Ours', W32 SimCC)",
         kw={'head': 'simcc'}, note="Table I's 'SimCC HRNet-W32 28.5' row copies the heatmap model's size"),
    Size('hrnet_w48_simcc', 'hrnet_w48', (256, 192), 66.3, source='TwoStage-GCN Table I (SimCC W48)',
         kw={'head': 'simcc'}),
    Size('hourglass4', 'hourglass4', (256, 256), None, 14.3, source='SDP Table 3 (from OKDHP)',
         num_joints=16, measured={'params_M': 13.02, 'gflops_true': 15.36},
         note="bearpaw/pytorch-pose HG-4 (FPD's and SDP's code), counted to the parameter"),
    Size('hourglass8', 'hourglass8', (256, 256), 25.6, 26.2, source='ELPN Table 1', num_joints=16,
         note="ELPN Table 1 labels the input 256x192, but 26.2G is the 256x256 (MPII) figure: at "
              "256x192 the same network reads 19.63G"),
    Size('litehrnet_18', 'litehrnet_18', (256, 192), 1.1, source='EKR Tables 2-3'),
    Size('litehrnet_30', 'litehrnet_30', (256, 192), 1.8, source='EKR Tables 2-3'),
    Size('litehrnet_18_simdr', 'litehrnet_18', (256, 256), 1.1, source='EKR Table 2 (LiteHRNet18*, SimDR)',
         num_joints=16, kw={'head': 'simcc'}, measured={'params_M': 5.33},
         note="a SimDR/SimCC head (flatten 64x64 -> 512 x/y bins) adds 4.2M; EKR lists the heatmap size"),
    Size('rtmpose_t', 'rtmpose_t', (256, 192), 3.34, 0.36, 'true', 'RTMPose (unified paper [13])', kw={'head': 'simcc'}),
    Size('rtmpose_s', 'rtmpose_s', (256, 192), 5.47, 0.68, 'true', 'RTMPose (unified paper [13])', kw={'head': 'simcc'}),
    Size('rtmpose_m', 'rtmpose_m', (256, 192), 13.59, 1.93, 'true', 'RTMPose (unified paper [13])', kw={'head': 'simcc'}),
    Size('elpn_v1', 'elpn_v1', (256, 192), 1.1, 1.2, source='ELPN Table 1'),
    Size('elpn_v2', 'elpn_v2', (256, 192), 4.7, 2.0, source='ELPN Table 1'),
    Size('elpn_v1_mpii', 'elpn_v1', (256, 256), 1.1, 1.6, source='ELPN Table 6', num_joints=16),
    *[Size(f'hrnet_width{w}', 'hrnet', (256, 256), p, g, source='ELPN Table 4', num_joints=16, kw={'width': w})
      for w, p, g in [(8, 2.1, 1.8), (16, 7.4, 3.4), (32, 28.5, 9.5), (64, 112.6, 33.4)]],
    *[Size(f'hrnet_eus{"".join(map(str, e))}', 'hrnet', (256, 256), p, g, source='ELPN Table 5', num_joints=16,
           kw={'eus': e}, measured={'params_M': m} if m else {}, note=_T5 if m else '')
      for e, p, g, m in [((1, 1, 1), 10.1, 4.4, 9.30), ((1, 2, 1), 11.8, 5.3, 11.01), ((1, 3, 1), 13.5, 6.2, 12.71),
                         ((1, 2, 2), 18.8, 6.5, 18.07), ((1, 1, 3), 23.4, 6.8, None), ((1, 4, 3), 28.5, 9.5, None)]],
]
TOL = 0.03


@functools.lru_cache(maxsize=None)
def _measure(name: str, input_size: tuple, num_joints: int, kw: tuple) -> dict:
    model = build_model(name, num_joints, input_size=input_size, **dict(kw))
    return summary(model, input_size)


def _freeze(kw: dict) -> tuple:
    return tuple(sorted(kw.items()))


@pytest.mark.parametrize('row', SIZE_TABLE, ids=lambda r: r.id)
def test_size_table(row: Size):
    got = _measure(row.name, row.input_size, row.num_joints, _freeze(row.kw))
    checks = [('params_M', row.params), (f'gflops_{row.convention}', row.gflops)]
    for key, quoted in checks:
        if quoted is None:
            continue
        if key in row.measured:  # documented irreproducible figure: the note's value, and it differs
            assert got[key] == pytest.approx(row.measured[key], rel=0.01), (row.id, key, got, row.note)
            assert abs(got[key] / quoted - 1) > TOL, f"{row.id}: {key} now matches the paper; update the note"
        else:
            assert got[key] == pytest.approx(quoted, rel=TOL), (row.id, key, got[key], quoted, row.source)
    for key, value in row.measured.items():  # measured values of the other convention, recorded in notes
        assert got[key] == pytest.approx(value, rel=0.01), (row.id, key, got[key])


# ----------------------------------------------------------------------------- output contract
SMOKE_SIZE = (64, 48)
ZOO = [(name, head) for name in MODELS for head in (('simcc',) if name.startswith('rtmpose') else ('heatmap', 'simcc', 'both'))]


@pytest.mark.parametrize('name,head', ZOO, ids=[f'{n}-{h}' for n, h in ZOO])
def test_zoo_forward_backward(name, head):
    torch.manual_seed(0)
    k, (h, w) = 5, SMOKE_SIZE
    model = build_model(name, k, head=head, input_size=SMOKE_SIZE, variant='smoke')
    out = model(torch.randn(2, 3, h, w))
    if head in ('heatmap', 'both'):
        assert out['heatmaps'].shape == (2, k, h // 4, w // 4)
    if head in ('simcc', 'both'):
        assert out['simcc_x'].shape == (2, k, w * 2) and out['simcc_y'].shape == (2, k, h * 2)
    assert out['feature'].ndim == 4 and out['feature'].shape[0] == 2
    stages, multiscale = out['stages'], out['multiscale']
    assert len(stages) >= 2 and all(s.ndim == 4 and s.shape[0] == 2 for s in stages)
    assert len(multiscale) >= 3, 'IGP-GCN samples three resolutions'
    areas = [m.shape[-1] * m.shape[-2] for m in multiscale]
    assert areas == sorted(areas, reverse=True) and areas[0] > areas[-1], 'multiscale must go high -> low'
    assert stages[0].shape[-2:] == (h // 4, w // 4) and multiscale[0].shape[-2:] == (h // 4, w // 4)
    loss = sum(v.pow(2).mean() for key, v in out.items() if key in ('heatmaps', 'simcc_x', 'simcc_y'))
    loss = loss + sum(s.mean() for s in stages) + sum(m.mean() for m in multiscale)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads), 'a parameter got no/NaN gradient'
    assert all(torch.isfinite(v).all() for v in out.values() if torch.is_tensor(v))


@pytest.mark.parametrize('size', [(128, 96), (128, 128)])
def test_classroom_shapes(size):
    model = build_model('hrnet_w32', 16, head='both', input_size=size, variant='classroom')
    out = model(torch.randn(1, 3, *size))
    assert out['heatmaps'].shape == (1, 16, size[0] // 4, size[1] // 4)
    assert [m.shape[1] for m in out['multiscale']] == [8, 16, 32, 64]


PAIRS = [('hrnet_w48', 'hrnet_w32'), ('hrnet_w32', 'litehrnet_18'), ('hrnet_w32', 'litehrnet_30'),
         ('hrnet_w32', 'elpn_v1'), ('hrnet_w32', 'elpn_v2'), ('hourglass8', 'hourglass4'),
         ('rtmpose_m', 'rtmpose_s'), ('rtmpose_s', 'rtmpose_t')]


@pytest.mark.parametrize('variant,size', [('classroom', (128, 96)), ('smoke', SMOKE_SIZE)])
def test_teacher_bigger_than_student(variant, size):
    """Params in both small variants; multiply-adds too in classroom (the runs the notebooks make)."""
    for teacher, student in PAIRS:
        kw = _freeze({'head': 'simcc' if teacher.startswith('rtm') else 'heatmap', 'variant': variant})
        if variant == 'classroom':
            t, s = _measure(teacher, size, 17, kw), _measure(student, size, 17, kw)
            assert t['gflops_true'] > s['gflops_true'], (teacher, student, t, s)
        else:
            with torch.device('meta'):
                t, s = ({'params_M': sum(p.numel() for p in build_model(n, 17, input_size=size, **dict(kw)).parameters()) / 1e6}
                        for n in (teacher, student))
        assert t['params_M'] > 1.5 * s['params_M'], (variant, teacher, student, t, s)


# ----------------------------------------------------------------------------- summary conventions
def test_summary_conventions_golden():
    class Toy(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)           # 4*3*9 * 8*8 = 6912
            self.up = nn.ConvTranspose2d(4, 2, 4, 2, 1, bias=False)         # weight 128: paper x 16*16, true x 8*8
            self.fc = nn.Linear(16 * 16, 10)                                # 2 tokens x 2560

        def forward(self, x):
            return self.fc(self.up(self.conv(x)).flatten(2))

    s = summary(Toy(), (8, 8))
    assert s['gflops_paper'] * 1024 ** 3 == pytest.approx(6912 + 128 * 256 + 2 * 2560)
    assert s['gflops_true'] * 1e9 == pytest.approx(6912 + 128 * 64 + 2 * 2560)
    assert s['params_M'] * 1e6 == pytest.approx(108 + 128 + 2570)


# ----------------------------------------------------------------------------- pretrained
def test_pretrained_missing_file_message(tmp_path, monkeypatch):
    import kdlib.models.pretrained as pretrained
    monkeypatch.setattr(pretrained, 'WEIGHTS_DIR', tmp_path)
    with pytest.raises(FileNotFoundError, match='resnet50-0676ba61.pth'):
        build_model('sbl_r50', 17, pretrained='imagenet')
    with pytest.raises(FileNotFoundError, match='not found'):
        build_model('elpn_v1', 17, variant='smoke', input_size=SMOKE_SIZE, pretrained=str(tmp_path / 'x.pth'))


def test_pretrained_torchvision_resnet_and_own_checkpoint(tmp_path):
    import torchvision
    torch.manual_seed(0)
    resnet = torchvision.models.resnet50()
    torch.save(resnet.state_dict(), tmp_path / 'resnet50.pth')
    with pytest.warns(UserWarning, match=r'unused in the file: 2 \(fc.weight, fc.bias\).*left unfilled in the model: 17'):
        model = build_model('sbl_r50', 17, pretrained=str(tmp_path / 'resnet50.pth'))   # ImageNet trunk, new head
    assert torch.equal(model.trunk.layer3[2].conv2.weight, resnet.layer3[2].conv2.weight)
    small = build_model('elpn_v1', 5, variant='smoke', input_size=SMOKE_SIZE)
    torch.save({'state_dict': small.state_dict()}, tmp_path / 'own.pth')
    again = build_model('elpn_v1', 5, variant='smoke', input_size=SMOKE_SIZE, pretrained=str(tmp_path / 'own.pth'))
    assert all(torch.equal(a, b) for a, b in zip(small.state_dict().values(), again.state_dict().values()))
    with pytest.raises(ValueError, match='matches no parameter'):
        build_model('rtmpose_t', 5, 'simcc', SMOKE_SIZE, 'smoke', pretrained=str(tmp_path / 'resnet50.pth'))


# official pose_hrnet_w32 checkpoint names and shapes (deep-high-resolution-net.pytorch)
OFFICIAL_HRNET_KEYS = {
    'conv1.weight': (64, 3, 3, 3), 'bn2.running_mean': (64,), 'layer1.0.conv3.weight': (256, 64, 1, 1),
    'layer1.0.downsample.0.weight': (256, 64, 1, 1), 'layer1.3.bn2.weight': (64,),
    'transition1.0.0.weight': (32, 256, 3, 3), 'transition1.1.0.0.weight': (64, 256, 3, 3),
    'transition2.2.0.1.running_var': (128,), 'transition3.3.0.0.weight': (256, 128, 3, 3),
    'stage2.0.branches.0.0.conv1.weight': (32, 32, 3, 3), 'stage2.0.branches.1.3.bn2.bias': (64,),
    'stage2.0.fuse_layers.0.1.0.weight': (32, 64, 1, 1), 'stage2.0.fuse_layers.0.1.1.weight': (32,),
    'stage2.0.fuse_layers.1.0.0.0.weight': (64, 32, 3, 3),
    'stage3.3.fuse_layers.2.0.0.0.weight': (32, 32, 3, 3), 'stage3.3.fuse_layers.2.0.1.0.weight': (128, 32, 3, 3),
    'stage4.2.fuse_layers.0.3.0.weight': (32, 256, 1, 1), 'stage4.2.branches.3.3.conv2.weight': (256, 256, 3, 3),
    'final_layer.weight': (17, 32, 1, 1), 'mlp_head_x.weight': (384, 3072),
}


def test_official_hrnet_names_map():
    model = build_model('hrnet_w32', 17, head='both')
    own = model.state_dict()
    for key, shape in OFFICIAL_HRNET_KEYS.items():
        new = _translate(key, set(own))
        assert new in own and tuple(own[new].shape) == shape, (key, new)


def test_lite_fuse_is_the_official_in_place_fusion():
    """mmpose `LiteHRModule.forward` (= HRNet-Group/Lite-HRNet): `y = out[0] if i == 0 else
    fuse[i][0](out[0])`, then `y += ...` for every j *including 0*, in place, so branch 0 counts
    twice and outputs i > 0 read the fused branch 0. Written here as that loop, on copies."""
    import torch.nn.functional as F

    from kdlib.models.litehrnet import LiteFuse
    torch.manual_seed(0)
    fuse = LiteFuse([4, 8, 16]).eval()
    xs = [torch.randn(2, c, 16 // 2 ** i, 12 // 2 ** i) for i, c in enumerate([4, 8, 16])]
    out = [x.clone() for x in xs]
    expected = []

    def fuse_layer(i, j, x):          # mmpose's fuse_layers[i][j]: upsampling paths end in nn.Upsample
        y = fuse.paths[i][j](x)
        return F.interpolate(y, size=xs[i].shape[-2:], mode='nearest') if j > i else y
    with torch.no_grad():
        for i in range(3):
            y = out[0] if i == 0 else fuse_layer(i, 0, out[0])
            for j in range(3):
                y += out[j] if i == j else fuse_layer(i, j, out[j])
            expected.append(F.relu(y))
        got = fuse(xs)
        plain = LiteFuse([4, 8, 16], reference=False).eval()
        plain.load_state_dict(fuse.state_dict())
        differs = plain(xs)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e)
    assert not torch.allclose(differs[1], expected[1])      # the plain sum is another network
