"""`python -m bot.web.healthcheck`: exit 0 when this container's /healthz answers 200.

The container HEALTHCHECK: python:3.11-slim has no curl, and this module imports only the stdlib.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def probe(url: str, timeout: float = 4.0) -> bool:
    """True on a 2xx; proxies from the environment are ignored (the probe is local)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            status: int = response.status
            return 200 <= status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def main() -> int:
    port = os.environ.get("WEB_PORT", "8080")
    url = os.environ.get("HEALTHCHECK_URL", f"http://127.0.0.1:{port}/healthz")
    return 0 if probe(url) else 1


if __name__ == "__main__":
    sys.exit(main())
