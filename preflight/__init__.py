"""Preflight: check an RFT dataset and grader locally before a job spends money."""
