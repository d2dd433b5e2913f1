"""Real bot processes for scaled end-to-end tests: front ends (``BOT_MODE=webhook``) and workers.

A scaled test must see what an operator sees: separate interpreters that share nothing but PostgreSQL
and Redis, start slowly (importing aiogram takes 3–6 s), crash (SIGKILL) or stop (SIGTERM). So each
:class:`BotProcess` is ``sys.executable -m bot [args]`` in its own session, with a minimal environment
(no key or setting from the developer's shell leaks in), a working directory without ``.env`` (the bot
reads one from the cwd or any parent), and its output in a log file the test can read and print.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import aiohttp

ROOT = Path(__file__).resolve().parents[2]

# Always set for a child: loopback is never proxied, huggingface_hub phones nowhere, logs are not buffered
# (a killed process must still have written what it did).
BASE_ENV: dict[str, str] = {
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "PYTHONUNBUFFERED": "1",
}

_LIVE: set[BotProcess] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS does not hand it out again soon)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """PATH and HOME from this process, :data:`BASE_ENV`, ``PYTHONPATH`` to this checkout, then ``extra``."""
    env = {name: os.environ[name] for name in ("PATH", "HOME") if name in os.environ}
    env.update(BASE_ENV)
    env["PYTHONPATH"] = str(ROOT)
    env.update({name: str(value) for name, value in (extra or {}).items()})
    return env


def find_dotenv(start: Path) -> Path | None:
    """The ``.env`` the bot would load from ``start`` (the cwd) or one of its parents, if any."""
    for folder in (start, *start.parents):
        candidate = folder / ".env"
        if candidate.is_file():
            return candidate
    return None


class BotProcess:
    """One ``python -m bot`` child process; always clean it up (context manager, :meth:`cleanup` or the
    ``bot_processes`` fixture — an ``atexit`` hook is the last resort).

    ``argv`` replaces the whole command line (tests of this class run a trivial script instead of the
    bot). The child leads its own process group: :meth:`kill` takes down anything it spawned too (a
    machine dying), while :meth:`terminate` signals only the main process (``docker stop``), which must
    then shut its own children down.
    """

    def __init__(
        self,
        args: Sequence[str] = (),
        *,
        cwd: Path,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        argv: Sequence[str] | None = None,
        name: str | None = None,
    ) -> None:
        self.args = list(args)
        self.argv = list(argv) if argv is not None else [sys.executable, "-m", "bot", *self.args]
        self.cwd = Path(cwd)
        self.env = child_env(env)
        self.name = name or "-".join(["bot", *self.args]) or "bot"
        self.log_path = log_path or self.cwd / f"{self.name}.log"
        self.started_at: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> BotProcess:
        """Spawn the process (returns at once; see :meth:`wait_healthy`). Refuses a cwd that sees a .env."""
        if self._proc is not None:
            raise RuntimeError(f"{self.name} was already started")
        self.cwd.mkdir(parents=True, exist_ok=True)
        dotenv = find_dotenv(self.cwd)
        if dotenv is not None:
            raise RuntimeError(f"{dotenv} would configure {self.name}: run it from a directory without .env")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started_at = time.monotonic()
        _LIVE.add(self)
        return self

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        """The exit code once the process has ended (negative: killed by that signal), else None."""
        return None if self._proc is None else self._proc.poll()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def send_signal(self, sig: int) -> None:
        """Signal the main process only (no-op once it has exited)."""
        if self.running:
            assert self._proc is not None
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(sig)

    def terminate(self) -> None:
        """SIGTERM to the main process: the orderly stop an orchestrator asks for."""
        self.send_signal(signal.SIGTERM)

    def interrupt(self) -> None:
        """SIGINT to the main process: Ctrl-C."""
        self.send_signal(signal.SIGINT)

    def kill(self) -> None:
        """SIGKILL to the whole process group: a crash with no chance to clean up."""
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)

    async def wait(self, timeout: float = 30.0) -> int:  # noqa: ASYNC109 - a deadline, as callers expect
        """Wait for the main process to exit and return its code; TimeoutError (with the log) if it won't."""
        if self._proc is None:
            raise RuntimeError(f"{self.name} is not started")
        deadline = time.monotonic() + timeout
        while (code := self._proc.poll()) is None:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.name} did not exit within {timeout}s.\n{self.log_tail()}")
            await asyncio.sleep(0.05)
        return code

    async def stop(self, timeout: float = 15.0) -> int:  # noqa: ASYNC109
        """Terminate, wait up to ``timeout``, then kill; return the exit code."""
        self.terminate()
        try:
            return await self.wait(timeout)
        except TimeoutError:
            self.kill()
            return await self.wait(5)

    def cleanup(self) -> None:
        """Kill the process group if anything is left, reap the child, close the log. Idempotent."""
        if self._proc is not None:
            self.kill()  # also reaches grandchildren that outlived the main process
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None
        _LIVE.discard(self)

    def __enter__(self) -> BotProcess:
        return self.start() if self._proc is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    async def __aenter__(self) -> BotProcess:
        return self.__enter__()

    async def __aexit__(self, *exc_info: object) -> None:
        self.cleanup()

    # ------------------------------------------------------------------ health and output

    async def wait_healthy(
        self,
        port: int,
        timeout: float = 60.0,  # noqa: ASYNC109
        *,
        path: str = "/healthz",
        host: str = "127.0.0.1",
    ) -> str:
        """Poll ``http://host:port/path`` until it answers 200; return the body.

        Fails at once (with the log) if the process exits first, and after ``timeout`` with the last
        status or connection error and the log: a front end that never becomes healthy says why.
        """
        url = f"http://{host}:{port}{path}"
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while True:
                if not self.running:
                    raise AssertionError(
                        f"{self.name} exited with {self.returncode} before {url} answered 200 ({last}).\n"
                        + self.log_tail()
                    )
                try:
                    async with http.get(url) as response:
                        body = await response.text()
                        if response.status == 200:
                            return body
                        last = f"HTTP {response.status}: {body[:200]}"
                except (aiohttp.ClientError, TimeoutError) as exc:
                    last = f"{type(exc).__name__}: {exc}"
                if time.monotonic() >= deadline:
                    raise AssertionError(
                        f"{self.name} not healthy at {url} after {timeout}s ({last}).\n" + self.log_tail()
                    )
                await asyncio.sleep(0.2)

    def log_text(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the log, labelled, for assertion messages."""
        text = self.log_text()
        shown = text[-chars:] if len(text) > chars else text
        return f"--- {self.name} log ({self.log_path}) ---\n{shown}--- end of {self.name} log ---"

    def __repr__(self) -> str:
        state = "not started" if self._proc is None else f"pid {self._proc.pid}, exit {self.returncode}"
        return f"<BotProcess {self.name} {state}>"


@atexit.register
def _kill_leftovers() -> None:
    """Last resort: no bot process outlives the test session, even after a crash in a fixture."""
    for proc in list(_LIVE):
        proc.cleanup()
