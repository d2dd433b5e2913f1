"""State several bot processes must share (leases, provider cool-downs, concurrency caps, Telegram
send pacing): in Redis when REDIS_URL is set, in memory (or the database, for leases) otherwise."""
