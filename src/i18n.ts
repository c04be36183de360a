/**
 * The languages Latchkey speaks (English, Dutch). One catalogue per language,
 * `locales/{lang}.json` (nested keys), loaded once at start; i18next looks the
 * keys up, interpolates `{{values}}` and picks plural forms (`key_one`,
 * `key_other`). Values are not HTML-escaped here: the pug views escape what
 * they print. Texts never come from users; names from the store are values.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import i18next from 'i18next';
import { LOCALES_DIR as LOCALES } from './paths.ts';

export const LANGUAGES = ['en', 'nl'] as const;
export type Language = (typeof LANGUAGES)[number];
export const DEFAULT_LANGUAGE: Language = 'en';

/** Each language's own name, for the language switch. */
export const LANGUAGE_NAMES: Record<Language, string> = { en: 'English', nl: 'Nederlands' };

export type Catalogue = { [key: string]: string | Catalogue };

export function readCatalogue(lang: Language): Catalogue {
  return JSON.parse(readFileSync(join(LOCALES, `${lang}.json`), 'utf8')) as Catalogue;
}

const i18n = i18next.createInstance();
void i18n.init({
  resources: Object.fromEntries(LANGUAGES.map((lang) => [lang, { translation: readCatalogue(lang) }])),
  lng: DEFAULT_LANGUAGE,
  fallbackLng: DEFAULT_LANGUAGE,
  supportedLngs: [...LANGUAGES],
  initAsync: false,
  nsSeparator: false,
  returnNull: false,
  returnEmptyString: false,
  interpolation: { escapeValue: false },
});

/** A key of the catalogues (`login.title`) with the values it interpolates. */
export type Translate = (key: string, values?: Record<string, unknown>) => string;

const translators = new Map<Language, Translate>(
  LANGUAGES.map((lang) => {
    const t = i18n.getFixedT(lang);
    // A page asks for dozens of plain texts and i18next resolves each afresh (about 10 µs);
    // the catalogues never change after start, so a text without values is looked up once.
    const plain = new Map<string, string>();
    return [
      lang,
      (key: string, values?: Record<string, unknown>) => {
        if (values !== undefined) return String(t(key, values as never));
        let text = plain.get(key);
        if (text === undefined) plain.set(key, (text = String(t(key))));
        return text;
      },
    ];
  }),
);

export function translator(lang: Language): Translate {
  return translators.get(lang)!;
}

/** English, for logs and JSON error bodies. */
export const english = translator(DEFAULT_LANGUAGE);

/** True when `key` names a text in `lang` (no fallback). */
export function hasText(lang: Language, key: string): boolean {
  return i18n.exists(key, { lng: lang, fallbackLng: false });
}

/** The language of a BCP 47 tag we speak (`nl-NL` → `nl`), or null. */
export function languageOf(tag: unknown): Language | null {
  if (typeof tag !== 'string') return null;
  const primary = tag.trim().toLowerCase().split(/[-_]/)[0];
  return (LANGUAGES as readonly string[]).includes(primary ?? '') ? (primary as Language) : null;
}

/** The first language we speak of an OIDC `ui_locales` value (space-separated tags, by preference). */
export function fromUiLocales(value: unknown): Language | null {
  if (typeof value !== 'string') return null;
  for (const tag of value.split(' ').slice(0, 16)) {
    const lang = languageOf(tag);
    if (lang) return lang;
  }
  return null;
}
