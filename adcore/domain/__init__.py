"""The domain: detectors, parameters, thresholds, results, schemas, events, drift statistics.

No I/O and no frameworks: nothing here imports Typer, FastAPI, pluggy or a detector library
at module level (tests/test_layers.py checks it). Each module is imported on its own.
"""
