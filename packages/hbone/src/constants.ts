/** Istio's HBONE listener port. */
export const HBONE_PORT = 15008;

/** HTTP/2 tuning Istio's ztunnel uses for HBONE (REFERENCE.md, HBONE). */
export const HBONE_STREAM_WINDOW = 4 * 1024 * 1024;
export const HBONE_CONNECTION_WINDOW = 16 * 1024 * 1024;
export const HBONE_MAX_FRAME_SIZE = 1024 * 1024;
export const HBONE_MAX_HEADER_LIST_SIZE = 64 * 1024;
/** Concurrent streams a server advertises. */
export const HBONE_SERVER_MAX_STREAMS = 200;
/** Streams a client puts on one pooled connection before opening another. */
export const HBONE_CLIENT_MAX_STREAMS = 100;

export const HBONE_PING_INTERVAL_MS = 10_000;
export const HBONE_PING_TIMEOUT_MS = 20_000;
export const HBONE_DRAIN_TIMEOUT_MS = 5_000;
export const HBONE_CONNECT_TIMEOUT_MS = 10_000;
/** Idle pooled connections are released after this long without streams. */
export const HBONE_POOL_IDLE_TIMEOUT_MS = 5 * 60_000;
/** TLS 1.3 suites Istio allows, strongest first. */
export const HBONE_CIPHERSUITES = 'TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256';
/** TCP keepalive: first probe after this long idle. */
export const TCP_KEEPALIVE_DELAY_MS = 60_000;
