import { randomFillSync } from 'node:crypto';
import { HboneError } from './errors.js';

/** A W3C Trace Context `traceparent`: `00-<trace id, 32 hex>-<parent id, 16 hex>-<flags, 2 hex>`. */
export interface Traceparent {
  version: number;
  /** 32 lowercase hex digits, not all zero. */
  traceId: string;
  /** 16 lowercase hex digits, not all zero. */
  parentId: string;
  /** Trace flags; bit 0 = sampled. */
  flags: number;
}

const TRACE_ID_RE = /^[0-9a-f]{32}$/;
const PARENT_ID_RE = /^[0-9a-f]{16}$/;
const BYTE_RE = /^[0-9a-f]{2}$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_PARENT = '0'.repeat(16);

// Random ids come from a refilled pool: one CSPRNG call per 256 tunnels rather than one per tunnel.
const pool = Buffer.alloc(24 * 256);
let poolOffset = pool.length;

/** A fresh random traceparent (version 00, flags 00), as ztunnel sends one per connection. */
export function newTraceparent(): string {
  for (;;) {
    if (poolOffset + 24 > pool.length) {
      randomFillSync(pool);
      poolOffset = 0;
    }
    const traceId = pool.toString('hex', poolOffset, poolOffset + 16);
    const parentId = pool.toString('hex', poolOffset + 16, poolOffset + 24);
    poolOffset += 24;
    // All-zero ids are invalid; with 2^-64 odds this loop practically never repeats.
    if (traceId !== ZERO_TRACE && parentId !== ZERO_PARENT) return `00-${traceId}-${parentId}-00`;
  }
}

/** Formats a traceparent. Throws ERR_HBONE_BAD_HEADER on invalid ids (wrong length, upper case, all zero). */
export function buildTraceparent(t: { traceId: string; parentId: string; flags?: number }): string {
  checkIds(t.traceId, t.parentId);
  const flags = t.flags ?? 0;
  if (!Number.isInteger(flags) || flags < 0 || flags > 255) throw bad(`traceparent flags ${flags} must be 0..255`);
  return `00-${t.traceId}-${t.parentId}-${flags.toString(16).padStart(2, '0')}`;
}

/**
 * Parses a traceparent per W3C Trace Context §3.2 / §4.3: version 00 exactly, later versions
 * (01..fe) may append `-…` fields we ignore; version ff and all-zero ids are invalid.
 * Throws ERR_HBONE_BAD_HEADER.
 */
export function parseTraceparent(value: string): Traceparent {
  if (typeof value !== 'string') throw bad('traceparent must be a string');
  const v = value.trim();
  const version = v.slice(0, 2);
  if (!BYTE_RE.test(version) || version === 'ff') throw bad(`traceparent ${short(v)} has an invalid version`);
  if (version === '00' ? v.length !== 55 : v.length < 55 || (v.length > 55 && v[55] !== '-')) {
    throw bad(`traceparent ${short(v)} must be 00-<32 hex>-<16 hex>-<2 hex>`);
  }
  if (v[2] !== '-' || v[35] !== '-' || v[52] !== '-')
    throw bad(`traceparent ${short(v)} must be 00-<32 hex>-<16 hex>-<2 hex>`);
  const traceId = v.slice(3, 35);
  const parentId = v.slice(36, 52);
  const flags = v.slice(53, 55);
  checkIds(traceId, parentId);
  if (!BYTE_RE.test(flags)) throw bad(`traceparent ${short(v)} has invalid flags`);
  return { version: Number.parseInt(version, 16), traceId, parentId, flags: Number.parseInt(flags, 16) };
}

function checkIds(traceId: string, parentId: string): void {
  if (!TRACE_ID_RE.test(traceId)) throw bad(`trace id ${short(traceId)} must be 32 lowercase hex digits`);
  if (traceId === ZERO_TRACE) throw bad('trace id is all zeros, which W3C Trace Context forbids');
  if (!PARENT_ID_RE.test(parentId)) throw bad(`parent id ${short(parentId)} must be 16 lowercase hex digits`);
  if (parentId === ZERO_PARENT) throw bad('parent id is all zeros, which W3C Trace Context forbids');
}

function short(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}

function bad(message: string): HboneError {
  return new HboneError('ERR_HBONE_BAD_HEADER', message);
}
