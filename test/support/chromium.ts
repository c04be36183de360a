// Debian's Chromium through playwright-core, for the tests that need a real
// browser (the pages run no script of ours, but the provider's form_post page
// does, under our CSP).
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** Debian's headless shell (package chromium-headless-shell), the browser the tests use. */
export const HEADLESS_SHELL = '/usr/bin/chromium-headless-shell';

/**
 * The browser the tests drive: `LATCHKEY_CHROMIUM` when given, else Debian's
 * headless shell, else the full browser (package chromium). The shell is the
 * same engine without the browser's user interface: measured side by side on
 * the browser tests, it costs about 40 % less CPU than the full browser
 * (`docs/performance.md`), with every test passing on both.
 */
export const CHROMIUM = process.env.LATCHKEY_CHROMIUM ?? (existsSync(HEADLESS_SHELL) ? HEADLESS_SHELL : '/usr/bin/chromium');

/**
 * `describe`'s skip option: a reason when Chromium is not installed, on a
 * developer's machine only. Under CI a missing browser fails the run instead:
 * a browser test that did not run must never pass for one that did.
 */
export const withoutChromium: string | false = existsSync(CHROMIUM) ? false : `no ${CHROMIUM} (apt-get install -y chromium-headless-shell)`;
if (withoutChromium && process.env.CI) throw new Error(`CI: ${withoutChromium}; the browser tests cannot be skipped here`);

/** The flags Chromium needs to run here as root, headless, without reaching out to the network. */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** A headless Chromium with a fresh temporary profile; open a context per test. `args` are added to the usual flags. */
export function launchChromium(args: string[] = []): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, ...args] });
}
