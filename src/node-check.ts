/**
 * The Node.js release comms needs (package.json `engines`). Imported first by the library entry
 * and by bin/comms.js, so that an older Node ends with one line naming the version it needs,
 * exit 1, before any module that uses newer APIs (zstd in node:zlib, undici 8) is evaluated.
 */
export const REQUIRED_NODE = '24.15.0';

export function isSupportedNode(version: string = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const [needMajor = 0, needMinor = 0] = REQUIRED_NODE.split('.').map(Number);
  return major > needMajor || (major === needMajor && minor >= needMinor);
}

if (!isSupportedNode()) {
  process.stderr.write(`comms needs Node.js ${REQUIRED_NODE} or newer; this is Node.js ${process.version}. Install Node.js 24 LTS (https://nodejs.org/).\n`);
  process.exit(1);
}
