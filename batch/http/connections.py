"""The connections under the transport: each answer bounded, none misread as another's.

Two small subclasses of aiohttp's, which tests pin: a protocol that counts every byte of
one answer, and a connector that finds answers nobody asked for and stops reusing
connections once one came; and the ledger of which items were answered on which
connection, so those answers can be asked again.
"""

from __future__ import annotations

import collections
import functools
import itertools
import weakref
from typing import Any, cast

import aiohttp
from aiohttp.client_proto import ResponseHandler

_REMEMBERED = 32  # items remembered per connection: a misread answer is one of the last
_CONNECTIONS = 4096  # connections remembered: a run that stopped reusing them opens many


class Oversized(aiohttp.ClientError):
    """More bytes arrived for one answer than any answer may hold."""


_SERIALS = itertools.count(1)


class BoundedHandler(ResponseHandler):
    """Counts every byte that arrives for one answer: 1xx answers and header lines too.

    aiohttp skips 1xx answers and bounds each header line, but not how many 1xx answers
    come, nor their bytes: a server sending "100 Continue" without end grew a run to
    914 MB. Bytes past `limit` end the answer as a protocol error, whatever they held.
    """

    def __init__(self, *args: Any, limit: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limit = limit
        self._received = 0
        self.serial = next(_SERIALS)
        self.asked = 0  # requests sent on this connection

    def set_response_params(self, **params: Any) -> None:
        self._received = 0  # a new request on this connection: a new answer to count
        self.asked += 1
        super().set_response_params(**params)

    def data_received(self, data: bytes) -> None:
        self._received += len(data)
        if self._received > self._limit:
            if self.transport is not None:
                self.transport.close()
            self.set_exception(Oversized(f"more than {self._limit} bytes"))
            return
        super().data_received(data)


class StrictConnector(aiohttp.TCPConnector):
    """Never reuses a kept-alive connection on which an answer arrived that nobody asked for.

    aiohttp parses bytes that arrive on an idle pooled connection and hands them to the
    next request sent on it: a gateway that sends an answer twice would have it read as
    the next request's. Such a connection is closed instead, and counted.
    """

    def __init__(self, *, answer_limit: int, **options: Any) -> None:
        super().__init__(**options)
        self.unsolicited = 0
        self.reusing = True
        self.tainted: set[int] = set()  # connections on which an unasked answer arrived
        self._live: weakref.WeakSet[BoundedHandler] = weakref.WeakSet()
        self._limit = answer_limit
        self._factory = cast("functools.partial[ResponseHandler]", functools.partial(self._new))

    def _new(self) -> BoundedHandler:
        handler = BoundedHandler(loop=self._loop, limit=self._limit)
        self._live.add(handler)
        return handler

    def taint(self, protocol: Any) -> None:
        """An answer nobody asked for came on `protocol`: the last ones read on it may be
        others' answers. From now on no connection is reused, so none can be misread."""
        self.unsolicited += 1
        self.tainted.add(getattr(protocol, "serial", 0))
        # Not aiohttp's force_close: its "Connection: close" makes a copy that follows an
        # answer in the same read a parse error, where it is now found and counted.
        self.reusing = False

    def distrust(self, serial: int) -> None:
        """An answer read on reused connection `serial` was not one for its request: it may
        be a copy of an earlier one. Whatever was read on it is suspect; no more reuse."""
        self.tainted.add(serial)
        self.reusing = False

    def unverified(self, protocol: Any) -> None:
        """A reused connection closed now that reuse stopped: were its last answer a copy,
        the answer that would show it may still be on its way, so it counts as suspect."""
        if not self.reusing and getattr(protocol, "asked", 0) > 1:
            self.tainted.add(getattr(protocol, "serial", 0))

    def sweep(self) -> None:
        """Idle connections holding an answer nobody read (asked between runs of requests)."""
        for handler in list(self._live):
            if len(handler) and handler.serial not in self.tainted:
                self.taint(handler)
            elif handler.is_connected():
                self.unverified(handler)

    async def _get(self, key: Any, traces: list[Any]) -> Any:
        while True:
            connection = await super()._get(key, traces)
            protocol = connection.protocol if connection is not None else None
            if connection is None or protocol is None:
                return connection
            if not protocol.should_close and self.reusing:
                return connection
            if protocol.should_close and not len(protocol):  # not even an answer; _release
                self.taint(protocol)  # counts answers
            self.unverified(protocol)
            connection.close()

    def _release(self, key: Any, protocol: Any, *, should_close: bool = False) -> None:
        # An answer still queued when the connection is let go was read by nobody: it came
        # with the one that was asked for (aiohttp then closes the connection), or while idle.
        if len(protocol):
            self.taint(protocol)
        self.unverified(protocol)
        super()._release(key, protocol, should_close=should_close or not self.reusing)


class AnswerLedger:
    """Which items were answered on which connection, the last few of each."""

    def __init__(self) -> None:
        self._answered_on: collections.OrderedDict[int, collections.deque[object]] = (
            collections.OrderedDict()
        )

    def remember(self, connection: int, item: object) -> None:
        asked = self._answered_on.get(connection)
        if asked is None:
            asked = self._answered_on[connection] = collections.deque(maxlen=_REMEMBERED)
            if len(self._answered_on) > _CONNECTIONS:
                self._answered_on.popitem(last=False)
        asked.append(item)

    def answered_on(self, connections: set[int]) -> set[object]:
        """The items answered on `connections`, each told once."""
        found: set[object] = set()
        for serial in connections:
            found.update(self._answered_on.pop(serial, ()))
        found.discard(None)
        return found
