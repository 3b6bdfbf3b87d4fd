"""adcore.io.read_ahead: a background reader that keeps order, errors and clean-up."""

from __future__ import annotations

import threading
import time

import pytest

from adcore.errors import DataError
from adcore.io.read_ahead import read_ahead


def test_items_arrive_in_order_and_the_reader_stays_at_most_depth_ahead():
    produced: list[int] = []

    def source():
        for i in range(20):
            produced.append(i)
            yield i

    out = []
    for item in read_ahead(source(), depth=2):
        time.sleep(0.005)  # a slow consumer: the producer must wait, not run away
        assert len(produced) - len(out) <= 2 + 2  # queued + the one in hand + the one being made
        out.append(item)
    assert out == list(range(20))


def test_an_error_of_the_source_is_raised_at_its_place_with_its_type():
    def source():
        yield 1
        yield 2
        raise DataError("row 7: not a number")

    seen = []
    with pytest.raises(DataError, match="row 7: not a number"):
        for item in read_ahead(source()):
            seen.append(item)
    assert seen == [1, 2]


def test_a_consumer_that_stops_early_closes_the_source_in_the_reader_thread():
    closed = threading.Event()

    def source():
        try:
            yield from range(1_000_000)
        finally:
            closed.set()

    reader = read_ahead(source())
    assert next(reader) == 0
    reader.close()
    assert closed.is_set()  # closed before close() returned: a file would not be left open
    assert not [t for t in threading.enumerate() if t.name == "adcore-read-ahead"]


def test_a_failing_consumer_stops_the_reader():
    def source():
        yield from range(10)

    with pytest.raises(ZeroDivisionError):
        for item in read_ahead(source()):
            _ = 1 / (item - 3)  # fails on the fourth item
    time.sleep(0.05)
    assert not [t for t in threading.enumerate() if t.name == "adcore-read-ahead"]
