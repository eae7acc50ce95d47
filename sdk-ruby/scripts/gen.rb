#!/usr/bin/env ruby
# frozen_string_literal: true

# Writes lib/cloudpipe_proto/ (messages and gRPC stubs) from ../protos with
# grpc_tools_ruby_protoc (Debian: ruby-grpc-tools; the well-known types it imports,
# google/protobuf/*.proto, are in libprotobuf-dev under /usr/include). The output is committed;
# `ruby scripts/gen.rb --check` regenerates into a temporary folder and fails on any
# difference (the test command runs it), like scripts/gen_protos.py --check.
require "fileutils"
require "tmpdir"

ROOT = File.expand_path("..", __dir__)
PROTOS = File.expand_path("../protos", ROOT)
TARGET = File.join(ROOT, "lib", "cloudpipe_proto")

def generate(out)
  sources = Dir.glob(File.join(PROTOS, "cloudpipe_proto", "**", "*.proto")).sort
  ok = system("grpc_tools_ruby_protoc", "-I", PROTOS, "--ruby_out=#{out}", "--grpc_out=#{out}", *sources)
  abort "grpc_tools_ruby_protoc failed (Debian: apt-get install ruby-grpc-tools libprotobuf-dev)" unless ok
end

def files(root)
  Dir.glob("**/*", base: root).select { |name| File.file?(File.join(root, name)) }.sort
end

Dir.mktmpdir("cloudpipe-gen-") do |scratch|
  generate(scratch)
  fresh = File.join(scratch, "cloudpipe_proto")
  if ARGV.include?("--check")
    names = (files(fresh) | files(TARGET)).sort
    stale = names.reject do |name|
      a = File.join(fresh, name)
      b = File.join(TARGET, name)
      File.file?(a) && File.file?(b) && File.binread(a) == File.binread(b)
    end
    abort "sdk-ruby/lib/cloudpipe_proto is stale (#{stale.join(', ')}): run ruby sdk-ruby/scripts/gen.rb" unless stale.empty?
    puts "sdk-ruby/lib/cloudpipe_proto is fresh"
  else
    FileUtils.rm_rf(TARGET)
    FileUtils.cp_r(fresh, TARGET)
    puts "wrote #{files(TARGET).size} files to sdk-ruby/lib/cloudpipe_proto"
  end
end
