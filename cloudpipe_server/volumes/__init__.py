"""Volumes: named per-account storage on the Docker engine, mounted into jobs."""
