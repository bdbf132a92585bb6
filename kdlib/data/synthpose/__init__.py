"""SynthPose: the kit's procedural pose dataset, written in the real datasets' file formats.

`generate(root, num_train=..., num_val=..., image_size=(H, W), seed=...)` renders it;
`ensure_synthpose(profile)` generates a profile's copy once (cached under data/synthpose/) and
returns its root, which the ordinary loaders (`kdlib.data.formats`) then read.
"""
from kdlib.data.synthpose.domains import DOMAINS, Domain
from kdlib.data.synthpose.generate import FORMATS, ensure_root, ensure_synthpose, generate
from kdlib.data.synthpose.render import NoiseBank, render_scene

__all__ = ['DOMAINS', 'Domain', 'FORMATS', 'NoiseBank', 'ensure_root', 'ensure_synthpose',
           'generate', 'render_scene']
