"""Job entry points of the multyvac-compatible Python 2.7 runner image."""
