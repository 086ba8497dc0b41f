"""The pipeline: plan, apply, coaching and sweeps.

Where the pure engine meets the connectors and the store.
"""
