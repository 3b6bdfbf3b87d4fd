"""Which distribution provides a missing name: the static table, kept honest, and the message.

``adcore.plugins.KNOWN_PROVIDERS`` lists what the plugin distributions of this repository
register, so that ``--algo iforest`` with only the core installed says what to install.
A static table can rot; these tests compare it with what the installed distributions
really register and with the distributions that exist in the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adcore.errors import UnknownAlgorithmError
from adcore.plugins import KNOWN_PROVIDERS, PluginHost, known_providers, provider_hint

REPO = Path(__file__).resolve().parents[1]


def _repo_distributions() -> dict[str, str]:
    """distribution name -> entry-point name, for every ``adcore-*/`` folder that is a plugin."""
    found = {}
    for pyproject in sorted(REPO.glob("adcore-*/pyproject.toml")):
        text = pyproject.read_text()
        name = re.search(r'^name\s*=\s*"([^"]+)"', text, re.M)
        section = re.search(r"^\[project\.entry-points\.adcore\]\n(.*?)(?:^\[|\Z)", text, re.M | re.S)
        assert name and section, f"{pyproject}: no project name or [project.entry-points.adcore]"
        entry_points = re.findall(r"^([\w.-]+)\s*=", section.group(1), re.M)
        assert len(entry_points) == 1, f"{pyproject}: expected one adcore entry point, got {entry_points}"
        found[name.group(1)] = entry_points[0]
    return found


def test_table_lists_every_plugin_distribution_of_the_repository():
    assert {dist: entry for dist, (entry, _) in KNOWN_PROVIDERS.items()} == _repo_distributions()


@pytest.fixture(scope="module")
def installed_host() -> PluginHost:
    return PluginHost(only=None, disabled=[]).load()


@pytest.mark.parametrize("dist", sorted(KNOWN_PROVIDERS))
def test_table_matches_what_the_distribution_registers(installed_host, dist):
    entry_point, table = KNOWN_PROVIDERS[dist]
    infos = {i.name: i for i in installed_host.plugins()}
    info = infos.get(entry_point)
    if info is None or info.distribution != dist:
        pytest.skip(f"{dist} is not installed here")
    registered = {kind: names for kind, names in info.registered.items() if names}
    expected = {kind: sorted(names.split()) for kind, names in table.items()}
    assert registered == expected, (
        f"adcore.plugins.KNOWN_PROVIDERS[{dist!r}] is out of date: {dist} registers {registered}"
    )


def test_known_providers_reads_bare_and_qualified_names():
    assert known_providers("detector", "iforest") == ["adcore-pyod", "adcore-sklearn"]
    assert known_providers("detector", "sklearn:iforest") == ["adcore-sklearn"]
    assert known_providers("detector", "elliptic") == ["adcore-sklearn"]
    assert known_providers("messaging", "kafka") == ["adcore-kafka"]
    assert known_providers("detector", "kafka") == []
    assert known_providers("detector", "nosuch") == []


def test_hint_says_what_to_install_or_why_an_installed_one_is_missing():
    both = ["adcore-pyod", "adcore-sklearn"]
    assert provider_hint(both) == (
        ": it is provided by adcore-pyod (pip install adcore-pyod) "
        "or adcore-sklearn (pip install adcore-sklearn)"
    )
    assert provider_hint(both, installed=both) == (
        ": it is provided by adcore-pyod (installed, not loaded) or adcore-sklearn (installed, not loaded); "
        "ADCORE_PLUGINS, ADCORE_DISABLE_PLUGINS or ADCORE_DISABLE_PLUGIN_AUTOLOAD switched them off"
    )
    broken = provider_hint(["adcore-pyod"], installed=["adcore-pyod"], broken=["adcore-pyod"])
    assert (
        broken == ": it is provided by adcore-pyod (installed, but it failed to load: see 'adcore plugins')"
    )
    old = provider_hint(["adcore-pyod"], installed=["adcore-pyod"], loaded=["adcore-pyod"])
    assert "this version lacks it: pip install -U adcore-pyod" in old
    assert provider_hint([]) == ""


def test_core_only_names_the_plugin_that_provides_an_algorithm(plugin_site, csv_file):
    """With only the core loaded (as after installing adcore alone), the error says which plugin."""
    for env in ({"ADCORE_PLUGINS": "none"}, {"ADCORE_DISABLE_PLUGIN_AUTOLOAD": "1"}):
        proc = plugin_site.run("run", "--algo", "iforest", "--input", str(csv_file), env=env)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(
            "error: unknown algorithm 'iforest': it is provided by "
        )
        assert re.search(r"adcore-pyod \(.*\) or adcore-sklearn \(", lines[0]), lines[0]
    proc = plugin_site.run(
        "stream", "--source", "kafka://localhost/t", env={"ADCORE_PLUGINS": "none"}, stdin=""
    )
    assert proc.returncode == 2
    assert (
        "no stream transport for 'kafka' URLs (kafka://localhost/t): it is provided by adcore-kafka"
        in proc.stderr
    )


def test_unknown_name_without_a_provider_keeps_its_did_you_mean():
    host = PluginHost(autoload=False).load()
    with pytest.raises(UnknownAlgorithmError) as info:
        host.resolve("detector", "mahalanobi")
    assert str(info.value) == "unknown algorithm 'mahalanobi'; did you mean mahalanobis?"
    with pytest.raises(UnknownAlgorithmError, match=r"did you mean core:mahalanobis, core:mad\?$"):
        host.resolve("detector", "core:mahalanobi")
