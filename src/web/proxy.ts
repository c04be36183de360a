/**
 * The client's address behind reverse proxies (docs/deployment.md).
 *
 * `X-Forwarded-For` is a list each proxy appends to; everything left of what
 * our own proxies wrote is the client's claim and worth nothing. So the
 * address is found by walking from the right: past the configured number of
 * proxy hops, or past every address inside the configured proxy ranges. The
 * first address left over is the client.
 */
import { BlockList, isIP } from 'node:net';
import type { Context, Next } from 'koa';

/**
 * Which proxies are trusted: none (`false`), the number of proxy hops in
 * front of the app, or the address ranges (CIDR) of the proxies.
 */
export type TrustProxy = false | number | string[];

/** `a.b.c.d`, an IPv6 address, or either with a `/prefix`; null when it is none of those. */
export function parseRange(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | null {
  const [address = '', prefixText, ...rest] = text.trim().split('/');
  const version = isIP(address);
  if (!version || rest.length) return null;
  const max = version === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^[0-9]{1,3}$/.test(prefixText)) return null;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (prefix > max) return null;
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** A forwarded or socket address as a plain IP: no port, no brackets, no IPv4-mapped prefix; null when it is not one. */
export function plainAddress(raw: string | undefined): string | null {
  if (!raw) return null;
  let text = raw.trim();
  const bracketed = /^\[([^\]]+)\](?::[0-9]+)?$/.exec(text);
  if (bracketed) text = bracketed[1]!;
  else if (/^[0-9.]+:[0-9]+$/.test(text)) text = text.slice(0, text.lastIndexOf(':'));
  const mapped = /^::ffff:([0-9.]+)$/i.exec(text);
  if (mapped && isIP(mapped[1]!) === 4) text = mapped[1]!;
  return isIP(text) ? text.toLowerCase() : null;
}

/**
 * The client's address: the socket's peer, or (when it is a trusted proxy)
 * the rightmost untrusted entry of `X-Forwarded-For`.
 */
export function clientAddress(remote: string | undefined, forwardedFor: string | undefined, trust: TrustProxy): string | null {
  const peer = plainAddress(remote);
  if (trust === false || !peer) return peer;
  const forwarded = (forwardedFor ?? '')
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  const chain = [...forwarded, peer];
  if (typeof trust === 'number') {
    // The peer is the first hop; each further hop wrote the entry left of the one it received.
    const index = Math.max(0, chain.length - 1 - trust);
    return nearestValid(chain, index);
  }
  const proxies = rangeList(trust);
  let index = chain.length - 1;
  while (index > 0) {
    const address = plainAddress(chain[index]);
    if (!address || !proxies.check(address, isIP(address) === 4 ? 'ipv4' : 'ipv6')) break;
    index -= 1;
  }
  return nearestValid(chain, index);
}

/** A garbled entry (written by a misconfigured proxy) stands for the nearest address to its right. */
function nearestValid(chain: string[], index: number): string | null {
  for (let i = index; i < chain.length; i++) {
    const address = plainAddress(chain[i]);
    if (address) return address;
  }
  return null;
}

const lists = new WeakMap<string[], BlockList>();

function rangeList(ranges: string[]): BlockList {
  let list = lists.get(ranges);
  if (!list) {
    list = new BlockList();
    for (const text of ranges) {
      const range = parseRange(text);
      if (range) list.addSubnet(range.address, range.prefix, range.family);
    }
    lists.set(ranges, list);
  }
  return list;
}

/**
 * Runs first on every request: replaces `X-Forwarded-For` by the one address
 * it yields, so Koa's `ctx.ip` (ours and the provider's, both with
 * `proxy: true` and `maxIpsCount: 1`) is that address. A request whose peer
 * is not a trusted proxy loses every `X-Forwarded-*` header, so it cannot
 * claim https or a host either.
 */
export function forwardedFor(trust: Exclude<TrustProxy, false>) {
  return async function trustedForwarding(ctx: Context, next: Next) {
    const headers = ctx.req.headers;
    const peer = plainAddress(ctx.req.socket.remoteAddress);
    const header = headers['x-forwarded-for'];
    const fromProxy = !!peer && (typeof trust === 'number' || rangeList(trust).check(peer, isIP(peer) === 4 ? 'ipv4' : 'ipv6'));
    if (!fromProxy) {
      for (const name of Object.keys(headers)) if (name.startsWith('x-forwarded-')) delete headers[name];
    }
    const address = fromProxy ? clientAddress(peer ?? undefined, Array.isArray(header) ? header.join(',') : header, trust) : peer;
    if (address) headers['x-forwarded-for'] = address;
    else delete headers['x-forwarded-for'];
    await next();
  };
}

/**
 * Runs first on every request: its host is the issuer's, whatever its `Host` or
 * `X-Forwarded-Host` header says. oidc-provider builds every URL it publishes
 * (discovery's endpoints, the redirects to the login page) from the request, so
 * a forged host would be published as the token endpoint, and a cache in front
 * would hand that document to every relying party. Over a plain http issuer
 * (development) no `X-Forwarded-Proto` turns it into https either.
 */
export function issuerHost(issuer: string) {
  const { host, protocol } = new URL(issuer);
  return function pinnedHost(ctx: Context, next: Next) {
    const headers = ctx.req.headers;
    headers.host = host;
    delete headers['x-forwarded-host'];
    if (protocol === 'http:') delete headers['x-forwarded-proto'];
    return next();
  };
}
