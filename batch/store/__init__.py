"""The durable progress store: items, answers, rejects, the run folder and its lock."""
