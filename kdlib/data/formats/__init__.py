"""Loaders of the real datasets' annotation files -> person records (see docs/CONTRACTS.md)."""
from kdlib.data.formats.coco import load_coco
from kdlib.data.formats.crowdpose import load_crowdpose
from kdlib.data.formats.errors import (DatasetError, DatasetFormatError, DatasetNotFoundError,
                                       DatasetWarning)
from kdlib.data.formats.halpe import load_halpe
from kdlib.data.formats.mpii import load_mpii

LOADERS = {'coco': load_coco, 'mpii': load_mpii, 'crowdpose': load_crowdpose, 'halpe': load_halpe}

__all__ = ['LOADERS', 'load_coco', 'load_mpii', 'load_crowdpose', 'load_halpe',
           'DatasetError', 'DatasetFormatError', 'DatasetNotFoundError', 'DatasetWarning']
