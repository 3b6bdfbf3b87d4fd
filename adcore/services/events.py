"""Events from plugins: the monitors and subscribers the plugin host registered, loaded.

The event types and the bus are domain (:mod:`adcore.domain.events`); finding who listens
is a service, because it asks the plugin host.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from adcore.domain.events import Event, EventBus, Subscription


def load_monitors(names: Iterable[str], *, host: Any = None) -> list[Any]:
    """Build monitors by name (``log``, ``plugin:name``); an unknown name is a user error."""
    from adcore.plugins import get_host

    host = host or get_host()
    return [host.resolve("monitor", name).load()() for name in names]


def load_subscribers(
    *, host: Any = None, on_error: Callable[[str], None] | None = None
) -> list[Subscription]:
    """Every callback registered through ``register_event_subscribers``.

    A registration the host refused (an unknown event type, a misspelled keyword), a hook
    that raised, or a callback that cannot be imported is reported through ``on_error`` and
    left out, like any broken plugin: the stream runs without it.
    """
    from adcore.plugins import get_host

    host = host or get_host()
    out: list[Subscription] = []
    for plugin, error in host.registration_errors("subscriber"):
        if on_error is not None:
            on_error(f"plugin {plugin}: {error}")
    for qualified, reg in sorted(host.registry("subscriber").items()):
        try:
            callback = reg.load()
        except Exception as exc:
            if on_error is not None:
                on_error(f"subscriber {qualified} left out: {exc}")
            continue
        out.append(Subscription(qualified, callback, frozenset(reg.metadata.get("types") or ()) or None))
    return out


def publish_to_subscribers(
    events: Iterable[Event], *, host: Any = None, on_error: Callable[[str], None] | None = None
) -> None:
    """Deliver ``events`` to the ``register_event_subscribers`` subscribers, once.

    For one-shot commands (``adcore fit`` publishes ``model.saved``): a bus with the plugins'
    subscribers only, built, used and dropped. A subscriber that fails is reported through
    ``on_error``; it never fails the command.
    """
    bus = EventBus(subscribers=load_subscribers(host=host, on_error=on_error), on_error=on_error)
    for event in events:
        bus.publish(event)
    bus.flush()
