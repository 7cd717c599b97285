"""The steps of benchmarks/gpu_check.py and what they share, one module per job.

``settings`` (sizes, targets), ``report`` (the table and its JSON), ``data`` (the synthetic data the checks
make), ``runner`` (``Check``: the rows, the budget, one check at a time), then a module per step:
``environment`` (1), ``loops`` (2 precision, 4 throughput), ``resume`` (3), ``inference`` (5), ``compiled`` (6).
"""

import os

# Before any module of the package imports bengaliai (and with it albumentations, which would look for updates).
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
