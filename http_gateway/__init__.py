"""HTTP gateway wire-compatible with multyvac 0.5.0 (see issue: gateway)."""
