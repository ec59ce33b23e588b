"""conf-server: the product around the SIP and media cores (domain, engine, runtime, API, store)."""

__version__ = "0.1.0"
