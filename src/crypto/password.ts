import argon2 from 'argon2';
import type { Config } from '../../config/index.ts';

/** argon2id hashing for passwords and PINs (a pepper is mixed in via argon2's `secret` where given). */
export interface Hasher {
  hash(plain: string, opts?: { pepper?: boolean }): Promise<string>;
  /**
   * False for a wrong value or a malformed hash; never throws on bad input.
   * After a match on a hash made with other parameters than the configured
   * ones, hands `rehash` the value hashed with the configured ones to store:
   * so every stored hash comes to cost what the dummy costs, and a stronger
   * imported hash cannot be told apart by timing.
   */
  verify(hash: string, plain: string, opts?: { pepper?: boolean; rehash?: (next: string) => Promise<unknown> }): Promise<boolean>;
  /** Costs the same as a verification with the configured parameters; used when there is nothing to verify (no enumeration by timing). */
  dummyVerify(plain: string): Promise<void>;
  /** True when `hash` is not an argon2id hash with exactly the configured parameters. */
  needsRehash(hash: string): boolean;
}

// One dummy hash per process and parameters: every hasher (each app a test process starts, the CLI) would
// otherwise spend a whole hash on the same value. Only its parameters set what a dummy verification costs.
const dummyHashes = new Map<string, Promise<string>>();

function dummyHashFor(options: { type: 2; memoryCost: number; timeCost: number; parallelism: number }): Promise<string> {
  const key = `${options.memoryCost}/${options.timeCost}/${options.parallelism}`;
  let dummy = dummyHashes.get(key);
  if (!dummy) {
    dummy = argon2.hash('latchkey-dummy-password', options);
    dummyHashes.set(key, dummy);
    dummy.catch(() => dummyHashes.delete(key));
  }
  return dummy;
}

export async function createHasher(params: Config['argon2'], pepper: string): Promise<Hasher> {
  const options = { type: argon2.argon2id as 2, memoryCost: params.memoryCost, timeCost: params.timeCost, parallelism: params.parallelism };
  const secret = Buffer.from(pepper);
  const dummyHash = await dummyHashFor(options);
  const hash = (plain: string, opts?: { pepper?: boolean }) => argon2.hash(plain, { ...options, ...(opts?.pepper ? { secret } : {}) });
  const needsRehash = (stored: string) => {
    try {
      return !stored.startsWith('$argon2id$') || argon2.needsRehash(stored, options);
    } catch {
      return true;
    }
  };
  return {
    hash,
    needsRehash,
    async verify(stored, plain, opts) {
      let ok: boolean;
      try {
        ok = await argon2.verify(stored, plain, opts?.pepper ? { secret } : {});
      } catch {
        return false;
      }
      if (ok && opts?.rehash && needsRehash(stored)) await opts.rehash(await hash(plain, opts));
      return ok;
    },
    async dummyVerify(plain) {
      await argon2.verify(dummyHash, plain).catch(() => false);
    },
  };
}

/**
 * True when `hash` is an argon2id PHC string at or above the configured cost.
 * The parameters may come in any order: the reference implementation writes
 * `m=…,t=…,p=…`, node-argon2 writes `m=…,p=…,t=…`.
 */
export function isStrongArgon2Hash(hash: string, params: Config['argon2']): boolean {
  const m = /^\$argon2id\$v=19\$([a-z]=\d{1,10}(?:,[a-z]=\d{1,10}){2})\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/.exec(hash);
  if (!m) return false;
  const entries = m[1]!.split(',').map((kv) => kv.split('=') as [string, string]);
  const values = new Map(entries.map(([k, v]) => [k, Number(v)]));
  if (values.size !== 3 || !values.has('m') || !values.has('t') || !values.has('p')) return false;
  return values.get('m')! >= params.memoryCost && values.get('t')! >= params.timeCost && values.get('p')! >= 1;
}
