#!/usr/bin/env node
/**
 * `ztunnel` bin: parse flags and environment, start, drain on SIGTERM/SIGINT or /quitquitquit, exit.
 * Configuration errors print every problem and exit 2; start-up failures exit 1.
 * `ztunnel iptables install|remove ...` installs or removes the node's capture rules and exits: 2 for bad
 * arguments, 1 when an iptables command failed (iptablesMain).
 */
import { helpText, parseConfig } from './config.js';
import { ZtunnelError } from './errors.js';
import { iptablesMain } from './iptables-command.js';
import { Ztunnel } from './ztunnel.js';

async function main(): Promise<number | undefined> {
  if (process.argv[2] === 'iptables') return iptablesMain(process.argv.slice(3), process);
  let parsed: ReturnType<typeof parseConfig>;
  try {
    parsed = parseConfig(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(helpText());
    return 0;
  }
  let z: Ztunnel;
  try {
    z = await Ztunnel.start({ config: parsed.config, onExit: () => process.exit(0) });
  } catch (err) {
    const e = err as Error;
    process.stderr.write(`ztunnel: ${e.message}\n`);
    return err instanceof ZtunnelError && err.code === 'ERR_ZTUNNEL_CONFIG' ? 2 : 1;
  }
  let signals = 0;
  const stop = (signal: string) => {
    signals++;
    if (signals > 1) {
      z.logger.warn('ztunnel', 'second signal: exiting now', { signal });
      z.destroy();
      process.exit(1);
    }
    z.logger.info('ztunnel', 'signal received: draining', { signal });
    void z.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return undefined;
}

main().then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`ztunnel: unexpected error: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
