"""The naive baseline: aiohttp, 64 requests in flight, both calls of a customer gathered, no I/O.

`naive_client.py URL CSV KEY [RATE]` prints customers/s and the client's CPU microseconds
per request. With RATE, requests start evenly spaced at RATE per second (each takes the
next slot and sleeps until it), the least a client under a quota has to do; without it,
as fast as the server answers. It is what the job is measured against: the same library,
none of the job's bookkeeping (pacing by the gateway's answers, daily cap, retries,
circuit, progress store, outputs).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import aiohttp

ENVELOPE = {"partner": {"comId": "F0995", "srvId": "297"}, "body": {"korName": "홍길동"}}


class Pace:
    """Evenly spaced starts: each caller takes the next slot and sleeps until it."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next_slot = 0.0

    async def wait(self) -> None:
        now = asyncio.get_running_loop().time()
        slot = max(now, self.next_slot)
        self.next_slot = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


async def ask_all(base_url: str, cis: list[str], key: str, rate: float | None) -> None:
    gate = asyncio.Semaphore(64)
    pace = Pace(rate) if rate else None
    async with aiohttp.ClientSession(headers={"apikey": key}) as session:

        async def ask(api: str, ci: str, n: int) -> object:
            body = {
                **ENVELOPE,
                "commonHeader": {"reqIdPlatform": "", "reqIdConsumer": f"n{n}", "ci": ci},
            }
            async with gate:
                if pace is not None:
                    await pace.wait()
                async with session.post(f"{base_url}/{api}", json=body) as response:
                    return await response.json(content_type=None)

        async def customer(n: int, ci: str) -> object:
            return await asyncio.gather(
                ask("register/search", ci, 2 * n), ask("consent/search", ci, 2 * n + 1)
            )

        await asyncio.gather(*(customer(n, ci) for n, ci in enumerate(cis)))


if __name__ == "__main__":
    started, cpu = time.monotonic(), time.process_time()
    url, path, api_key = sys.argv[1:4]
    pace_rate = float(sys.argv[4]) if sys.argv[4:] else None
    with Path(path).open(encoding="utf-8") as lines:
        customers = [line.split(",")[0] for line in lines.read().splitlines()[1:]]
    asyncio.run(ask_all(url, customers, api_key, pace_rate))
    per_request = (time.process_time() - cpu) / (2 * len(customers)) * 1e6
    print(f"{len(customers) / (time.monotonic() - started):.1f} {per_request:.1f}")
