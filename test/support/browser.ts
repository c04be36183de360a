// A browser-free user agent for journey tests: fetch with a cookie jar and
// manual redirects, plus helpers to read the pages' forms. It drives the real
// server over HTTP exactly as a browser submitting plain HTML forms would.
export interface Page {
  status: number;
  url: string;
  html: string;
  headers: Headers;
}

interface Cookie {
  name: string;
  value: string;
  path: string;
}

/** RFC 6265 §5.1.4: the directory of the request path. */
function defaultPath(requestPath: string): string {
  const slash = requestPath.lastIndexOf('/');
  return slash <= 0 ? '/' : requestPath.slice(0, slash);
}

/** RFC 6265 §5.1.4 path-match: a cookie scoped to `/interaction/abc` is not sent to `/upstream/x/callback`. */
function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true;
  return requestPath.startsWith(cookiePath) && (cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/');
}

export class Browser {
  /** By name and path, as a browser keeps them; sent only to paths they match. */
  private jar = new Map<string, Cookie>();

  /** `headers`: sent with every request (a browser's User-Agent). */
  constructor(
    readonly base: string,
    private readonly headers: Record<string, string> = {},
  ) {}

  /** Puts a cookie in the jar as if the server had set it (a made-up value, in tests of what the server trusts). */
  setCookie(name: string, value: string, path = '/') {
    this.jar.set(`${name}\0${path}`, { name, value, path });
  }

  cookieNames(): string[] {
    return [...new Set([...this.jar.values()].map((c) => c.name))];
  }

  /** The value of a cookie by name (the first kept), or undefined. */
  cookieValue(name: string): string | undefined {
    return [...this.jar.values()].find((c) => c.name === name)?.value;
  }

  private store(res: Response, url: URL) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const pathAttribute = attributes
        .map((a) => a.trim())
        .find((a) => /^path=/i.test(a))
        ?.slice(5);
      const path = pathAttribute?.startsWith('/') ? pathAttribute : defaultPath(url.pathname);
      const key = `${name}\0${path}`;
      if (!value || /max-age=0|expires=thu, 01 jan 1970/i.test(line)) this.jar.delete(key);
      else this.jar.set(key, { name, value, path });
    }
  }

  private cookieHeader(url: URL): string {
    return [...this.jar.values()]
      .filter((c) => pathMatches(url.pathname, c.path))
      .sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  /** One request, no redirect following. */
  async request(url: string, init: RequestInit = {}): Promise<Page> {
    const target = new URL(url, this.base);
    const full = target.href;
    const headers = new Headers(init.headers);
    for (const [name, value] of Object.entries(this.headers)) if (!headers.has(name)) headers.set(name, value);
    const cookies = full.startsWith(this.base) ? this.cookieHeader(target) : '';
    if (cookies) headers.set('cookie', cookies);
    const res = await fetch(full, { ...init, headers, redirect: 'manual' });
    if (full.startsWith(this.base)) this.store(res, target);
    return { status: res.status, url: full, html: await res.text(), headers: res.headers };
  }

  /**
   * Follows redirects on this server. Stops at a page, or at a redirect
   * leaving the server (e.g. to the relying party's redirect URI), whose
   * Location is then `url`.
   */
  async follow(page: Page): Promise<Page> {
    let current = page;
    for (let i = 0; i < 20 && current.status >= 300 && current.status < 400; i++) {
      const location = new URL(current.headers.get('location')!, current.url).href;
      if (!location.startsWith(this.base)) return { ...current, url: location };
      current = await this.request(location);
    }
    return current;
  }

  async get(url: string): Promise<Page> {
    return this.follow(await this.request(url));
  }

  /** Posts a urlencoded form (values may be arrays: repeated fields) and follows redirects. */
  async post(url: string, fields: Record<string, string | string[]>, headers: Record<string, string> = {}): Promise<Page> {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(fields)) for (const item of [v].flat()) body.append(k, item);
    return this.follow(await this.request(url, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } }));
  }

  async postRaw(url: string, body: string | Uint8Array, contentType: string): Promise<Page> {
    return this.follow(await this.request(url, { method: 'POST', body: body as BodyInit, headers: { 'content-type': contentType } }));
  }
}

/** The value of the page's hidden CSRF input. */
export function csrfOf(page: Page): string {
  const m = /name="csrf" value="([^"]+)"/.exec(page.html);
  if (!m) throw new Error(`no csrf token on page ${page.url} (${page.status}):\n${page.html.slice(0, 500)}`);
  return m[1]!;
}

/** The action of the form marked with data-testid (or the first form). */
export function actionOf(page: Page, testid?: string): string {
  const re = testid ? new RegExp(`<form[^>]*action="([^"]+)"[^>]*data-testid="${testid}"`) : /<form[^>]*action="([^"]+)"/;
  const m = re.exec(page.html);
  if (!m) throw new Error(`no form ${testid ?? ''} on page ${page.url} (${page.status}):\n${page.html.slice(0, 800)}`);
  return m[1]!.replace(/&amp;/g, '&');
}

export function testIds(page: Page): string[] {
  return [...page.html.matchAll(/data-testid="([^"]+)"/g)].map((m) => m[1]!);
}

export function textOf(page: Page, testid: string): string | undefined {
  const m = new RegExp(`data-testid="${testid}"[^>]*>([^<]*)<`).exec(page.html);
  return m?.[1];
}
