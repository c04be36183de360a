// Reading Latchkey's pages as the browser's scripts do: a form's attributes
// (the passkey forms carry their WebAuthn options in `data-options`), and the
// one-page checks the path drivers share.
import { testIds, type Page } from '../../test/support/browser.ts';

const unescape = (v: string) =>
  v
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

/** The attributes of the `<form … data-testid="testid">` tag, unescaped; null when the page has no such form. */
export function formAttributes(page: Page, testid: string): Record<string, string> | null {
  const tag = new RegExp(`<form\\b[^>]*data-testid="${testid}"[^>]*>`).exec(page.html)?.[0];
  if (!tag) return null;
  return Object.fromEntries([...tag.matchAll(/([a-z-]+)="([^"]*)"/g)].map((m) => [m[1]!, unescape(m[2]!)]));
}

/** The WebAuthn options of the passkey form `testid` (its `data-options`, what passkey.js hands the browser). */
export function passkeyOptions<T>(page: Page, testid: string): T {
  const options = formAttributes(page, testid)?.['data-options'];
  if (!options) throw unexpected(page, `the passkey form ${testid}`);
  return JSON.parse(options) as T;
}

export function has(page: Page, testid: string): boolean {
  return testIds(page).includes(testid);
}

export function unexpected(page: Page, wanted: string): Error {
  const error = /data-testid="error"[^>]*>([\s\S]*?)<\/p>/.exec(page.html)?.[1]?.replace(/<[^>]+>/g, '') ?? '';
  return new Error(`expected ${wanted}, got ${page.status} ${page.url}${error ? ` (error: ${error.trim()})` : ''}\n${page.html.slice(0, 600)}`);
}
