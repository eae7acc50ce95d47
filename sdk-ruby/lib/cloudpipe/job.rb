# frozen_string_literal: true

require "cloudpipe_proto/v1/jobs_pb"

module Cloudpipe
  # What the server knows of a job (the SDK's own type, not the wire's).
  JobInfo = Struct.new(
    :id, :status, :name, :cmd, :image, :account, :return_code, :stdout, :stderr, :result, :reason,
    :created_at, :started_at, :finished_at, :tags,
    keyword_init: true,
  ) do
    def finished?
      Job::FINISHED.include?(status)
    end
  end

  # A submitted job.
  #
  #   job = client.shell("echo hello")
  #   job.result        # => "hello\n"
  #   job.status        # => :done
  class Job
    STATUSES = {
      WAITING: :waiting, QUEUED: :queued, PROCESSING: :processing, DONE: :done,
      ERROR: :error, KILLED: :killed, STALLED: :stalled,
    }.transform_keys { |name| :"JOB_STATUS_#{name}" }.freeze
    FINISHED = %i[done error killed stalled].freeze
    TAIL_LINES = 20

    attr_reader :id

    def initialize(transport, id, info = nil)
      @transport = transport
      @id = id
      @info = info
    end

    def self.status_of(pb_status)
      STATUSES.fetch(pb_status) { raise InvalidRequest, "unknown job status #{pb_status}: upgrade the SDK" }
    end

    def self.info_of(job)
      time = ->(stamp) { stamp && Time.at(stamp.seconds, stamp.nanos, :nsec) }
      spec = job.spec || Cloudpipe::V1::JobSpec.new
      JobInfo.new(
        id: job.id, status: status_of(job.status), name: spec.name, cmd: spec.cmd, image: spec.image,
        account: job.account, return_code: job.has_return_code? ? job.return_code : nil,
        stdout: job.stdout, stderr: job.stderr, result: job.result, reason: job.reason,
        created_at: time.call(job.created_at), started_at: time.call(job.started_at),
        finished_at: time.call(job.finished_at), tags: spec.tags.to_h,
      )
    end

    # Fetch the job's current state (a JobInfo).
    def refresh
      @info = Job.info_of(@transport.call(:jobs, :get, Cloudpipe::V1::GetJobRequest.new(id: @id)))
    end

    # The state last fetched, fetching it when none was or the job was still running.
    def info
      @info&.finished? ? @info : refresh
    end

    def status = info.status
    def stdout = info.stdout
    def stderr = info.stderr
    def return_code = info.return_code
    def reason = info.reason

    # Block until the job finishes; return its final status. Raises Timeout when it
    # still runs after `timeout` seconds.
    def wait(timeout: nil)
      return @info.status if @info&.finished?

      deadline = timeout && Retry.now + timeout
      Retry.retrying(@transport.retry_for) do
        remaining = deadline && [deadline - Retry.now, 0].max
        @transport.wait_stream(@id, remaining).each do |event|
          return refresh.status if FINISHED.include?(Job.status_of(event.status))
        end
        refresh.status # the stream ended without a final status: read it
      end
    rescue Cloudpipe::Timeout
      raise Cloudpipe::Timeout, "job #{@id} did not finish within #{timeout} s"
    end

    # Wait, then return the result (stdout, or the `file:` result) as a binary String.
    # Raises JobFailed / JobKilled / JobStalled when the job has no result.
    def result(timeout: nil)
      wait(timeout: timeout)
      current = info
      return current.result if current.status == :done

      cls = { killed: JobKilled, stalled: JobStalled }.fetch(current.status, JobFailed)
      raise cls.new(
        job_id: @id, status: current.status, reason: current.reason, return_code: current.return_code,
        stdout_tail: tail(current.stdout), stderr_tail: tail(current.stderr),
      )
    end

    # Kill the job; a finished job stays as it is.
    def kill
      @info = Job.info_of(@transport.call(:jobs, :kill, Cloudpipe::V1::KillJobRequest.new(id: @id)))
      nil
    end

    # The output as text: what exists now (stdout, then stderr), or with `follow: true`
    # every chunk as it is written until the job ends. Yields each piece, or returns
    # an Enumerator without a block.
    def logs(follow: false, &block)
      return enum_for(:logs, follow: follow) unless block

      unless follow
        current = refresh
        [current.stdout, current.stderr].each { |data| yield utf8(data) unless data.empty? }
        return
      end
      @transport.attach_stream(@id).each do |event|
        yield utf8(event.output.data) if event.event == :output
      end
    end

    def to_s = "#<Cloudpipe::Job #{@id} #{@info&.status || '?'}>"
    alias inspect to_s

    private

    def utf8(data) = data.dup.force_encoding(Encoding::UTF_8).scrub

    def tail(data) = utf8(data).lines.last(TAIL_LINES).join.chomp
  end
end
