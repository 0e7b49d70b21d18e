"""The naive baseline: 64 requests in flight, gather both calls per customer, no I/O.

`naive_client.py URL CSV KEY [aiohttp|batch-http]` prints customers/s and the
client's CPU microseconds per request. With `batch-http` the same client sends
through the job's `batch/http.py` instead of aiohttp: the two differ only there.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

ENVELOPE = {"partner": {"comId": "F0995", "srvId": "297"}, "body": {"korName": "홍길동"}}
Post = Callable[[str, dict[str, object]], Awaitable[object]]


async def gather_all(post: Post, cis: list[str]) -> None:
    gate = asyncio.Semaphore(64)

    async def ask(api: str, ci: str, n: int) -> object:
        body = {
            **ENVELOPE,
            "commonHeader": {"reqIdPlatform": "", "reqIdConsumer": f"n{n}", "ci": ci},
        }
        async with gate:
            return await post(api, body)

    async def customer(n: int, ci: str) -> object:
        return await asyncio.gather(
            ask("register/search", ci, 2 * n), ask("consent/search", ci, 2 * n + 1)
        )

    await asyncio.gather(*(customer(n, ci) for n, ci in enumerate(cis)))


async def with_aiohttp(base_url: str, cis: list[str], key: str) -> None:
    async with aiohttp.ClientSession(headers={"apikey": key}) as session:

        async def post(api: str, body: dict[str, object]) -> object:
            async with session.post(f"{base_url}/{api}", json=body) as response:
                return await response.json(content_type=None)

        await gather_all(post, cis)


async def with_batch_http(base_url: str, cis: list[str], key: str) -> None:
    from batch.http import HttpPool  # noqa: PLC0415  (only this variant pays for it)

    headers = {"apikey": key, "Content-Type": "application/json"}
    async with HttpPool(base_url, headers, timeout=300) as pool:

        async def post(api: str, body: dict[str, object]) -> object:
            return json.loads((await pool.post(api, json.dumps(body).encode())).body)

        await gather_all(post, cis)


if __name__ == "__main__":
    started, cpu = time.monotonic(), time.process_time()
    url, path, api_key = sys.argv[1:4]
    client = with_batch_http if sys.argv[4:] == ["batch-http"] else with_aiohttp
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    with Path(path).open(encoding="utf-8") as lines:
        customers = [line.split(",")[0] for line in lines.read().splitlines()[1:]]
    asyncio.run(client(url, customers, api_key))
    per_request = (time.process_time() - cpu) / (2 * len(customers)) * 1e6
    print(f"{len(customers) / (time.monotonic() - started):.1f} {per_request:.1f}")
