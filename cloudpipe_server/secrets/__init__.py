"""Secrets: named per-account values, encrypted at rest, given to the jobs that name them."""
