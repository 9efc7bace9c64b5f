/** SETTINGS (RFC 9113 §6.5): defaults, our advertisement, validation of the peer's. */
import { HboneError } from '../errors.js';
import { DEFAULT_WINDOW, MAX_MAX_FRAME_SIZE, MAX_WINDOW, MIN_MAX_FRAME_SIZE, SettingId } from './constants.js';
import { H2_ERROR, type H2Settings } from './types.js';

/** What RFC 9113 says a peer uses until it hears otherwise. */
export function protocolDefaults(): H2Settings {
  return {
    headerTableSize: 4096,
    enablePush: true,
    maxConcurrentStreams: 2 ** 31 - 1,
    initialWindowSize: DEFAULT_WINDOW,
    maxFrameSize: MIN_MAX_FRAME_SIZE,
    maxHeaderListSize: 2 ** 31 - 1,
    enableConnectProtocol: false,
  };
}

/** Our settings: protocol defaults, no push, a 64 KiB header list limit, then the caller's overrides. */
export function localSettings(overrides: Partial<H2Settings> | undefined): H2Settings {
  const s: H2Settings = { ...protocolDefaults(), enablePush: false, maxHeaderListSize: 65536 };
  for (const [key, value] of Object.entries(overrides ?? {})) {
    if (value !== undefined) (s as unknown as Record<string, unknown>)[key] = value;
  }
  s.enablePush = false;
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new HboneError('ERR_HBONE_INVALID_OPTION', `HTTP/2 settings: ${what}`);
  };
  const isUint = (n: number, max: number) => Number.isInteger(n) && n >= 0 && n <= max;
  check(isUint(s.headerTableSize, 2 ** 32 - 1), 'headerTableSize must be an integer 0..2^32-1');
  check(isUint(s.maxConcurrentStreams, 2 ** 32 - 1), 'maxConcurrentStreams must be an integer 0..2^32-1');
  check(isUint(s.initialWindowSize, MAX_WINDOW), 'initialWindowSize must be an integer 0..2^31-1');
  check(
    isUint(s.maxFrameSize, MAX_MAX_FRAME_SIZE) && s.maxFrameSize >= MIN_MAX_FRAME_SIZE,
    'maxFrameSize must be an integer 16384..16777215',
  );
  check(isUint(s.maxHeaderListSize, 2 ** 32 - 1), 'maxHeaderListSize must be an integer 0..2^32-1');
  return s;
}

/** The SETTINGS payload announcing `s` (only what differs from the protocol defaults, plus ENABLE_PUSH=0). */
export function encodeSettings(s: H2Settings, role: 'client' | 'server'): Buffer {
  const d = protocolDefaults();
  const entries: Array<[number, number]> = [];
  if (s.headerTableSize !== d.headerTableSize) entries.push([SettingId.HEADER_TABLE_SIZE, s.headerTableSize]);
  if (role === 'client') entries.push([SettingId.ENABLE_PUSH, 0]);
  if (s.maxConcurrentStreams !== d.maxConcurrentStreams) {
    entries.push([SettingId.MAX_CONCURRENT_STREAMS, s.maxConcurrentStreams]);
  }
  if (s.initialWindowSize !== d.initialWindowSize) entries.push([SettingId.INITIAL_WINDOW_SIZE, s.initialWindowSize]);
  if (s.maxFrameSize !== d.maxFrameSize) entries.push([SettingId.MAX_FRAME_SIZE, s.maxFrameSize]);
  if (s.maxHeaderListSize !== d.maxHeaderListSize) entries.push([SettingId.MAX_HEADER_LIST_SIZE, s.maxHeaderListSize]);
  if (s.enableConnectProtocol && role === 'server') entries.push([SettingId.ENABLE_CONNECT_PROTOCOL, 1]);
  const out = Buffer.allocUnsafe(entries.length * 6);
  entries.forEach(([id, value], i) => {
    out.writeUInt16BE(id, i * 6);
    out.writeUInt32BE(value, i * 6 + 2);
  });
  return out;
}

function settingsError(h2Code: number, message: string): HboneError {
  return new HboneError('ERR_H2_PROTOCOL', `SETTINGS: ${message}`, { h2Code });
}

/**
 * Applies a SETTINGS payload to a copy of `current`; throws HboneError (PROTOCOL_ERROR / FLOW_CONTROL_ERROR)
 * for any value RFC 9113 §6.5.2 forbids. Unknown identifiers are ignored. Nothing is applied on error.
 */
export function decodeSettings(payload: Buffer, current: H2Settings, receiverRole: 'client' | 'server'): H2Settings {
  const s = { ...current };
  for (let off = 0; off + 6 <= payload.length; off += 6) {
    const id = payload.readUInt16BE(off);
    const value = payload.readUInt32BE(off + 2);
    switch (id) {
      case SettingId.HEADER_TABLE_SIZE:
        s.headerTableSize = value;
        break;
      case SettingId.ENABLE_PUSH:
        if (value > 1) throw settingsError(H2_ERROR.PROTOCOL_ERROR, `SETTINGS_ENABLE_PUSH=${value} (must be 0 or 1)`);
        if (value === 1 && receiverRole === 'client') {
          throw settingsError(H2_ERROR.PROTOCOL_ERROR, 'a server sent SETTINGS_ENABLE_PUSH=1');
        }
        s.enablePush = value === 1;
        break;
      case SettingId.MAX_CONCURRENT_STREAMS:
        s.maxConcurrentStreams = value;
        break;
      case SettingId.INITIAL_WINDOW_SIZE:
        if (value > MAX_WINDOW) {
          throw settingsError(H2_ERROR.FLOW_CONTROL_ERROR, `SETTINGS_INITIAL_WINDOW_SIZE=${value} above 2^31-1`);
        }
        s.initialWindowSize = value;
        break;
      case SettingId.MAX_FRAME_SIZE:
        if (value < MIN_MAX_FRAME_SIZE || value > MAX_MAX_FRAME_SIZE) {
          throw settingsError(H2_ERROR.PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE=${value} outside 16384..16777215`);
        }
        s.maxFrameSize = value;
        break;
      case SettingId.MAX_HEADER_LIST_SIZE:
        s.maxHeaderListSize = value;
        break;
      case SettingId.ENABLE_CONNECT_PROTOCOL:
        if (value > 1) {
          throw settingsError(H2_ERROR.PROTOCOL_ERROR, `SETTINGS_ENABLE_CONNECT_PROTOCOL=${value} (must be 0 or 1)`);
        }
        s.enableConnectProtocol = value === 1;
        break;
      default:
        break; // unknown settings MUST be ignored (§6.5.2)
    }
  }
  return s;
}
