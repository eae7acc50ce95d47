# frozen_string_literal: true

# Cloudpipe::Client against a real server (tests/sdk_ruby/test_ruby_sdk.py sets
# CLOUDPIPE_ADDRESS and CLOUDPIPE_API_KEY): submit, get, wait, logs, kill, list, and the
# errors a user sees.
require "minitest/autorun"
require "cloudpipe"

class TestClient < Minitest::Test
  def setup
    raise "CLOUDPIPE_ADDRESS is not set: run these tests from tests/sdk_ruby" unless ENV["CLOUDPIPE_ADDRESS"]

    @client = Cloudpipe::Client.new
  end

  def teardown
    @client.close
  end

  def test_a_shell_job_returns_its_stdout_and_its_state
    job = @client.shell("cat; echo \"-$GREETING\"", stdin: "typed", env: { GREETING: "hi" }, name: "ruby-hello",
                                                  tags: { by: "ruby" })
    assert_equal "typed-hi\n", job.result(timeout: 60)
    assert_equal :done, job.status
    assert_equal 0, job.return_code
    again = @client.get(job.id)
    assert_equal "ruby-hello", again.info.name
    assert_equal({ "by" => "ruby" }, again.info.tags)
    assert_operator again.info.finished_at, :>=, again.info.created_at
  end

  def test_a_file_result_source_and_limits
    job = @client.shell("echo ok > /tmp/r", result_source: "file:/tmp/r", cpus: 1, memory: 256 << 20, timeout: 60)
    assert_equal "ok\n", job.result(timeout: 60)
  end

  def test_a_failing_command_raises_job_failed_with_its_return_code
    error = assert_raises(Cloudpipe::JobFailed) { @client.shell("echo bad >&2; exit 3").result(timeout: 60) }
    assert_equal 3, error.return_code
    assert_equal "bad", error.stderr_tail
    assert_equal :error, error.status
  end

  def test_logs_follow_the_output_as_it_is_written
    job = @client.shell("echo first; sleep 1; echo second >&2")
    stamps = []
    pieces = job.logs(follow: true).map do |text|
      stamps << Process.clock_gettime(Process::CLOCK_MONOTONIC)
      text
    end
    assert_equal %W[first\n second\n], pieces
    assert_operator stamps[1] - stamps[0], :>=, 0.8, "the first line came before the job finished"
    assert_equal %W[first\n second\n], job.logs.to_a
  end

  def test_wait_times_out_and_kill_ends_the_job_killed
    job = @client.shell("sleep 60")
    assert_raises(Cloudpipe::Timeout) { job.wait(timeout: 0.5) }
    job.kill
    assert_equal :killed, job.wait(timeout: 60)
    assert_raises(Cloudpipe::JobKilled) { job.result }
    assert_includes @client.list(statuses: [:killed]).map(&:id), job.id
  end

  def test_data_options_reach_the_server
    url = "http://127.0.0.1:9/data.txt" # loopback: a source this server refuses to reach
    job = @client.shell("cat /in/data.txt", inputs: { "/in/data.txt" => url })
    assert_raises(Cloudpipe::JobFailed) { job.result(timeout: 60) }
    assert_match(/127\.0\.0\.1/, job.reason)
    error = assert_raises(Cloudpipe::InvalidRequest) { @client.shell("true", outputs: { "/out/" => "s3://bucket/run/" }) }
    assert_match(/storage_secret/, error.message)
    assert_raises(Cloudpipe::NotFound) { @client.shell("true", volumes: ["no-such-volume:/data"]) }
    assert_raises(Cloudpipe::NotFound) { @client.shell("true", secrets: ["NO_SUCH_SECRET"]) }
  end

  def test_errors_are_typed
    error = assert_raises(Cloudpipe::NotFound) { @client.get(987_654_321) }
    assert_equal "NOT_FOUND", error.code
    assert_raises(Cloudpipe::InvalidRequest) { @client.shell("true", result_source: "magic") }
    assert_raises(Cloudpipe::AuthError) { Cloudpipe::Client.new(api_key: "wrong").shell("true") }
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    assert_raises(Cloudpipe::Unavailable) { Cloudpipe::Client.new("127.0.0.1:9", retry_for: 0.6).get(1) }
    assert_operator Process.clock_gettime(Process::CLOCK_MONOTONIC) - started, :>=, 0.5
  end

  def test_the_same_account_sees_jobs_of_the_other_sdks
    skip "run from tests/sdk_ruby" unless ENV["CLOUDPIPE_TEST_PYTHON_JOB"]
    job = @client.get(Integer(ENV.fetch("CLOUDPIPE_TEST_PYTHON_JOB")))
    assert_equal :done, job.wait(timeout: 120)
    assert_equal "python3 -m cloudpipe_runner", job.info.cmd
  end
end
