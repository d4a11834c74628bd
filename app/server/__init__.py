"""The companion announcement server (aiohttp), with SQLite or Redis Streams state."""
