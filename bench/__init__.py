"""The benchmark: how close remediator runs to a bare aiohttp floor, and how it scales.

Run with ``python -m bench`` (see ``bench.__main__``); the pure parts (payloads, rule
generation, statistics, targets, report) are unit-tested in ``tests/bench``.
"""
