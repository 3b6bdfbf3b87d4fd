"""Run adcore's conformance kit on every detector this plugin registers (install it first)."""

from __future__ import annotations

import pytest

from adcore.testing import parametrize_with_checks, registered_detectors

PLUGIN = "myplugin"  # the entry point's name in pyproject.toml
DETECTORS = registered_detectors(PLUGIN)
if not DETECTORS:
    pytest.skip(f"plugin {PLUGIN!r} is not installed: pip install -e .", allow_module_level=True)


@parametrize_with_checks(DETECTORS)
def test_conformance(subject, check):
    check(subject)
