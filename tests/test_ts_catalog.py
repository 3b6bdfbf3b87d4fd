"""``adcore algos`` lists the time-series detectors, cheaply, and names them in errors."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from adcore.cli.main import run_cli
from adcore.errors import UnknownAlgorithmError
from adcore.services.catalog import describe_algorithm, list_algorithms
from adcore.timeseries.detectors import TS_DETECTORS

TS_NAMES = [f"ts:{name}" for name in TS_DETECTORS]


def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_cli(list(args))
    return code, out.getvalue(), err.getvalue()


def test_algos_json_lists_every_ts_detector_with_its_summary_and_tag():
    code, out, _ = _cli("algos", "--json")
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)}
    assert "core:hbos" in rows  # the tabular detectors are still there
    for name in TS_NAMES:
        assert rows[name]["plugin"] == "timeseries"
        assert rows[name]["tags"] == ["timeseries"]
        assert rows[name]["summary"] == TS_DETECTORS[name[3:]]
    assert {"ts:auto", "ts:discord", "ts:seasonal", "ts:sub-<detector>", "ts:extreme"} <= set(rows)


def test_algos_table_has_a_time_series_section_and_plugin_filter():
    code, out, _ = _cli("algos")
    assert code == 0 and "time-series detectors" in out and "ts:discord" in out
    code, out, _ = _cli("algos", "--plugin", "timeseries", "--json")
    assert code == 0 and [row["name"] for row in json.loads(out)] == TS_NAMES


def test_the_service_listing_keeps_its_plugin_rows_only_by_default():
    """The server and adcore.testing describe every listed row: ts rows only when asked."""
    assert not any(row["name"].startswith("ts:") for row in list_algorithms())
    assert [r["name"] for r in list_algorithms(timeseries=True) if r["plugin"] == "timeseries"] == TS_NAMES


def test_algos_show_describes_a_ts_detector_and_refuses_an_unknown_one():
    info = describe_algorithm("ts:sub-core:mad")
    assert info["plugin"] == "timeseries" and "sliding windows" in info["summary"]
    assert "warmup" in info["common_parameters"]
    with pytest.raises(UnknownAlgorithmError, match="one of ts:auto, ts:discord"):
        describe_algorithm("ts:nope")


@pytest.mark.parametrize(
    "argv",
    [
        ["algos", "show", "ts:nope"],
        ["run", "--algo", "ts:nope", "--time", "t", "--input", "IN", "--output", "OUT"],
    ],
)
def test_an_unknown_ts_name_is_a_one_line_error_listing_the_ts_names(tmp_path, argv):
    data = tmp_path / "in.csv"
    data.write_text("t,value\n1,2\n2,3\n")
    paths = {"IN": str(data), "OUT": str(tmp_path / "out.csv")}
    code, _, err = _cli(*[paths.get(a, a) for a in argv])
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "unknown time-series detector 'ts:nope'" in lines[0]
    assert all(name in lines[0] for name in TS_NAMES)
