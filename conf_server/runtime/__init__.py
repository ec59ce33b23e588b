"""The only asyncio code: sockets, the 20 ms clock, timers, wiring calls to the cores."""
