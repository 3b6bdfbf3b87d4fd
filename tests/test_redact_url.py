"""``redact_url``: no form of a store password survives into a message (issue 15, S2)."""

from __future__ import annotations

import pytest

from adcore.services.registry import redact_url

SECRET = "hunter2"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://bob:hunter2@db/x", "postgresql://bob:***@db/x"),
        ("postgresql://bob:hun/ter2@db:5432/x", "postgresql://bob:***@db:5432/x"),
        ("postgresql://bob:hun@ter2@db/x", "postgresql://bob:***@db/x"),
        ("postgresql://bob:h/u@n?t#er2@db/x", "postgresql://bob:***@db/x"),
        ("postgresql://:hunter2@db/x", "postgresql://:***@db/x"),
        ("postgresql://bob@db/x?password=hunter2&sslmode=require", "postgresql://bob@db/x?password=***&sslmode=require"),
        ("postgresql://db/x?PassWord=hunter2", "postgresql://db/x?PassWord=***"),
        ("postgresql://db/x?pass%77ord=hunter2&a=b", "postgresql://db/x?pass%77ord=***&a=b"),
        ("postgresql://db/x?a=1;sslpassword=hunter2", "postgresql://db/x?a=1;sslpassword=***"),
        (
            "postgresql://bob:hunter2@db/x?artifacts=s3://bucket/prefix",
            "postgresql://bob:***@db/x?artifacts=s3://bucket/prefix",
        ),
        ("host=db user=bob password=hunter2 dbname=x", "host=db user=bob password=*** dbname=x"),
        ("host=db PASSWORD = 'hun ter2' dbname=x", "host=db PASSWORD = *** dbname=x"),
        ("/srv/models", "/srv/models"),
        ("sqlite:///srv/models/index.sqlite", "sqlite:///srv/models/index.sqlite"),
        ("file:///srv/a@b/models", "file:///srv/a@b/models"),
    ],
)
def test_every_form_of_a_password_is_masked(url, expected):
    redacted = redact_url(url)
    assert redacted == expected
    for piece in ("hunter2", "hun", "ter2"):
        if piece not in expected:
            assert piece not in redacted


def test_cli_errors_never_show_the_password(tmp_path):
    """The CLI prints the store URL in its errors: the password must not come with it."""
    pytest.importorskip("psycopg")  # without the driver the error names the missing package, no URL
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    env["ADCORE_HOME"] = str(tmp_path)
    for url in (
        "postgresql://bob:hun/ter2@127.0.0.1:1/db?password=hunter2",
        "postgresql://bob@127.0.0.1:1/db?PASSWORD=hunter2&artifacts=file:///nonexistent",
    ):
        done = subprocess.run(
            [sys.executable, "-m", "adcore.cli.main", "models", "--store", url],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        assert "hunter2" not in done.stderr and "ter2" not in done.stderr, done.stderr
        assert "***" in done.stderr
