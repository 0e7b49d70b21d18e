"""The job's outputs: tables, summary, change feed, earlier answers, sinks and upgrades."""
