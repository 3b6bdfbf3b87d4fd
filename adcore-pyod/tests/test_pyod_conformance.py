"""Every detector adcore-pyod registers passes adcore's conformance kit (slow ones are marked slow)."""

from __future__ import annotations

import os

from adcore.testing import parametrize_with_checks, registered_detectors

# The kit's data is 200 x 4: extra threads only contend (PyOD's torch models train ~15x
# slower with 2 threads than with 1 on a busy machine). Set before torch is first imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@parametrize_with_checks(registered_detectors("pyod"))
def test_pyod_detector_conforms(subject, check):
    check(subject)
