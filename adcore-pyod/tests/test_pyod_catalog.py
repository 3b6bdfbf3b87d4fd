"""The shipped catalog is exactly what the installed PyOD generates, and what gets registered."""

from __future__ import annotations

import json
from pathlib import Path

from adcore.testing import registered_detectors

from adcore_pyod import catalog, generate

README = Path(__file__).resolve().parents[1] / "README.md"


def test_catalog_matches_the_installed_pyod():
    regenerated = generate.render(generate.build_catalog())
    shipped = catalog.CATALOG_FILE.read_text(encoding="utf-8")
    assert regenerated == shipped, (
        "adcore_pyod/catalog.json is stale for the installed PyOD: run python -m adcore_pyod.generate"
    )


def test_static_view_agrees_with_the_imported_classes():
    assert generate.cross_check(generate.build_catalog()) == []


def test_every_catalog_entry_is_registered_and_there_are_40_plus():
    names = [f"pyod:{d['name']}" for d in catalog.detectors()]
    assert registered_detectors("pyod") == sorted(names)
    assert len(names) >= 40


def test_factories_are_lazy_pyod_references():
    for entry in catalog.detectors():
        module, _, attr = entry["factory"].partition(":")
        assert attr and (module.startswith("pyod.models.") or module == "adcore_pyod.adapters"), entry[
            "factory"
        ]


def test_optional_dependencies_are_declared():
    needs = {d["name"]: d["needs"] for d in catalog.detectors()}
    assert "torch" in needs["auto-encoder"] and "torch" in needs["deep-svdd"]
    assert "combo" in needs["feature-bagging"] and "suod" in needs["suod"]
    assert needs["iforest"] == needs["ecod"] == needs["knn"] == []


def test_every_exclusion_is_documented_in_the_readme():
    readme = README.read_text(encoding="utf-8")
    excluded = catalog.load_catalog()["excluded"]
    assert excluded
    for item in excluded:
        assert item["class_path"].rsplit(".", 1)[1] in readme, f"README does not explain excluding {item}"


def test_generator_check_mode(capsys):
    assert generate.main(["--check", "--no-import"]) == 0
    assert "matches PyOD" in capsys.readouterr().out


def test_generator_check_mode_reports_a_stale_catalog(tmp_path, capsys):
    stale = tmp_path / "catalog.json"
    data = json.loads(catalog.CATALOG_FILE.read_text(encoding="utf-8"))
    data["detectors"] = data["detectors"][1:]
    stale.write_text(json.dumps(data))
    assert generate.main(["--check", "--no-import", "--output", str(stale)]) == 1
    assert "is stale" in capsys.readouterr().err


def test_summaries_and_params_come_from_the_docstrings():
    entry = {d["name"]: d for d in catalog.detectors()}["knn"]
    assert entry["summary"] == "kNN class for outlier detection"
    n_neighbors = {p["name"]: p for p in entry["params"]}["n_neighbors"]
    assert n_neighbors["type"] == "int" and n_neighbors["default"] == 5
    assert "neighbors" in n_neighbors["description"]
    assert entry["omitted_params"] == ["algorithm"]  # shadowed by Detector(algorithm=...)
