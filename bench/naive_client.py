"""The naive baseline: aiohttp, 64 requests in flight, both calls of a customer gathered, no I/O.

`naive_client.py URL CSV KEY` prints customers/s and the client's CPU microseconds per
request. It is what the job is measured against: the same library, none of the job's
bookkeeping (pacing, daily cap, retries, circuit, progress store, outputs).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import aiohttp

ENVELOPE = {"partner": {"comId": "F0995", "srvId": "297"}, "body": {"korName": "홍길동"}}


async def ask_all(base_url: str, cis: list[str], key: str) -> None:
    gate = asyncio.Semaphore(64)
    async with aiohttp.ClientSession(headers={"apikey": key}) as session:

        async def ask(api: str, ci: str, n: int) -> object:
            body = {
                **ENVELOPE,
                "commonHeader": {"reqIdPlatform": "", "reqIdConsumer": f"n{n}", "ci": ci},
            }
            async with gate, session.post(f"{base_url}/{api}", json=body) as response:
                return await response.json(content_type=None)

        async def customer(n: int, ci: str) -> object:
            return await asyncio.gather(
                ask("register/search", ci, 2 * n), ask("consent/search", ci, 2 * n + 1)
            )

        await asyncio.gather(*(customer(n, ci) for n, ci in enumerate(cis)))


if __name__ == "__main__":
    started, cpu = time.monotonic(), time.process_time()
    url, path, api_key = sys.argv[1:4]
    with Path(path).open(encoding="utf-8") as lines:
        customers = [line.split(",")[0] for line in lines.read().splitlines()[1:]]
    asyncio.run(ask_all(url, customers, api_key))
    per_request = (time.process_time() - cpu) / (2 * len(customers)) * 1e6
    print(f"{len(customers) / (time.monotonic() - started):.1f} {per_request:.1f}")
