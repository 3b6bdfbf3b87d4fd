"""Each online detector against its reference implementation on the same streams.

pysad's LODA, RSHash and xStream and River's HalfSpaceTrees score the same records
prequentially (score, then learn, one record at a time); ours scores them in micro-batches
with ``score_partial``. Ours must detect at least about as well: ROC-AUC no more than 0.05
below the reference's on each stream. pysad runs a few hundred to a few thousand records/s,
so the streams are short.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from adcore.builtin.online.hstree import OnlineHST
from adcore.builtin.online.loda import OnlineLODA
from adcore.builtin.online.rshash import OnlineRSHash
from adcore.builtin.online.xstream import OnlineXStream
from adcore.domain.metrics import roc_auc

_SPEC = importlib.util.spec_from_file_location(
    "stream_data", Path(__file__).resolve().parents[1] / "benchmarks" / "stream_data.py"
)
stream_data = importlib.util.module_from_spec(_SPEC)
sys.modules.setdefault("stream_data", stream_data)
_SPEC.loader.exec_module(stream_data)

TOLERANCE = 0.05
STREAMS = {
    "point-mean_shift": dict(anomaly="point", drift="mean_shift", n=1500, d=8, seed=21),
    "dependency-rotation": dict(anomaly="dependency", drift="rotation", n=1500, d=6, seed=22),
}


@pytest.fixture(scope="module", params=sorted(STREAMS))
def stream(request):
    spec = dict(STREAMS[request.param])
    return stream_data.make_stream(spec.pop("anomaly"), spec.pop("drift"), **spec)


def ours(cls: type, X: np.ndarray) -> np.ndarray:
    detector = cls(random_state=0)
    return np.concatenate([detector.score_partial(X[i : i + 250]) for i in range(0, len(X), 250)])


def pysad_scores(model, X: np.ndarray) -> np.ndarray:
    return np.array([float(np.ravel(model.fit_score_partial(x))[0]) for x in X])


def assert_comparable(name: str, y: np.ndarray, mine: np.ndarray, reference: np.ndarray) -> None:
    mine_auc, ref_auc = roc_auc(y, mine), roc_auc(y, reference)
    assert np.all(np.isfinite(mine))
    assert mine_auc >= ref_auc - TOLERANCE, f"{name}: ours {mine_auc:.3f}, reference {ref_auc:.3f}"


def test_loda_matches_pysad(stream):
    pysad = pytest.importorskip("pysad.models")
    reference = pysad_scores(pysad.LODA(random_state=0), stream.X)
    assert_comparable("loda", stream.y, ours(OnlineLODA, stream.X), reference)


def test_rshash_matches_pysad(stream):
    pysad = pytest.importorskip("pysad.models")
    # pysad needs the ranges up front: it gets the stream's true ones, ours learns them
    model = pysad.RSHash(stream.X.min(axis=0), stream.X.max(axis=0), random_state=0)
    assert_comparable("rshash", stream.y, ours(OnlineRSHash, stream.X), pysad_scores(model, stream.X))


def test_xstream_matches_pysad(stream):
    pysad = pytest.importorskip("pysad.models")
    reference = pysad_scores(pysad.xStream(random_state=0), stream.X)
    assert_comparable("xstream", stream.y, ours(OnlineXStream, stream.X), reference)


def test_hst_matches_river(stream):
    pytest.importorskip("river")
    from river import anomaly, preprocessing

    model = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=0)
    reference = np.empty(len(stream.y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for i, x in enumerate(stream.X):
            row = dict(enumerate(x.tolist()))
            reference[i] = model.score_one(row)
            model.learn_one(row)
    assert_comparable("hst", stream.y, ours(OnlineHST, stream.X), reference)
