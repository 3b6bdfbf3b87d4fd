"""Property-based tests of the whole API from its own OpenAPI schema (schemathesis).

Against a real ``adcore serve`` on loopback, every operation gets generated requests,
valid and invalid: none may answer 5xx, every status must be one the schema documents,
and every body must match the documented schema (the error shape included). The number
of examples per operation is bounded so the file runs in well under a minute.
"""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")  # the tox env of the bare core

# with the server extra installed, a missing test extra is a failure, not a skip
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks
from server_harness import running_server, training_rows

pytestmark = pytest.mark.service

KEY = "schema-test-key"
HEADERS = {"Authorization": f"Bearer {KEY}"}
MAX_EXAMPLES = 20


@pytest.fixture(scope="module")
def api_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("schema-server")
    with running_server(tmp, "--rate-limit", "0", "--max-rows", "2000", api_key=KEY) as server:
        with server.client() as client:  # something to score, list and delete
            for name in ("example", "payments"):
                client.post(
                    "/v1/models", json={"name": name, "data": training_rows(50, 2)}
                ).raise_for_status()
        yield server


def _app_schema() -> dict:
    """The OpenAPI document of the app ``adcore serve`` runs (the same factory, the same routes)."""
    from adcore.server.app import create_app
    from adcore.server.settings import ServerSettings

    # the limits the server below runs with: the schema states them (maxItems on data)
    return create_app(ServerSettings(store="unused-for-the-schema", max_rows=2000)).openapi()


schema = schemathesis.openapi.from_dict(_app_schema())


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_schema(case, api_server):
    case.call_and_validate(
        base_url=api_server.url,
        headers=HEADERS,
        timeout=60,
        checks=[
            checks.not_a_server_error,
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_schema_conformance,
        ],
    )
