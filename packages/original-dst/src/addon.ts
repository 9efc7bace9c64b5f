import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The native function exported by build/Release/original_dst.node. */
export interface NativeAddon {
  originalDestination(fd: number): { address: string; port: number; family: number };
}

export type AddonState = { addon: NativeAddon; reason?: undefined } | { addon?: undefined; reason: string };

let state: AddonState | undefined;

/**
 * Loads the addon once, on first use, so importing this package never fails: where the addon cannot load the
 * reason is kept and reported instead. The compiled file sits in build/Release next to src/ and dist/ (both one
 * level below the package root); tsup's shims give the ESM build a __dirname.
 */
export function loadAddon(): AddonState {
  state ??= tryLoad();
  return state;
}

function tryLoad(): AddonState {
  if (process.platform !== 'linux') {
    return { reason: `SO_ORIGINAL_DST exists only on Linux (this is ${process.platform})` };
  }
  const here = moduleDir();
  if (here === undefined) {
    return { reason: 'cannot locate the native addon: no __dirname in this module format' };
  }
  const file = join(here, '..', 'build', 'Release', 'original_dst.node');
  const mod = { exports: {} as Partial<NativeAddon> };
  try {
    process.dlopen(mod, file);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).message.split('\n')[0];
    return {
      reason: `native addon ${file} did not load (${why}); it is built at install by node-gyp (needs python3, make, a C compiler): run \`npx node-gyp rebuild\` in the package directory`,
    };
  }
  if (typeof mod.exports.originalDestination !== 'function') {
    return { reason: `native addon ${file} has no originalDestination export (stale build?)` };
  }
  return { addon: mod.exports as NativeAddon };
}

/**
 * This module's directory. ESM run from source (tsx) has no __dirname, and import.meta is off-limits here (the
 * tests' CommonJS transform rejects it), so the file is read from this function's own stack frame.
 */
function moduleDir(): string | undefined {
  if (typeof __dirname !== 'undefined') return __dirname;
  const frame = new Error().stack?.split('\n').find((l) => /[/\\]addon\.[cm]?[jt]s:\d+/.test(l));
  const m = frame ? /(file:\/\/[^\s)]+|\/[^\s()]+):\d+:\d+/.exec(frame) : null;
  if (!m?.[1]) return undefined;
  return dirname(m[1].startsWith('file:') ? fileURLToPath(m[1]) : m[1]);
}
