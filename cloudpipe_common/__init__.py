"""Plumbing shared by Cloudpipe's programs (server, auth service, gateway, SDK): the
error tree, settings from the environment, listen addresses, gRPC message limits, the
failure rate limiter and the SQLite connection helper.

It imports nothing of the other Cloudpipe packages (tests/unit/test_import_boundaries.py),
so every program may depend on it without depending on another program.
"""
