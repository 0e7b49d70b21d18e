"""The run's life cycle: claim, ingest, ask, export, publish, and what it shows while it runs."""
