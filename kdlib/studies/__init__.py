"""Studies of the kit's own regime, each a command that trains through ``run_experiment``:

- ``calibration``: per paper pairing, is the teacher a teacher, does plain distillation register,
  how far is the student from the decoding ceiling (``python -m kdlib.studies.calibration``);
- ``difficulty``: a large and a small network against the decoding ceiling
  (``python -m kdlib.studies.difficulty``).
"""
