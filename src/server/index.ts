/** The local registry (`comms serve`). */
export { startServer, checkExposure, DEFAULT_HOST, DEFAULT_PORT, DEFAULT_UPLOAD_TTL_MS, type ServerOptions, type RunningServer } from './server.ts';
