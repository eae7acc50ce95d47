"""gRPC wiring: servicers (thin), the auth/error interceptor, and the server."""
