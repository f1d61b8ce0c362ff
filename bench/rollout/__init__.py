"""bench/rollout: the 502s of a rolling update, measured behind a real nginx for each init.

Run from the repository root with ``python -m bench.rollout`` (``--help`` for the knobs).
"""
