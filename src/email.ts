/**
 * The longest email address Latchkey takes, by every way one comes in (the
 * owner's pages, the management API, SCIM, the import, an upstream
 * provider's claim, the sign-in forms): 254 characters, the longest address
 * mail can be sent to (RFC 5321's 256-octet path, less its angle brackets).
 */
export const EMAIL_MAX = 254;
