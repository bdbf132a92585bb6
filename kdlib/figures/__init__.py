"""Figures and tables the paper notebooks show, one module per paper short name.

- ``common``: drawing shared by every notebook (poses, heatmaps, SimCC labels), the runs of a
  training cell under one bar (``run_all``), a paper's table rows trained under one bar
  (``train_tables``), a paper's tables with their claims ledger (``table_items``, ``show_tables``) and
  ``markdown_safe`` (``PCKh@0.5`` not rendered as a mailto: link).
- ``sdp`` (notebook 01), ``two_stage_gcn`` (02), ``ekr`` (03), ``unified`` (04), ``elpn_mapd`` (05).

Figures read runs and datasets through ``kdlib.experiment`` and the paper's tables through
``kdlib.paper_tables``; nothing below imports ``kdlib.figures``.
Import the module you need (``from kdlib.figures import sdp as figs``): this package imports none
of them itself, so a notebook pays only for its own.
"""
