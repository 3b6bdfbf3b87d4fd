"""The ``webhook`` monitor: grouped alerts as signed JSON posted to any URL.

For receivers that are not Alertmanager (a chat bridge, an incident tool, your own service).
``POST $ADCORE_WEBHOOK_URL`` with a JSON object: ``version``, ``delivery`` (the
notification's id), ``sent_at`` (Unix seconds), ``alertname``, ``labels`` and ``annotations`` (as sent to
Alertmanager), the grouping counts ``events``, ``suppressed``, ``total``, and the event
itself. It is signed with ``$ADCORE_WEBHOOK_SECRET`` (:mod:`.signing`): a webhook without a
secret is refused, since anyone who can reach the receiver could otherwise page people.

A notification may arrive more than once: a retry after a timeout whose request the receiver
did process. Every attempt carries the same ``delivery`` id (the notification's, also in
``X-Adcore-Delivery``), so a receiver de-duplicates on it; ``sent_at`` is the attempt's own
time, re-signed, so a notification held through a long outage is not refused as stale.
"""

from __future__ import annotations

import time
from typing import Any

from adcore.builtin.alerts import settings, signing
from adcore.builtin.alerts.grouping import Notification
from adcore.builtin.alerts.monitor import AlertMonitor, annotations
from adcore.errors import ParameterError
from adcore.io import jsonio

VERSION = 1


class WebhookMonitor(AlertMonitor):
    """Posts each grouped notification as one signed JSON request (see the module docstring)."""

    name = "webhook"

    def __init__(self, url: str | None = None, secret: str | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.url = settings.url(url, settings.WEBHOOK_URL_ENV, monitor=self.name)
        found = settings.text(secret, settings.WEBHOOK_SECRET_ENV)
        if not found:
            raise ParameterError(
                f"the webhook monitor signs every request: set {settings.WEBHOOK_SECRET_ENV} "
                "to a shared secret (e.g. the output of: openssl rand -hex 32)"
            )
        self._secret = found.encode()

    def payload(self, note: Notification) -> dict[str, Any]:
        """The JSON object sent for one attempt at one notification (see the module docstring)."""
        return {
            "version": VERSION,
            "delivery": note.id,
            "sent_at": int(time.time()),
            "alertname": note.key.alertname,
            "labels": self.labels_of(note),
            "annotations": annotations(note),
            "events": note.events,
            "suppressed": note.suppressed,
            "total": note.total,
            "first_seen": note.first_event.timestamp,
            "generator_url": self.generator_url,
            "event": note.event.to_dict(),
        }

    def deliver(self, note: Notification) -> None:
        payload = self.payload(note)
        body = jsonio.dumps(jsonio.jsonable(payload))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "adcore-webhook",
            signing.SIGNATURE_HEADER: signing.sign(body, self._secret),
            signing.TIMESTAMP_HEADER: str(payload["sent_at"]),
            signing.DELIVERY_HEADER: payload["delivery"],
        }
        self.send(self.url, body, headers, self.timeout)
