# frozen_string_literal: true

module Cloudpipe
  # The one policy for an unavailable server, as in the Python SDK (_retry.py): try
  # again with exponential backoff (0.1 s, doubling, at most 2 s apart) until the
  # server has been unavailable for `retry_for` seconds, then raise Unavailable.
  module Retry
    MAX_WAIT = 2.0

    def self.backoff(attempt)
      [0.1 * (2**(attempt - 1)), MAX_WAIT].min
    end

    def self.now
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end

    # Yields until the block does not raise GRPC::Unavailable; other errors and the
    # last Unavailable are raised as Cloudpipe errors.
    def self.retrying(retry_for, again: true)
      started = now
      attempt = 0
      begin
        attempt += 1
        yield
      rescue GRPC::Unavailable => e
        raise Cloudpipe.from_grpc(e) if !again || now - started >= retry_for

        sleep(backoff(attempt))
        retry
      rescue GRPC::BadStatus => e
        raise Cloudpipe.from_grpc(e)
      end
    end
  end
end
