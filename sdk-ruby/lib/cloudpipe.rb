# frozen_string_literal: true

# Cloudpipe for Ruby (groundwork): shell jobs over the gRPC API. See docs/ruby.md.
#
#   require "cloudpipe"
#   client = Cloudpipe::Client.new("localhost:50051", api_key: "...")
#   client.shell("echo hello").result   # => "hello\n"
$LOAD_PATH.unshift(__dir__) unless $LOAD_PATH.include?(__dir__)

require "cloudpipe/errors"
require "cloudpipe/retry"
require "cloudpipe/job"
require "cloudpipe/client"
