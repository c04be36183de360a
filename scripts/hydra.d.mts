/** The Hydra release the bench compares with. */
export declare const hydraVersion: string;
/** The cache folder of the build (LATCHKEY_BENCH_CACHE, else ~/.cache/latchkey-bench, + hydra-<version>). */
export declare function hydraDir(): string;
/** Builds Ory Hydra into the cache when it has none (needs Go and the Go module proxy); returns the binary. */
export declare function ensureHydra(): string;
