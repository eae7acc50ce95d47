"""Cloudpipe control plane: gRPC services, job store, dispatcher and executors."""
