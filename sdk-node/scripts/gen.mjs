#!/usr/bin/env node
// Writes src/gen/ (TypeScript messages and @grpc/grpc-js clients) from ../protos with
// buf + ts-proto, both from this package's devDependencies. The output is committed;
// `node scripts/gen.mjs --check` regenerates into a temporary folder and fails on any
// difference (the test command runs it), like scripts/gen_protos.py --check.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, cpSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const protos = join(here, "..", "protos");
const target = join(here, "src", "gen");
const bin = join(here, "node_modules", ".bin");

// ts-proto options: grpc-js clients, Timestamps as Date, 64-bit integers as number
// (job ids stay far below 2^53; ts-proto throws rather than lose precision), oneofs as
// tagged unions, ESM imports with .js suffixes.
const TS_PROTO_OPTIONS = [
  "outputServices=grpc-js",
  "env=node",
  "esModuleInterop=true",
  "useDate=true",
  "forceLong=number",
  "oneof=unions-value",
  "importSuffix=.js",
  "useOptionals=messages",
  "exportCommonSymbols=false",
];

function generate(out) {
  const template = {
    version: "v2",
    plugins: [
      {
        local: join(bin, "protoc-gen-ts_proto"),
        out,
        opt: TS_PROTO_OPTIONS,
      },
    ],
  };
  execFileSync(join(bin, "buf"), ["generate", protos, "--template", JSON.stringify(template)], {
    cwd: here,
    stdio: ["ignore", "inherit", "inherit"],
  });
}

function files(root) {
  const found = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else found.push(relative(root, path));
    }
  };
  if (existsSync(root)) walk(root);
  return found;
}

const check = process.argv.includes("--check");
const scratch = mkdtempSync(join(tmpdir(), "cloudpipe-gen-"));
try {
  generate(scratch);
  if (check) {
    const fresh = files(scratch);
    const committed = files(target);
    const stale = [...new Set([...fresh, ...committed])].filter(
      (name) =>
        !fresh.includes(name) ||
        !committed.includes(name) ||
        !readFileSync(join(scratch, name)).equals(readFileSync(join(target, name))),
    );
    if (stale.length) {
      console.error(`sdk-node/src/gen is stale (${stale.join(", ")}): run node sdk-node/scripts/gen.mjs`);
      process.exit(1);
    }
    console.log("sdk-node/src/gen is fresh");
  } else {
    rmSync(target, { recursive: true, force: true });
    cpSync(scratch, target, { recursive: true });
    console.log(`wrote ${files(target).length} files to sdk-node/src/gen`);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
