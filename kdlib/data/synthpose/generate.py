"""SynthPose generation: render image sets in parallel, write the real datasets' layouts.

    root/coco/annotations/person_keypoints_{train,val}2017.json   root/coco/images/{train,val}2017/
    root/coco/person_detection_results/COCO_val2017_detections_AP_H_56_person.json
    root/mpii/annot/{train,valid}.json  root/mpii/annot/gt_valid.mat  root/mpii/images/
    root/crowdpose/json/crowdpose_{train,val,test}.json  root/crowdpose/images/
    root/halpe/annotations/halpe_{train,val}_v1.json  root/halpe/images/{train,val}/

COCO- and Halpe-style files annotate the same `coco`-domain images (Halpe with all 26 body
points; its images are hard links); MPII uses the `mpii` domain and CrowdPose the `crowd` one.
Every image is rendered from its own generator seeded by (seed, domain, split, index), so the
output does not depend on the number of workers.

Integrity. `ensure_root` generates into `.<root>.tmp-<pid>/` and renames it into place; such
folders (and `.<root>.old-<pid>/`) left by a killed process (its pid dead) are deleted by the next
call. The stamp (`synthpose.json`) records the generator's version and arguments, which are what a
run's hash takes from SynthPose (`kdlib.experiment.data_fingerprint`: the output is a deterministic
function of them, so the key is known without generating), and the size and SHA-1 of every
annotation file written; a root whose annotation files no longer match is regenerated with a
warning naming the file (a stamp from before the SHA-1s were recorded is trusted). Images are not
hashed (too many to hash on every run).
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
import warnings
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np

from kdlib.data.synthpose import writers
from kdlib.data.synthpose.domains import DOMAINS
from kdlib.data.synthpose.render import NoiseBank, render_scene
from kdlib.train.checkpoint import atomic_write_text, file_sha1, fsync_dir, pid_alive

VERSION = 3                       # bump when the generator's output changes
FORMATS = ('coco', 'mpii', 'crowdpose', 'halpe')
STAMP = 'synthpose.json'
CHUNK = 64
_DOMAIN_ID = {'coco': 1, 'mpii': 2, 'crowd': 3}
_SPLIT_ID = {'train': 1, 'val': 2, 'valid': 2, 'test': 3}
REPO_ROOT = Path(__file__).resolve().parents[3]


def _image_sets(formats, num_train, num_val, root: Path) -> list[tuple]:
    """(domain, split, count, image dir, file-name pattern, first image id) to render."""
    sets = []
    if 'coco' in formats or 'halpe' in formats:
        base = root / 'coco' / 'images' if 'coco' in formats else root / 'halpe' / 'images'
        for split, n, first in (('train', num_train, 1), ('val', num_val, 1_000_001)):
            folder = base / (f'{split}2017' if 'coco' in formats else split)
            sets.append(('coco', split, n, folder, '{:012d}.jpg', first))
    if 'mpii' in formats:
        sets += [('mpii', 'train', num_train, root / 'mpii' / 'images', '{:09d}.jpg', 1),
                 ('mpii', 'valid', num_val, root / 'mpii' / 'images', '{:09d}.jpg', 500_001)]
    if 'crowdpose' in formats:
        sets += [('crowd', split, n, root / 'crowdpose' / 'images', '{:d}.jpg', first)
                 for split, n, first in (('train', num_train, 100_000), ('val', num_val, 200_000),
                                         ('test', num_val, 300_000))]
    return sets


_NOISE: dict = {}


def _render_chunk(task) -> list[dict]:
    """Render images [start, stop) of one set, write the JPEGs, return their annotations."""
    domain, split, start, stop, folder, pattern, first, (h, w), seed, quality = task
    key = (h, w, seed)
    if key not in _NOISE:
        _NOISE[key] = NoiseBank(h, w, seed)
    out = []
    for i in range(start, stop):
        rng = np.random.default_rng([seed, _DOMAIN_ID[domain], _SPLIT_ID[split], i])
        img, people = render_scene(rng, DOMAINS[domain], h, w, _NOISE[key])
        image_id = first + i
        name = pattern.format(image_id)
        cv2.imwrite(str(Path(folder) / name), img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        out.append(dict(id=image_id, file_name=name, width=w, height=h, people=people))
    return out


def _init_worker() -> None:
    cv2.setNumThreads(0)          # one process per core already (as in DataLoader workers)


def _size(image_size) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    h, w = image_size
    return int(h), int(w)


def generate(root, *, num_train: int, num_val: int, image_size=(192, 256), seed: int = 0,
             formats=FORMATS, workers: int | None = None, jpeg_quality: int = 90,
             verbose: bool = False) -> dict:
    """Render SynthPose into `root` in the real layouts; returns counts and images/s.

    image_size: (H, W) or an int for square images. workers: processes (default: all cores).
    """
    root, (h, w) = Path(root), _size(image_size)
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f'unknown formats {sorted(unknown)}; choose from {FORMATS}')
    sets = _image_sets(formats, num_train, num_val, root)
    tasks = []
    for domain, split, n, folder, pattern, first in sets:
        folder.mkdir(parents=True, exist_ok=True)
        tasks += [(domain, split, s, min(n, s + CHUNK), str(folder), pattern, first, (h, w), seed,
                   jpeg_quality) for s in range(0, n, CHUNK)]
    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks) or 1))
    start = time.perf_counter()
    if workers == 1:
        chunks = [_render_chunk(t) for t in tasks]
    else:
        # fork (as torch DataLoader workers): 'spawn' would re-import torch via kdlib.data.
        ctx = get_context('fork' if hasattr(os, 'fork') else 'spawn')
        with ctx.Pool(workers, initializer=_init_worker) as pool:
            chunks = pool.map(_render_chunk, tasks, chunksize=1)
    rendered = {}
    for t, chunk in zip(tasks, chunks):
        rendered.setdefault((t[0], t[1]), []).extend(chunk)
    _write_formats(root, formats, rendered, seed)
    seconds = time.perf_counter() - start
    n_images = sum(len(v) for v in rendered.values())
    stats = dict(images=n_images, seconds=round(seconds, 2),
                 images_per_s=round(n_images / max(seconds, 1e-9), 1), workers=workers)
    if verbose:
        print(f'SynthPose: {n_images} images in {seconds:.1f} s = {stats["images_per_s"]} images/s '
              f'({workers} workers) -> {root}')
    return stats


def _write_formats(root: Path, formats, rendered: dict, seed: int) -> None:
    if 'coco' in formats:
        for split in ('train', 'val'):
            writers.write_coco(rendered['coco', split],
                               root / 'coco' / 'annotations' / f'person_keypoints_{split}2017.json')
        rng = np.random.default_rng([seed, 99])
        writers.write_detections(rendered['coco', 'val'], root / 'coco' / 'person_detection_results'
                                 / 'COCO_val2017_detections_AP_H_56_person.json', rng)
    if 'halpe' in formats:
        for split in ('train', 'val'):
            if 'coco' in formats:
                _link_images(root / 'coco' / 'images' / f'{split}2017', root / 'halpe' / 'images' / split)
            writers.write_halpe(rendered['coco', split],
                                root / 'halpe' / 'annotations' / f'halpe_{split}_v1.json')
    if 'mpii' in formats:
        for split in ('train', 'valid'):
            writers.write_mpii(rendered['mpii', split], root / 'mpii' / 'annot', split)
    if 'crowdpose' in formats:
        for split in ('train', 'val', 'test'):
            writers.write_crowdpose(rendered['crowd', split],
                                    root / 'crowdpose' / 'json' / f'crowdpose_{split}.json')


def _link_images(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for f in os.scandir(src):
        try:
            os.link(f.path, dst / f.name)
        except OSError:
            shutil.copyfile(f.path, dst / f.name)


def stamp_matches(root: Path, kwargs: dict) -> bool:
    """Whether `root` holds SynthPose of `kwargs` from this generator, its annotation files intact."""
    return _read_stamp(root, kwargs) is not None and changed_file(root) is None


def _read_stamp(root: Path, kwargs: dict) -> dict | None:
    """The stamp of `root` if it is this generator's version with `kwargs`."""
    try:
        stamp = json.loads((Path(root) / STAMP).read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(stamp, dict) and stamp.get('version') == VERSION
    return stamp if ok and stamp.get('kwargs') == _jsonable(kwargs) else None


def changed_file(root: Path) -> str | None:
    """The first annotation file of `root` that differs from the size and SHA-1 in its stamp."""
    try:
        files = json.loads((Path(root) / STAMP).read_text()).get('files', {})
    except (OSError, ValueError, AttributeError):
        return None
    for name, (size, sha1) in files.items():
        file = Path(root) / name
        if not file.is_file() or file.stat().st_size != size or file_sha1(file) != sha1:
            return f'{file} differs from what the generator wrote (size {size}, SHA-1 {sha1})'
    return None


def annotation_fingerprints(root: Path) -> dict:
    """{path relative to root: [size, SHA-1]} of the annotation files (JSON, .mat) under root."""
    files = sorted(f for f in Path(root).rglob('*') if f.suffix in ('.json', '.mat') and f.name != STAMP)
    return {f.relative_to(root).as_posix(): [f.stat().st_size, file_sha1(f)] for f in files}


def _jsonable(kwargs: dict) -> dict:
    return json.loads(json.dumps({k: v for k, v in kwargs.items() if k not in ('workers', 'verbose')}))


def ensure_synthpose(profile: str = 'classroom', *, workers: int | None = None,
                     verbose: bool = True) -> Path:
    """Generate the profile's SynthPose into PROFILES[profile]['data_root'] unless it is already
    there with the same generator arguments; return that root (absolute).

    Safe with concurrent callers (a file lock) and interruption (generated into a temporary
    folder, then renamed into place).
    """
    from kdlib.profiles import PROFILES
    if profile not in PROFILES:
        raise KeyError(f'unknown profile {profile!r}; choose from {sorted(PROFILES)}')
    kwargs = PROFILES[profile].get('synthpose')
    root = Path(PROFILES[profile]['data_root'])
    root = root if root.is_absolute() else REPO_ROOT / root
    if kwargs is None:
        return root                                            # real data: nothing to generate
    return ensure_root(root, kwargs, workers=workers, verbose=verbose)


def ensure_root(root: Path, kwargs: dict, workers: int | None = None, verbose: bool = True) -> Path:
    """`ensure_synthpose` for an explicit root and generator kwargs."""
    root = Path(root).resolve()
    remove_stale_dirs(root)
    if stamp_matches(root, kwargs):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f'.{root.name}.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _read_stamp(root, kwargs) is not None:
            changed = changed_file(root)
            if changed is None:                                # another process just made it
                return root
            warnings.warn(f'regenerating SynthPose in {root}: {changed}', stacklevel=2)
        _generate_into_place(root, kwargs, workers, verbose)
    return root


def _generate_into_place(root: Path, kwargs: dict, workers, verbose: bool) -> None:
    """Generate into `.<root>.tmp-<pid>/`, stamp it, rename it over `root` (hold the lock)."""
    tmp = root.parent / f'.{root.name}.tmp-{os.getpid()}'
    shutil.rmtree(tmp, ignore_errors=True)
    stats = generate(tmp, **kwargs, workers=workers, verbose=verbose)
    stamp = dict(version=VERSION, kwargs=_jsonable(kwargs), stats=stats,
                 files=annotation_fingerprints(tmp))
    atomic_write_text(tmp / STAMP, json.dumps(stamp, indent=1))
    old = root.parent / f'.{root.name}.old-{os.getpid()}'
    if root.exists():
        os.rename(root, old)
    os.rename(tmp, root)
    fsync_dir(root.parent)
    shutil.rmtree(old, ignore_errors=True)


def remove_stale_dirs(root: Path) -> list[Path]:
    """Delete `.<root>.tmp-<pid>/` and `.<root>.old-<pid>/` folders whose process is dead (left
    by an interrupted generation); return them."""
    pattern = re.compile(rf'\.{re.escape(root.name)}\.(tmp|old)-(\d+)')
    removed = []
    try:
        entries = list(os.scandir(root.parent))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match and entry.is_dir(follow_symlinks=False) and not pid_alive(int(match[2])):
            shutil.rmtree(entry.path, ignore_errors=True)
            warnings.warn(f'removed {entry.path}, left by an interrupted SynthPose generation',
                          stacklevel=2)
            removed.append(Path(entry.path))
    return removed
