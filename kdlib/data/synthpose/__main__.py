"""python -m kdlib.data.synthpose --profile classroom   (or --root DIR --num-train N ...)."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from kdlib.data.synthpose.generate import FORMATS, STAMP, ensure_root, ensure_synthpose, generate


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog='python -m kdlib.data.synthpose', description=__doc__)
    ap.add_argument('--profile', help='generate PROFILES[profile] into its data_root (cached)')
    ap.add_argument('--root', type=Path, help='output folder (with --num-train etc.)')
    ap.add_argument('--num-train', type=int, default=100)
    ap.add_argument('--num-val', type=int, default=20)
    ap.add_argument('--image-size', type=int, nargs=2, default=(192, 256), metavar=('H', 'W'))
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--formats', nargs='+', default=list(FORMATS), choices=FORMATS)
    ap.add_argument('--workers', type=int, default=None, help='processes (default: all cores)')
    ap.add_argument('--force', action='store_true', help='regenerate even if cached (--root)')
    args = ap.parse_args(argv)
    if args.profile and args.root:
        ap.error('give --profile or --root, not both')
    start = time.perf_counter()
    if args.profile:
        root = ensure_synthpose(args.profile, workers=args.workers)
    elif args.root:
        kwargs = dict(num_train=args.num_train, num_val=args.num_val,
                      image_size=tuple(args.image_size), seed=args.seed, formats=tuple(args.formats))
        if args.force:
            generate(args.root, **kwargs, workers=args.workers, verbose=True)
            root = args.root
        else:
            root = ensure_root(args.root, kwargs, workers=args.workers)
    else:
        ap.error('give --profile NAME or --root DIR')
    stamp = Path(root) / STAMP
    stats = json.loads(stamp.read_text()).get('stats', {}) if stamp.exists() else {}
    print(f'SynthPose ready at {root} ({time.perf_counter() - start:.1f} s this call; '
          f'generation: {stats.get("images", "?")} images, {stats.get("images_per_s", "?")} images/s)')


if __name__ == '__main__':
    main()
