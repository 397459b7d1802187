"""Helpers of the test suite, not tests: shared models and data, and the jobs that tests run in
other processes (``python tests/helpers/top_examples_job.py ...``, under torchrun too)."""
