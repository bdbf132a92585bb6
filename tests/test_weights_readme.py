"""weights/README.md lists every file the `paper` profile can ask for (kdlib.teachers.RELEASED and
the ImageNet initialisations), so that a user knows what to put where."""
from pathlib import Path

from kdlib.models.pretrained import PRETRAINED
from kdlib.teachers import RELEASED

README = Path(__file__).resolve().parents[1] / 'weights' / 'README.md'


def test_every_released_file_is_listed():
    text = README.read_text()
    for (model, head, dataset), (file, source, _) in RELEASED.items():
        assert f'`{file}`' in text, (model, head, dataset)
    for model, files in PRETRAINED['imagenet'].items():
        assert any(f'`{f}`' in text for f in files), model
