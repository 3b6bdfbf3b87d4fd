"""The Python API (adcore.fit, Model, load_model), the schema check and chunked scoring."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

import adcore
from adcore.errors import (
    IntegrityError,
    MissingDependencyError,
    ParameterError,
    SchemaMismatchError,
    StoreError,
)
from adcore.services.models import Model
from adcore.services.registry import (
    default_store_url,
    open_store,
    parse_model_ref,
    sha256_hex,
    verify_artifact,
)
from adcore.services.scoring import score_file


@pytest.fixture
def X() -> np.ndarray:
    rng = np.random.default_rng(1)
    data = rng.normal(size=(400, 3))
    data[:4] += 7.0
    return data


@pytest.fixture
def store(tmp_path: Path) -> str:
    return str(tmp_path / "store")


def write_csv(path: Path, X: np.ndarray, names: list[str], extra: dict[str, list] | None = None) -> Path:
    extra = extra or {}
    header = [*extra, *names]
    rows = [[*(str(extra[k][i]) for k in extra), *(f"{v:.6f}" for v in X[i])] for i in range(len(X))]
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n")
    return path


def test_fit_score_equals_detect_with_the_same_seed(X):
    model = adcore.fit(X, algo="core:hbos", seed=5, contamination=0.05)
    assert model.record is None and model.ref is None  # no name: not saved
    result = model.score(X)
    reference = adcore.detect(X, algo="core:hbos", seed=5, contamination=0.05)
    np.testing.assert_array_equal(result.scores, reference.scores)
    np.testing.assert_array_equal(result.labels, reference.labels)
    assert result.threshold == reference.threshold == model.threshold
    assert np.all((result.confidence >= 0.5) & (result.confidence <= 1.0))


def test_save_then_load_scores_identically(X, store):
    model = adcore.fit(X, algo="core:mahalanobis", store=store)
    record = model.save("maha")
    assert record.ref == "maha@1" and model.ref == "maha@1"
    loaded = adcore.load_model("maha", store=store)
    new = X[:50] * 1.5
    np.testing.assert_array_equal(loaded.score(new).scores, model.score(new).scores)
    assert loaded.score(new).metadata["model"] == "maha@1"
    assert "maha@1" in repr(loaded)


def test_labels_use_the_stored_threshold(X, store):
    model = adcore.fit(X, name="thr", store=store, threshold="fixed:2.5")
    loaded = adcore.load_model("thr", store=store)
    result = loaded.score(X)
    assert loaded.threshold == 2.5 == model.record.threshold
    np.testing.assert_array_equal(result.labels, (result.scores > 2.5).astype(int))


def test_save_needs_a_name(X, store):
    with pytest.raises(StoreError, match="give the model a name"):
        adcore.fit(X, store=store).save()


def test_default_store_lives_under_adcore_home(X, tmp_path, monkeypatch):
    monkeypatch.delenv("ADCORE_STORE", raising=False)
    monkeypatch.setenv("ADCORE_HOME", str(tmp_path / "home"))
    assert default_store_url() == str(tmp_path / "home" / "models")
    assert adcore.fit(X, name="dflt").ref == "dflt@1"
    assert (tmp_path / "home" / "models" / "index.sqlite").exists()
    monkeypatch.setenv("ADCORE_STORE", str(tmp_path / "elsewhere"))
    assert adcore.fit(X, name="dflt").ref == "dflt@1"


def test_dataframe_schema_names_and_order(X, store):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=["amount", "age", "hour"])
    adcore.fit(frame, name="df", store=store)
    model = adcore.load_model("df", store=store)
    assert model.schema.feature_names == ["amount", "age", "hour"]
    model.score(frame)
    with pytest.raises(SchemaMismatchError, match="another order"):
        model.score(frame[["age", "amount", "hour"]])
    with pytest.raises(SchemaMismatchError, match="missing 'hour'; not in the training data 'hours'"):
        model.score(frame.rename(columns={"hour": "hours"}))
    model.score(X[:10])  # an array has no names: only the count is checked
    with pytest.raises(SchemaMismatchError, match="trained on 3 features, the input has 2"):
        model.score(X[:10, :2])


def test_explicit_columns_are_selected_by_name_when_scoring(X, tmp_path, store):
    ids = list(range(len(X)))
    train = write_csv(tmp_path / "train.csv", X, ["a", "b", "c"], extra={"id": ids})
    adcore.fit(train, name="cols", store=store, columns=["c", "a"])
    model = adcore.load_model("cols", store=store)
    assert model.schema.feature_names == ["c", "a"]
    shuffled = write_csv(tmp_path / "new.csv", X[:, [2, 1, 0]], ["c", "b", "a"], extra={"id": ids})
    expected = model.score(X[:, [2, 0]]).scores
    np.testing.assert_array_equal(model.score(shuffled).scores, expected)
    summary = score_file(model, shuffled, tmp_path / "out.csv", chunk_size=37)
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert lines[0] == "id,b,score,label" and len(lines) == len(X) + 1 and summary.n_rows == len(X)
    np.testing.assert_array_equal([float(line.split(",")[2]) for line in lines[1:]], expected)


def test_chunked_scoring_matches_whole_file_and_keeps_dropped_rows(X, tmp_path, store):
    train = write_csv(tmp_path / "train.csv", X, ["a", "b", "c"])
    adcore.fit(train, name="chunks", store=store, seed=0)
    model = adcore.load_model("chunks", store=store)
    whole = model.score(train)
    for chunk_size in (1, 7, 400, 10_000):
        out = tmp_path / f"out{chunk_size}.csv"
        summary = score_file(model, train, out, chunk_size=chunk_size)
        got = np.loadtxt(out, delimiter=",", skiprows=1)
        np.testing.assert_array_equal(got[:, 0], whole.scores)
        assert summary.n_anomalies == whole.n_anomalies and summary.chunks == -(-len(X) // chunk_size)
        assert [a["index"] for a in summary.to_dict()["top_anomalies"]] == [
            a.index for a in whole.anomalies[:10]
        ]
    holes = tmp_path / "holes.csv"
    text = train.read_text().splitlines()
    text[3] = "1.0,,2.0"
    holes.write_text("\n".join(text) + "\n")
    out = tmp_path / "holes_out.csv"
    summary = score_file(model, holes, out, chunk_size=50, nan_policy="drop")
    rows = out.read_text().splitlines()
    assert rows[3] == ",-1" and len(rows) == len(X) + 1 and summary.n_scored == len(X) - 1


def test_failed_scoring_leaves_no_output(X, tmp_path, store):
    adcore.fit(X, name="nooutput", store=store)
    model = adcore.load_model("nooutput", store=store)
    bad = tmp_path / "bad.csv"
    lines = [f"{i},{i},{i}" for i in range(300)] + ["1,oops,3"]
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(adcore.errors.DataError):
        score_file(model, bad, tmp_path / "out.csv", chunk_size=100)
    assert not (tmp_path / "out.csv").exists()


def test_parse_model_ref():
    assert parse_model_ref("payments") == ("payments", None)
    assert parse_model_ref("payments@latest") == ("payments", None)
    assert parse_model_ref("pay.ments-2_x@12") == ("pay.ments-2_x", 12)
    assert parse_model_ref("payments@champion") == ("payments", "champion")  # an alias (MLflow's registry)
    for bad in ("", "@1", "a b", "a@0", "a@-1", "a@x!", "a@_x", "a@", "a/b", "../x", "a@1@2"):
        with pytest.raises(ParameterError):
            parse_model_ref(bad)


def test_verify_artifact_checks_size_then_hash(X):
    model = adcore.fit(X)
    data = model.to_bytes()
    record = model.to_record("v").replace(sha256=sha256_hex(data), size=len(data), version=1)
    assert verify_artifact(record, data) is data
    with pytest.raises(IntegrityError, match="truncated"):
        verify_artifact(record, data[:-1])
    with pytest.raises(IntegrityError, match="longer than recorded"):
        verify_artifact(record, data + b"x")
    with pytest.raises(IntegrityError, match="checksum mismatch"):
        verify_artifact(record, data[:-1] + bytes([data[-1] ^ 1]))


def test_unloadable_artifacts_are_clear_errors(X):
    model = adcore.fit(X)
    record = model.to_record("u").replace(version=1)
    missing_module = pickle.dumps(object()).replace(b"builtins", b"nomodxyz")
    with pytest.raises(MissingDependencyError, match="nomodxyz"):
        Model.from_bytes(missing_module, record=record)
    with pytest.raises(StoreError, match="not an adcore model"):
        Model.from_bytes(pickle.dumps({"format": "other"}), record=record)


class _HoldsALambda:
    """A detector whose fitted state cannot be pickled (as PyOD's MO_GAAL's)."""

    def fit(self, X, y=None):
        self.scale_ = lambda rows: np.abs(rows).sum(axis=1)
        return self

    def decision_function(self, X):
        return self.scale_(X)


def test_a_detector_that_cannot_be_pickled_is_refused_before_anything_is_stored(X, store):
    from adcore.errors import StoreError

    model = adcore.fit(X, _HoldsALambda, seed=0)
    with pytest.raises(StoreError, match="cannot be saved: its fitted object is not picklable"):
        model.save("lambda", store=store)
    opened = open_store(store)
    try:
        assert opened.list("lambda") == []
    finally:
        opened.close()


def test_a_file_is_read_one_chunk_ahead_of_scoring(X, tmp_path, store):
    """While a chunk is scored the next one is being read; the reader is gone once done."""
    import threading

    path = write_csv(tmp_path / "in.csv", X, ["a", "b", "c"])
    adcore.fit(path, name="ahead", store=store)
    model = adcore.load_model("ahead", store=store)
    seen: list[bool] = []

    def readers(_rows: int) -> None:  # on_chunk: is a reader thread alive?
        seen.append(any(t.name == "adcore-read-ahead" for t in threading.enumerate()))

    summary = score_file(model, path, tmp_path / "out.csv", chunk_size=50, on_chunk=readers)
    assert summary.n_rows == len(X) and len(seen) == 8 and seen[0]
    assert not [t for t in threading.enumerate() if t.name == "adcore-read-ahead"]
    expected = model.score(X).scores
    np.testing.assert_array_equal(
        [float(line.split(",")[0]) for line in (tmp_path / "out.csv").read_text().splitlines()[1:]], expected
    )
