"""Benchmarks of jacobian_ik: one ``bench_<topic>.py`` module per topic.

``python -m bench`` (or ``make bench``) runs them all; see ``bench/__main__.py``.
"""
