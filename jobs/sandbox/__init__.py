"""A local emulator of KOSCOM's API for the demo, tests and benchmarks."""
