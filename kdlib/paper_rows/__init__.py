"""Paper rows: a table row's notebook parameters -> the runs it needs -> the row's table columns.

One module per paper short name, for the papers whose row logic is not (yet) in
``kdlib/paper_tables/<paper>.py``: ``sdp`` (``row_config``, ``row_metrics``) and ``ekr``
(``simcc_sharpness``, the Fig. 4 columns measured from a finished run). Figures
(``kdlib/figures``) import these modules, never the reverse.
"""
