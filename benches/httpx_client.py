"""The Python baseline for benches/bench_throughput.rs: an asyncio + httpx
client sending the same chat-completion requests to the same kind of
loopback server, N requests with C in flight at once, and its rate.

    cargo bench --bench bench_throughput -- --serve 8931 &
    python3 -m venv /tmp/v && /tmp/v/bin/pip install -r benches/requirements.txt
    /tmp/v/bin/python benches/httpx_client.py --port 8931 --requests 2000 --concurrency 100
"""

import argparse
import asyncio
import time

import httpx


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8931)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=100)
    a = ap.parse_args()
    url = f"http://127.0.0.1:{a.port}/v1/chat/completions"
    body = {"model": "m", "messages": [{"role": "user", "content": "Say DONE."}]}
    limits = httpx.Limits(max_connections=a.concurrency, max_keepalive_connections=a.concurrency)
    gate = asyncio.Semaphore(a.concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def one() -> bool:
            async with gate:
                r = await client.post(url, json=body)
                return "DONE" in r.json()["choices"][0]["message"]["content"]

        t0 = time.perf_counter()
        ok = await asyncio.gather(*(one() for _ in range(a.requests)))
        took = time.perf_counter() - t0
    print(f"{a.requests} requests in {took:.2f} s: {a.requests / took:.0f} calls/s ({sum(ok)} answered DONE)")


asyncio.run(main())
