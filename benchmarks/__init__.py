"""exo-ref benchmarks: pytest-benchmark measurements and the RESULTS.md report.

The normal test run collects ``bench_*.py`` with ``--benchmark-disable``: each benchmark then runs
once, at a small size, as a correctness check. ``tox -e bench`` runs them at full size and
``python -m benchmarks.report`` turns the JSON into ``benchmarks/RESULTS.md`` and its chart
``benchmarks/results.svg``, and prints the targets' verdicts.
"""
