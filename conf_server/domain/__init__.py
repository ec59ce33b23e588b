"""Pure product logic: IVR, meetings, policies. No I/O, no clocks (tests/test_architecture.py)."""
