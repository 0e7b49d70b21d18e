"""The request gate and what it is made of: transport, pacing, retry, circuit, quota and limits."""
