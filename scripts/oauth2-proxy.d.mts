/** Builds oauth2-proxy into .cache/ once per version (Go needed); returns the binary. */
export declare function ensureOauth2Proxy(): string;
export declare const oauth2ProxyBinary: string;
export declare const OAUTH2_PROXY_VERSION: string;
