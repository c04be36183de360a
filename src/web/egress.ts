/**
 * Outgoing requests to URLs that a tenant or an app chose — webhook
 * receivers, upstream OpenID providers (discovery, key set, token and
 * userinfo endpoints), back-channel logout URIs, client key sets — never
 * reach the operator's own network (docs/security.md, "Outgoing requests").
 *
 * The rule is applied where the socket is made: an undici dispatcher whose
 * DNS lookup drops every special-use address (loopback, private, link-local
 * and the cloud metadata address, shared, multicast, IPv4 inside IPv6, …)
 * and refuses the request when none is left, so a name that resolves to an
 * internal address — also one that changes its answer between a check and
 * the request (DNS rebinding) — is never connected to. A URL naming a
 * literal address is refused before anything is sent, and every redirect
 * goes through the same dispatcher. The operator opens ranges or host names
 * for internal receivers with `OUTBOUND_ALLOW` (docs/configuration.md).
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import type { Dispatcher } from 'undici-types';
import { EgressRefused } from '../errors.ts';
import { parseRange } from './proxy.ts';

/** The kinds of special-use address, as a refused request names them. */
export type AddressRange =
  'unspecified' | 'loopback' | 'private' | 'link-local' | 'shared' | 'multicast' | 'broadcast' | 'documentation' | 'benchmarking' | 'translation' | 'reserved';

export const ADDRESS_RANGES: readonly AddressRange[] = [
  'unspecified',
  'loopback',
  'private',
  'link-local',
  'shared',
  'multicast',
  'broadcast',
  'documentation',
  'benchmarking',
  'translation',
  'reserved',
];

