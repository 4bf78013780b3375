"""Take analysis: pure functions from samples to metrics, and from metrics to a verdict.

Nothing here opens a device or a database; ``recorder.verify`` is the one entry point
callers use.
"""
