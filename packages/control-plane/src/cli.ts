#!/usr/bin/env node
import { main } from './cli-main.js';

main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }).then(
  (code) => {
    process.exitCode = code;
    // Handles still open after a clean shutdown must not keep the process alive.
    setTimeout(() => process.exit(code), 1000).unref();
  },
  (err: Error) => {
    process.stderr.write(`ambient-control-plane: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
