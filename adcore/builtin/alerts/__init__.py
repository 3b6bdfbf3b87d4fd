"""Alert sinks: anomaly and drift events turned into notifications a person is paged with.

Two monitors, registered by the core plugin through the monitoring port (``adcore stream
--monitor alertmanager``, ``adcore serve --monitor webhook``): :mod:`.alertmanager` posts to
Prometheus Alertmanager's v2 API, :mod:`.webhook` posts signed JSON (:mod:`.signing`) to any
URL. Both share :mod:`.monitor` (which events, which key, counting) and :mod:`.grouping` (at
most one notification per key per interval), and deliver on a background thread
(:mod:`.sender`: a bounded queue, retries and a circuit breaker per receiver, so an outage
neither stalls the stream nor loses alerts) through :mod:`.transport`, the one place an HTTP
request is made. Configuration is
read from environment variables (:mod:`.settings`), since monitors are built without
arguments. See docs/alerts.md.
"""
