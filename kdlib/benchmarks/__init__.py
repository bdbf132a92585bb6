"""Benchmarks: ratios measured side by side in one run (never absolute timings in tests).

    python -m kdlib.benchmarks data [--synth-size 480 640]      # the sample path vs a per-joint reference
    python -m kdlib.benchmarks train [--variant smoke|classroom] # each method's step vs plain training
    python -m kdlib.benchmarks gpu                              # fp32 / AMP / channels_last / compile

- ``data`` (`data.py`): decode, warp, tensor, targets, collate and the whole sample, one core,
  kit against HRNet's JointsDataset structure; DataLoader rows with N workers.
- ``train`` (`train.py`): the interleaved harness (``compare``: warm-up excluded, A B A B, median
  ratio and spread); per method the step-time ratio, the peak-memory ratio and the teacher's share.
  The ``supervised`` row (plain against plain) is the noise floor.
- ``gpu`` (`gpu.py`): where a GPU exists, images/s per precision / layout / compile and peak memory
  at the papers' batch sizes; without one it says so and exits 0.
"""
from __future__ import annotations

import argparse

# One entry per subcommand: name -> function adding its argparse sub-parser (sets ``func``).
SUBCOMMANDS = {'data': 'kdlib.benchmarks.data', 'train': 'kdlib.benchmarks.train',
               'gpu': 'kdlib.benchmarks.gpu'}


def main(argv=None) -> int:
    """Run one subcommand; its return value (0 unless it failed) is the exit status."""
    import importlib
    parser = argparse.ArgumentParser(prog='python -m kdlib.benchmarks', description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    for module in SUBCOMMANDS.values():
        importlib.import_module(module).add_parser(sub)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)
