"""Benchmarks of the unlock path, the footprint of one charge point, and a fleet of them.

``benchmarks/run`` runs them all and prints one table; ``docs/performance.md`` explains each
figure and what bounds it. Every load stays on 127.0.0.1, bounded in count and time.
"""
