"""A TCP server on 127.0.0.1 that accepts connections, reads whatever comes, and never answers:
a Hub or file host that has hung. It records when each client connected and when it gave up."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Self


@dataclass
class Connection:
    opened: float  # time.monotonic()
    closed: float | None = None  # when the client hung up; None while it still waits


class SilentServer:
    def __init__(self) -> None:
        self.connections: list[Connection] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        assert self._server is not None, "SilentServer is not started"
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    @property
    def open_connections(self) -> int:
        return sum(1 for c in self.connections if c.closed is None)

    async def start(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_for_connection(self, timeout: float = 30) -> Connection:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while not self.connections:
            if time.monotonic() > deadline:
                raise TimeoutError("nobody connected to the silent server")
            await asyncio.sleep(0.05)
        return self.connections[-1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = Connection(time.monotonic())
        self.connections.append(connection)
        self._writers.add(writer)
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass
        finally:
            connection.closed = time.monotonic()
            self._writers.discard(writer)
            writer.close()
