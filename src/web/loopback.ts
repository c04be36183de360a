/**
 * A host named by its loopback address (`localhost`, `127.x.x.x`, `[::1]`):
 * a receiver on this machine, which webhooks and back-channel logouts may
 * reach over plain http. Outgoing requests elsewhere keep oidc-provider's
 * guard against special-use addresses.
 */
export const isLoopbackHost = (hostname: string) => hostname === 'localhost' || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname);
