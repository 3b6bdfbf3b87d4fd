"""Real alert receivers for the tests, which a test can stop and start again on the same port.

:class:`Alertmanager` runs Debian's ``prometheus-alertmanager`` on loopback (no cluster, a
blackhole route), stopped by PID; :class:`WebhookReceiver` is an ``http.server`` in a thread
that checks every signature itself and answers what the test scripts (``503`` a few times,
then ``200``). Used by tests/test_alerts.py and tests/test_alerts_resilience.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SECRET = "s3cret-for-tests"
AM_APT = "apt-get install -y prometheus-alertmanager"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Alertmanager:
    """``prometheus-alertmanager`` on ``127.0.0.1:port``; :meth:`stop` and :meth:`start` again."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        if binary is None:
            pytest.skip(f"prometheus-alertmanager is not installed ({AM_APT}; scripts/system-deps.sh)")
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = workdir / "alertmanager.yml"
        self.config.write_text("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n")
        self.log_path = workdir / "alertmanager.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> None:
        """Start it (on the same port as before) and wait until it is ready."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [self.binary, f"--config.file={self.config}", f"--web.listen-address=127.0.0.1:{self.port}",
                 "--cluster.listen-address=", f"--storage.path={self.workdir / 'am-data'}"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(self.log_path.read_text())
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM by PID (SIGKILL if it lingers); its port refuses connections afterwards."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def alerts(self) -> list[dict]:
        with urllib.request.urlopen(self.url + "/api/v2/alerts", timeout=5) as response:
            return json.loads(response.read())


@dataclass
class WebhookReceiver:
    """A webhook receiver on ``127.0.0.1:port`` that checks every signature itself.

    ``bodies`` are the verified payloads it answered 2xx to (``attempts`` every verified
    one, whatever it answered); ``refused`` what failed verification; ``statuses`` the
    answers to give next, in order (then ``status``).
    """

    port: int = field(default_factory=free_port)
    status: int = 200
    statuses: list[int] = field(default_factory=list)
    bodies: list[dict] = field(default_factory=list)
    attempts: list[tuple[int, dict]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        got = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(self.headers.get("X-Adcore-Signature", ""), expected):
                    got.refused.append("bad signature")
                    self.send_response(401)
                else:
                    payload = json.loads(body)
                    if str(payload["sent_at"]) != self.headers["X-Adcore-Timestamp"]:
                        got.refused.append("timestamp header differs from the signed sent_at")
                    if payload["delivery"] != self.headers["X-Adcore-Delivery"]:
                        got.refused.append("delivery header differs from the signed delivery")
                    status = got.statuses.pop(0) if got.statuses else got.status
                    got.attempts.append((status, payload))
                    if status < 300:
                        got.bodies.append(payload)
                    self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:  # keep the test output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close the listening socket: connections are refused until :meth:`start`."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)
