"""kdlib: knowledge distillation for 2D human pose estimation, five papers reproduced in notebooks.

The data flow, from the embedded dataset to the report (each line names its module):

1. ``data.synthpose``     writes SynthPose in the real formats (or real data sits in ``data/``);
2. ``data.formats``       parses COCO / MPII / CrowdPose / Halpe files into person records;
3. ``data.topdown``       turns records into crops and heatmap / SimCC targets (``data.targets``);
4. ``models``             builds students and teachers; ``teachers.teacher_run`` picks a paper's teacher;
5. ``methods``            each paper's loss (``losses`` holds the shared terms; ``balance`` weighs them);
6. ``train.trainer``      fits a student (AMP, DDP, EMA, atomic resumable checkpoints);
7. ``decode`` + ``evaluation``  decode each head as its reference code does, score with pycocotools / PCKh;
8. ``experiment``         one cached, hashed run per ``ExperimentConfig`` (``profiles`` sets the scale);
9. ``paper_tables``       each paper's tables and claims, and its runs: ``row_runs`` / ``row_metrics``;
                          ``figures`` draws what its notebook shows and its tables (``table_items``);
10. ``reproduce``         runs the notebooks' cells with papermill and writes ``results/<profile>/REPORT.md``.

Around them: ``benchmarks`` (data / train / GPU ratios) and ``studies`` (calibration, difficulty).
"""
