"""A small HTTP/1.1 keep-alive load generator with a fixed number of connections (wrk's model):
asyncio streams in a few processes, each POSTing a template body with a fresh identifier per
request. Its own cost is measured by driving the bare Flask app in the same run."""

from __future__ import annotations

import asyncio
import multiprocessing
import statistics
import time
import uuid

MARKER = b"__BENCH_ID__"


async def _connection(
    host: str, port: int, path: str, template: bytes, deadline: float, latencies: list[float]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/fhir+json\r\n"
        f"Accept: application/fhir+json\r\n"
    ).encode()
    try:
        while time.monotonic() < deadline:
            body = template.replace(MARKER, uuid.uuid4().hex.encode())
            started = time.perf_counter()
            writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
            status_line = await reader.readline()
            length = None
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length is None:
                raise RuntimeError(f"no Content-Length in the answer to {path}")
            await reader.readexactly(length)
            status = int(status_line.split()[1])
            if status >= 300:
                raise RuntimeError(f"HTTP {status} from {path}")
            latencies.append(time.perf_counter() - started)
    finally:
        writer.close()


def _process(args: tuple[str, int, str, bytes, int, float]) -> tuple[list[float], float]:
    """The latencies, and the seconds this process drove load (its spawn not counted)."""
    host, port, path, template, connections, seconds = args
    latencies: list[float] = []

    async def main() -> None:
        deadline = time.monotonic() + seconds
        await asyncio.gather(
            *(
                _connection(host, port, path, template, deadline, latencies)
                for _ in range(connections)
            )
        )

    started = time.perf_counter()
    asyncio.run(main())
    return latencies, time.perf_counter() - started


def drive(
    base: str,
    path: str,
    template: bytes,
    seconds: float,
    connections: int = 16,
    processes: int = 2,
) -> dict:
    """`connections` keep-alive connections spread over `processes` for `seconds`."""
    host, port = base.removeprefix("http://").split(":")
    per_process = [
        connections // processes + (i < connections % processes) for i in range(processes)
    ]
    jobs = [(host, int(port), path, template, n, seconds) for n in per_process]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        results = pool.map(_process, jobs)
    latencies = sorted(x for r, _ in results for x in r)
    if not latencies:
        raise RuntimeError(f"no request to {base}{path} completed")
    return {
        "requests": len(latencies),
        "throughput": sum(len(r) / elapsed for r, elapsed in results),
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000,
    }
