"""Business rules (levels, limits, the fallback chain). Nothing here knows about Telegram."""
