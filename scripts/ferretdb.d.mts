/** Builds FerretDB into .cache/ when it is missing or older than tools/ferretdb; returns the binary. */
export declare function ensureFerretdb(): string;
export declare const ferretdbBinary: string;
