"""The naive baseline: aiohttp, 64 requests in flight, gather both calls per customer, no I/O."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import aiohttp

ENVELOPE = {"partner": {"comId": "F0995", "srvId": "297"}, "body": {"korName": "홍길동"}}


async def main(base_url: str, cis: list[str], key: str) -> None:
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
    started = time.monotonic()
    url, path, api_key = sys.argv[1:4]
    with Path(path).open(encoding="utf-8") as lines:
        customers = [line.split(",")[0] for line in lines.read().splitlines()[1:]]
    asyncio.run(main(url, customers, api_key))
    print(f"{len(customers) / (time.monotonic() - started):.1f}")
