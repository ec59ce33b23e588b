"""conf-server: the product around the SIP and media cores (domain, runtime, API, store)."""

__version__ = "0.1.0"
