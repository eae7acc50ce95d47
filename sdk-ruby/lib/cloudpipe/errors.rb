# frozen_string_literal: true

require "grpc"

module Cloudpipe
  # Errors raised by the SDK; the same tree as the Python and Node SDKs':
  #
  #   Cloudpipe::Error
  #    ├── AuthError       credentials missing or wrong (UNAUTHENTICATED / PERMISSION_DENIED)
  #    ├── NotFound        no such job in your account
  #    ├── AlreadyExists   a saved job or schedule of that name exists already
  #    ├── InvalidRequest  the server refused the request (INVALID_ARGUMENT / FAILED_PRECONDITION)
  #    ├── Unavailable     the server cannot be reached (after retries)
  #    ├── Timeout         a deadline passed before the job finished (DEADLINE_EXCEEDED)
  #    └── JobFailed       the job ended without a result
  #         ├── JobKilled  the job was killed
  #         └── JobStalled the server lost the job's runner
  class Error < StandardError
    # The gRPC status name ("NOT_FOUND") for errors from the server, "" otherwise.
    attr_accessor :code

    def initialize(message = nil, code: "")
      super(message)
      @code = code
    end
  end

  class AuthError < Error; end
  class NotFound < Error; end
  class AlreadyExists < Error; end
  class InvalidRequest < Error; end
  class Unavailable < Error; end
  class Timeout < Error; end

  # A job ended without a result: its status, reason, return code (nil if it never
  # exited) and the last lines of its output.
  class JobFailed < Error
    attr_reader :job_id, :status, :reason, :return_code, :stdout_tail, :stderr_tail

    def initialize(job_id:, status:, reason:, return_code:, stdout_tail: "", stderr_tail: "")
      @job_id = job_id
      @status = status
      @reason = reason
      @return_code = return_code
      @stdout_tail = stdout_tail
      @stderr_tail = stderr_tail
      message = "job #{job_id} ended #{status}"
      message += ": #{reason}" unless reason.empty?
      message += "\n--- stderr (tail) ---\n#{stderr_tail}" unless stderr_tail.empty?
      super(message)
    end
  end

  class JobKilled < JobFailed; end
  class JobStalled < JobFailed; end

  codes = GRPC::Core::StatusCodes
  CODES = {
    codes::UNAUTHENTICATED => AuthError,
    codes::PERMISSION_DENIED => AuthError,
    codes::NOT_FOUND => NotFound,
    codes::ALREADY_EXISTS => AlreadyExists,
    codes::INVALID_ARGUMENT => InvalidRequest,
    codes::FAILED_PRECONDITION => InvalidRequest,
    codes::UNAVAILABLE => Unavailable,
    codes::DEADLINE_EXCEEDED => Timeout,
  }.freeze
  CODE_NAMES = codes.constants.to_h { |name| [codes.const_get(name), name.to_s] }.freeze

  # The SDK error for a failed RPC.
  def self.from_grpc(error)
    name = CODE_NAMES.fetch(error.code, "UNKNOWN")
    CODES.fetch(error.code, Error).new("#{error.details} (#{name})", code: name)
  end
end
