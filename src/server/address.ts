/** The listen address of the registry: `host:port`, `[v6]:port`, or a host alone (port 5000). */
import { UsageError } from '../errors.ts';
import { DEFAULT_PORT } from './server.ts';

/** Splits a listen address; an unusable one is a UsageError naming what is wrong with it. */
export function parseAddr(addr: string): { host: string; port: number } {
  const bad = (why: string) => new UsageError(`addr ${JSON.stringify(addr)}: ${why}`, { option: 'addr' });
  let host: string;
  let port: string | undefined;
  if (addr.startsWith('[')) {
    const end = addr.indexOf(']');
    if (end < 0) throw bad(`an IPv6 address opened with '[' is not closed`);
    host = addr.slice(1, end);
    const rest = addr.slice(end + 1);
    if (rest !== '' && !rest.startsWith(':')) throw bad('expected [ADDRESS]:PORT');
    port = rest === '' ? undefined : rest.slice(1);
  } else {
    const colon = addr.lastIndexOf(':');
    if (colon >= 0 && addr.indexOf(':') !== colon) throw bad('write an IPv6 address as [ADDRESS]:PORT');
    host = colon < 0 ? addr : addr.slice(0, colon);
    port = colon < 0 ? undefined : addr.slice(colon + 1);
  }
  if (host === '') throw bad('name the address to listen on (127.0.0.1 for this machine only)');
  const n = port === undefined ? DEFAULT_PORT : /^[0-9]{1,5}$/.test(port) ? Number(port) : NaN;
  if (!Number.isInteger(n) || n > 65535) throw bad('the port must be 0-65535');
  return { host, port: n };
}
