# frozen_string_literal: true

require "securerandom"
require "cloudpipe_proto/v1/jobs_services_pb"

module Cloudpipe
  # The channel, stub, credentials and call policy that Job and Client share.
  class Transport
    attr_reader :retry_for

    def initialize(address, api_key:, account:, rpc_timeout:, retry_for:)
      @metadata = {}
      @metadata["authorization"] = "Bearer #{api_key}" unless api_key.to_s.empty?
      @metadata["x-cloudpipe-account"] = account unless account.to_s.empty?
      @rpc_timeout = rpc_timeout
      @retry_for = retry_for
      @stubs = { jobs: Cloudpipe::V1::JobService::Stub.new(address, :this_channel_is_insecure) }
    end

    # A unary call with a deadline, retried while the server is unavailable.
    def call(service, method, request, again: true)
      Retry.retrying(@retry_for, again: again) do
        @stubs.fetch(service).public_send(method, request, metadata: @metadata, deadline: Time.now + @rpc_timeout)
      end
    end

    def wait_stream(id, timeout)
      options = { metadata: @metadata }
      options[:deadline] = Time.now + timeout if timeout
      @stubs[:jobs].wait(Cloudpipe::V1::WaitJobRequest.new(id: id), **options)
    end

    def attach_stream(id)
      start = Cloudpipe::V1::AttachRequest.new(start: Cloudpipe::V1::AttachStart.new(id: id))
      @stubs[:jobs].attach([start], metadata: @metadata)
    end

    def close
      @stubs.each_value { |stub| stub.instance_variable_get(:@ch)&.close }
    end
  end

  # A connection to a Cloudpipe server. Settings come from the arguments, then the
  # environment (CLOUDPIPE_ADDRESS, CLOUDPIPE_API_KEY, CLOUDPIPE_ACCOUNT), then the
  # default address localhost:50051.
  #
  #   client = Cloudpipe::Client.new("localhost:50051", api_key: "...")
  #   job = client.shell("cat", stdin: "hi")
  #   job.result   # => "hi"
  class Client
    DEFAULT_ADDRESS = "localhost:50051"

    attr_reader :address

    def initialize(address = nil, api_key: nil, account: nil, rpc_timeout: 30, retry_for: 10)
      @address = address || ENV.fetch("CLOUDPIPE_ADDRESS", DEFAULT_ADDRESS)
      @transport = Transport.new(
        @address,
        api_key: api_key || ENV.fetch("CLOUDPIPE_API_KEY", ""),
        account: account || ENV.fetch("CLOUDPIPE_ACCOUNT", ""),
        rpc_timeout: rpc_timeout, retry_for: retry_for,
      )
    end

    # Run `cmd` with /bin/bash -c in a container; returns its Job. `timeout` is the
    # container's wall-clock limit in seconds; `memory` is in bytes. Data in and out:
    # `volumes` ["name:/path", "name:/path:ro"], `secrets` ["NAME", "NAME:/path"], and
    # `inputs` / `outputs` ({ "/in/data.csv" => "s3://bucket/key" }: fetched before the
    # job starts, uploaded after it ended done) with `storage_secret`, the name of your
    # secret holding the object store's credentials (docs/sdk.md, "Inputs and outputs").
    def shell(cmd, stdin: nil, env: {}, image: nil, name: nil, tags: {}, result_source: "stdout",
              timeout: nil, cpus: nil, memory: nil, network: false, idempotency_key: nil,
              volumes: [], secrets: [], inputs: {}, outputs: {}, storage_secret: nil)
      raise InvalidRequest, "cmd: must not be empty" if cmd.to_s.empty?

      spec = Cloudpipe::V1::JobSpec.new(
        cmd: cmd, stdin: stdin.to_s.b, env: env.transform_keys(&:to_s), image: image.to_s, name: name.to_s,
        tags: tags.transform_keys(&:to_s), result_source: result_source, result_type: :RESULT_TYPE_BINARY,
        network: network, idempotency_key: idempotency_key || SecureRandom.uuid,
        resources: Cloudpipe::V1::Resources.new(cpus: cpus.to_f, memory_bytes: memory.to_i),
        volumes: volumes.map(&:to_s), secrets: secrets.map(&:to_s),
        inputs: inputs.transform_keys(&:to_s), outputs: outputs.transform_keys(&:to_s),
        storage_secret: storage_secret.to_s,
      )
      spec.max_runtime = Google::Protobuf::Duration.new(seconds: timeout.floor, nanos: ((timeout % 1) * 1e9).round) if timeout
      # retried safely: the idempotency key makes a repeated Submit return the same job
      response = @transport.call(:jobs, :submit, Cloudpipe::V1::SubmitRequest.new(jobs: [spec]))
      Job.new(@transport, response.ids.fetch(0))
    end

    # The job with this id (NotFound if it is not in your account).
    def get(id)
      job = Job.new(@transport, id)
      job.refresh
      job
    end

    # Your jobs, newest first, optionally by name and status (:done, :error, ...).
    def list(names: [], statuses: [], limit: 100)
      pb_statuses = statuses.map { |s| Job::STATUSES.key(s) || raise(InvalidRequest, "unknown status #{s.inspect}") }
      request = Cloudpipe::V1::ListJobsRequest.new(names: names, statuses: pb_statuses, limit: limit, newest_first: true)
      @transport.call(:jobs, :list, request).jobs.map { |job| Job.new(@transport, job.id, Job.info_of(job)) }
    end

    def close
      @transport.close
    end
  end
end
