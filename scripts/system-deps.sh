#!/usr/bin/env bash
# System packages the service tests need that the machine may lack: Chromium, for the
# dashboard test (tests/test_server_dashboard.py drives it with Playwright; Playwright
# never downloads a browser here), and redis-server, for the job-queue tests
# (tests/test_jobs_*.py start one on a free loopback port), and Prometheus Alertmanager, for
# the alert sinks' tests (tests/test_alerts.py). Called by scripts/test.sh.
# Idempotent and fast when everything is there: it only runs apt-get when a package is
# missing and it is root.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: missing ${missing[*]}; install them (as root: apt-get install -y ${missing[*]})" >&2
    exit 0  # the tests that need them fail with the same advice
fi
echo "system-deps: installing ${missing[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
