"""The generic async batch engine: inputs, outputs, limits, retries, progress, runner."""