// The IANA special-purpose registries (RFC 6890 and its updates), most specific first where they overlap.
const IPV4: [string, number, AddressRange][] = [
  ['255.255.255.255', 32, 'broadcast'],
  ['0.0.0.0', 8, 'unspecified'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'shared'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'reserved'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.31.196.0', 24, 'reserved'],
  ['192.52.193.0', 24, 'reserved'],
  ['192.88.99.0', 24, 'translation'],
  ['192.168.0.0', 16, 'private'],
  ['192.175.48.0', 24, 'reserved'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'],
];

// IPv4-mapped addresses (::ffff:0:0/96) are judged by the IPv4 address inside; everything outside 2000::/3 (global
// unicast) is special-use too.
const IPV6: [string, number, AddressRange][] = [
  ['::', 128, 'unspecified'],
  ['::1', 128, 'loopback'],
  ['64:ff9b::', 96, 'translation'],
  ['64:ff9b:1::', 48, 'translation'],
  ['100::', 64, 'reserved'],
  ['2001::', 32, 'translation'],
  ['2001:2::', 48, 'benchmarking'],
  ['2001::', 23, 'reserved'],
  ['2001:db8::', 32, 'documentation'],
  ['2002::', 16, 'translation'],
  ['2620:4f:8000::', 48, 'reserved'],
  ['3fff::', 20, 'documentation'],
  ['fc00::', 7, 'private'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'private'],
  ['ff00::', 8, 'multicast'],
];

function v4Bits(address: string): bigint {
  return address.split('.').reduce((n, octet) => (n << 8n) | BigInt(Number(octet)), 0n);
}

function v6Bits(address: string): bigint {
  let text = address;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const v4 = v4Bits(dotted[1]!);
    text = `${text.slice(0, dotted.index)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.reduce((n, group) => (n << 16n) | BigInt(parseInt(group, 16)), 0n);
}

const within = (bits: bigint, prefix: bigint, length: number, width: number) => bits >> BigInt(width - length) === prefix >> BigInt(width - length);

const IPV4_TABLE = IPV4.map(([a, len, range]) => ({ prefix: v4Bits(a), len, range }));
const IPV6_TABLE = IPV6.map(([a, len, range]) => ({ prefix: v6Bits(a), len, range }));
const MAPPED = v6Bits('::ffff:0:0');
const GLOBAL_UNICAST = v6Bits('2000::');

/** An address as written in a URL or by a resolver: no brackets, no zone (`%eth0`), an IPv4-mapped one as its IPv4 address. */
export function plainIp(text: string): { address: string; family: 4 | 6 } | null {
  const bare = text.replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, '');
  const version = isIP(bare);
  if (version === 4) return { address: bare, family: 4 };
  if (version !== 6) return null;
  const bits = v6Bits(bare.toLowerCase());
  if (bits >> 32n === MAPPED >> 32n) {
    const v4 = Number(bits & 0xffffffffn);
    return { address: [v4 >>> 24, (v4 >>> 16) & 255, (v4 >>> 8) & 255, v4 & 255].join('.'), family: 4 };
  }
  return { address: bare.toLowerCase(), family: 6 };
}

/** The special-use range an IP address is in, or null for a public address (and for text that is not an address). */
export function specialUse(text: string): AddressRange | null {
  const ip = plainIp(text);
  if (!ip) return null;
  if (ip.family === 4) {
    const bits = v4Bits(ip.address);
    return IPV4_TABLE.find((r) => within(bits, r.prefix, r.len, 32))?.range ?? null;
  }
  const bits = v6Bits(ip.address);
  return IPV6_TABLE.find((r) => within(bits, r.prefix, r.len, 128))?.range ?? (within(bits, GLOBAL_UNICAST, 3, 128) ? null : 'reserved');
}

/** A host name in `OUTBOUND_ALLOW`: letters, digits, dots and dashes (matched whole, without a trailing dot). */
export const ALLOWED_NAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?)*$/;

const hostOf = (hostname: string) =>
  hostname
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.$/, '');

type Lookup = (hostname: string, options: LookupOptions & { all: true }, callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;

/**
 * The most an answer from outside may hold (a provider's discovery, token or
 * userinfo answer, a key set, a webhook receiver's reply): each is a few KB,
 * and reading one of hundreds of MB whole would fill the memory every
 * tenant's requests share. Past it, reading the body fails (`EgressTooLarge`).
 */
export const MAX_RESPONSE_BYTES = 1024 * 1024;

/** Why reading an outside answer's body failed: it was longer than `MAX_RESPONSE_BYTES`. */
export class EgressTooLarge extends Error {
  override name = 'EgressTooLarge';
  constructor(readonly max: number) {
    super(`the answer is longer than ${max} bytes`);
  }
}

/** Statuses whose answers have no body (a Response cannot be made with one). */
const NO_BODY = new Set([101, 103, 204, 205, 304]);

/** The same answer, whose body stops with `EgressTooLarge` past `max` bytes, however its length is (or is not) declared. */
function capped(response: Response, max: number): Response {
  if (!response.body || NO_BODY.has(response.status)) return response;
  if (Number(response.headers.get('content-length')) > max) {
    void response.body.cancel().catch(() => undefined);
    throw new TypeError('fetch failed', { cause: new EgressTooLarge(max) });
  }
  let read = 0;
  const body = response.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        read += chunk.byteLength;
        if (read > max) controller.error(new EgressTooLarge(max));
        else controller.enqueue(chunk);
      },
    }),
  );
  const limited = new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  // What a Response made here cannot be given: where the answer came from.
  Object.defineProperty(limited, 'url', { value: response.url });
  Object.defineProperty(limited, 'redirected', { value: response.redirected });
  return limited;
}

export interface EgressOptions {
  /** What the operator opened (`OUTBOUND_ALLOW`): address ranges (CIDR or single addresses) and host names. */
  allow: readonly string[];
  /** The resolver; default the system's (`dns.lookup`). */
  lookup?: Lookup;
}

export interface Egress {
  /** Why a connection to `address` is refused — its special-use range — or null. A `host` the operator opened is never refused. */
  refusal(address: string, host?: string): AddressRange | null;
  /** The early check of a URL (on saving it): the range of the literal address it names, or null (a name is checked when connecting). */
  refusedUrl(url: string | URL): AddressRange | null;
  /** `fetch` through the guarded dispatcher; a refused request rejects like an unreachable one, with `EgressRefused` as its cause. */
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

interface AgentConstructor {
  new (options: { connect: { lookup: unknown } }): Dispatcher & { dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandlers): boolean };
}

/** The undici Agent that Node's own fetch uses (as oidc-provider finds it): no second copy of undici. */
function nodeAgent(): AgentConstructor {
  void Response; // undici, and with it the global dispatcher, loads on first use of a fetch global.
  const global = globalThis as Record<symbol, unknown>;
  const dispatcher = (global[Symbol.for('undici.globalDispatcher.2')] ?? global[Symbol.for('undici.globalDispatcher.1')]) as { constructor?: AgentConstructor } | undefined;
  if (!dispatcher?.constructor) throw new Error("Node's fetch dispatcher was not found: outgoing requests cannot be guarded");
  return dispatcher.constructor;
}

/** The refusal an outgoing request failed with (fetch wraps it as the cause of a TypeError), or null. */
export function egressRefusal(err: unknown): EgressRefused | null {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) if (e instanceof EgressRefused) return e;
  return null;
}

export function createEgress({ allow, lookup = dnsLookup as unknown as Lookup }: EgressOptions): Egress {
  const ranges = new BlockList();
  const names = new Set<string>();
  for (const entry of allow) {
    const range = parseRange(entry);
    if (range) {
      const ip = plainIp(range.address)!;
      // An IPv4-mapped range opens the IPv4 one (addresses are compared as IPv4).
      const prefix = ip.family === 4 && range.family === 'ipv6' ? Math.max(0, range.prefix - 96) : range.prefix;
      ranges.addSubnet(ip.address, prefix, ip.family === 4 ? 'ipv4' : 'ipv6');
    } else names.add(hostOf(entry));
  }

  const refusal = (address: string, host?: string): AddressRange | null => {
    if (host !== undefined && names.has(hostOf(host))) return null;
    const ip = plainIp(address);
    if (!ip) return 'reserved';
    const range = specialUse(ip.address);
    if (!range || ranges.check(ip.address, ip.family === 4 ? 'ipv4' : 'ipv6')) return null;
    return range;
  };

  function guardedLookup(hostname: string, options: LookupOptions, callback: (...args: unknown[]) => void) {
    lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err);
      const open = addresses.filter((a) => !refusal(a.address, hostname));
      if (!open.length) {
        const first = addresses[0];
        return callback(new EgressRefused(first ? refusal(first.address, hostname)! : 'reserved', hostname, first?.address ?? ''));
      }
      if (options.all) return callback(null, open);
      return callback(null, open[0]!.address, open[0]!.family);
    });
  }

  const Agent = nodeAgent();
  class GuardedAgent extends Agent {
    override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandlers): boolean {
      // A literal address is never looked up: it is judged here, before a socket exists (also after a redirect).
      const host = new URL(String(options.origin)).hostname;
      const range = plainIp(host) ? refusal(host, host) : null;
      if (range) {
        handler.onError!(new EgressRefused(range, hostOf(host), hostOf(host)));
        return true;
      }
      return super.dispatch(options, handler);
    }
  }
  const dispatcher = new GuardedAgent({ connect: { lookup: guardedLookup } });
  // A second look at the socket actually connected, should any path have bypassed the lookup.
  dispatcher.on('connect', (origin, targets) => {
    const client = targets[targets.length - 1] as object | undefined;
    const symbol = client && Object.getOwnPropertySymbols(client).find((s) => s.description === 'socket');
    const socket = symbol ? ((client as Record<symbol, unknown>)[symbol] as { remoteAddress?: string; destroy(err: Error): void } | undefined) : undefined;
    const host = new URL(String(origin)).hostname;
    const range = socket?.remoteAddress ? refusal(socket.remoteAddress, host) : null;
    if (range) socket!.destroy(new EgressRefused(range, hostOf(host), socket!.remoteAddress!));
  });

  return {
    refusal,
    refusedUrl(url) {
      const host = (typeof url === 'string' ? new URL(url) : url).hostname;
      return plainIp(host) ? refusal(host, host) : null;
    },
    fetch: async (input, init = {}) => capped(await globalThis.fetch(input, { ...init, dispatcher } as RequestInit), MAX_RESPONSE_BYTES),
    close: () => dispatcher.close(),
  };
}

/** The stored, readable reason of a refused request (`refused: private address`); the address itself is for the log only. */
export const refusalReason = (range: AddressRange) => `refused: ${range} address`;

/** The range in a reason written by `refusalReason`, or null: pages show it in their language. */
export function refusedRange(reason: string | null | undefined): AddressRange | null {
  const m = /^refused: ([a-z-]+) address$/.exec(reason ?? '');
  return m && (ADDRESS_RANGES as readonly string[]).includes(m[1]!) ? (m[1] as AddressRange) : null;
}
