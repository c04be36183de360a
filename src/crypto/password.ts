import argon2 from 'argon2';
import type { Config } from '../../config/index.ts';

/** argon2id hashing for passwords and PINs (a pepper is mixed in via argon2's `secret` where given). */
export interface Hasher {
  hash(plain: string, opts?: { pepper?: boolean }): Promise<string>;
  /** False for a wrong value or a malformed hash; never throws on bad input. */
  verify(hash: string, plain: string, opts?: { pepper?: boolean }): Promise<boolean>;
  /** Costs the same as a verification; used when there is nothing to verify (no enumeration by timing). */
  dummyVerify(plain: string): Promise<void>;
}

export async function createHasher(params: Config['argon2'], pepper: string): Promise<Hasher> {
  const options = { type: argon2.argon2id as 2, memoryCost: params.memoryCost, timeCost: params.timeCost, parallelism: params.parallelism };
  const secret = Buffer.from(pepper);
  const dummyHash = await argon2.hash('latchkey-dummy-password', options);
  return {
    hash: (plain, opts) => argon2.hash(plain, { ...options, ...(opts?.pepper ? { secret } : {}) }),
    async verify(hash, plain, opts) {
      try {
        return await argon2.verify(hash, plain, opts?.pepper ? { secret } : {});
      } catch {
        return false;
      }
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
