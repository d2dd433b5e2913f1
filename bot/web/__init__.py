"""HTTP side of the bot: /healthz, /metrics and the webhook route on one aiohttp Application.

Kept import-free so `python -m bot.web.healthcheck` (the container HEALTHCHECK) loads only the stdlib.
"""
