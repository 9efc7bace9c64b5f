#!/usr/bin/env node
import { runCli } from './cli-main.js';

runCli(process.argv.slice(2), {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
}).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`ambient-ca: unexpected failure: ${(err as Error)?.stack ?? err}\n`);
    process.exitCode = 70;
  },
);
