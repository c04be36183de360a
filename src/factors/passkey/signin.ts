/**
 * Sign in with a passkey alone (docs/passkeys.md): the login page's "Sign in
 * with a passkey" leads here, the browser offers the passkeys it holds for
 * this site (a discoverable credential), and the one the person picks names
 * the login — so someone with an employee and a manager login picks the login
 * by picking the passkey. The password step is skipped; the authenticator
 * must verify the person (fingerprint, face, PIN), so the passkey is both
 * factors and the session gets the passkey's level.
 *
 *   GET  /interaction/:uid/passkey   the page (a fresh challenge in the sign-in)
 *   POST /interaction/:uid/passkey   the answer → the end of the journey
 *   the login page                   the same request in the email field's autofill
 *
 * Refused: an unknown credential, a credential of another tenant's login, a
 * disabled login, a user handle that is not the credential's, a replayed
 * challenge, a sign count that went back; each is audited and shown on the
 * page with the way back.
 */
import type { Limiter } from '../../limits.ts';
import type { Audit } from '../../audit.ts';
import type { AccountStore, Login } from '../../storage/accounts/port.ts';
import { offersPasskeySignIn } from './offer.ts';
import { frozenOut, lockedOut, type LatchkeyError } from '../../errors.ts';
import { formFields } from '../../web/forms.ts';
import { sendPage } from '../../web/views.ts';
import { setRetryAfter } from '../../web/errors.ts';
import { saveProgress } from '../../interaction/journey.ts';
import type { JourneyPlugin } from '../../interaction/router.ts';
import { ANY_TENANT } from '../../provider/account-client.ts';
import { createAttempts } from '../attempts.ts';
import { RESPONSE_MAX_LENGTH, passkeyAmr, type CeremonyFailure, type WebAuthn } from './ceremony.ts';
import { ceremonyError, passkeyKeys } from './index.ts';

export interface PasskeySignInDeps {
  accounts: AccountStore;
  audit: Audit;
  limiter: Limiter;
  webauthn: WebAuthn;
  now: () => number;
}

/** Where the sign-in's challenge waits, in the journey's draft. */
const DRAFT = 'passkeySignIn';

type Refusal = CeremonyFailure | 'unknown_credential' | 'other_tenant' | 'disabled' | 'user_handle';

export function passkeySignIn({ accounts, audit, limiter, webauthn, now }: PasskeySignInDeps): JourneyPlugin {
  const attempts = createAttempts(limiter, passkeyKeys);

  return (router, steps) => {
    async function show(uid: string, csrf: string, draft: Record<string, unknown>, error?: LatchkeyError) {
      const { options, challenge } = await webauthn.authenticationOptions(undefined, 'required');
      draft[DRAFT] = challenge;
      return { locals: { uid, csrf, passkeyOptions: JSON.stringify(options), error }, status: error?.status ?? 200 };
    }

    router.get('/passkey', async (ctx) => {
      const { interaction, tenant } = await steps.load(ctx, 'login');
      const progress = await steps.progress(interaction);
      if (!offersPasskeySignIn(tenant)) {
        ctx.redirect(`/interaction/${interaction.uid}`);
        ctx.status = 303;
        return;
      }
      const next = { csrf: progress.csrf, draft: {} as Record<string, unknown> };
      const { locals } = await show(interaction.uid, progress.csrf, next.draft);
      await saveProgress(interaction, next);
      sendPage(ctx, 'factors/passkey/signin', locals);
    });

    router.post('/passkey', async (ctx) => {
      const { interaction, tenant, progress } = await steps.loadForPost(ctx, 'login');
      const info = steps.requestInfo(ctx);
      const challenge = progress.draft?.[DRAFT];
      const refuse = async (
        reason: Refusal,
        login: Login | null,
        error: LatchkeyError = ceremonyError(reason === 'other_tenant' || reason === 'disabled' || reason === 'user_handle' ? 'unknown_credential' : reason),
      ) => {
        await audit.record({
          type: 'signin.passkey',
          outcome: 'failure',
          tenant: login?.tenant ?? (tenant.id === ANY_TENANT ? null : tenant.id),
          login: login?.id ?? null,
          ...info,
          detail: { reason },
        });
        setRetryAfter(ctx, error);
        const draft: Record<string, unknown> = {};
        const { locals, status } = await show(interaction.uid, progress.csrf, draft, error);
        await saveProgress(interaction, { csrf: progress.csrf, draft });
        sendPage(ctx, 'factors/passkey/signin', locals, status);
      };

      const { response } = formFields(ctx.request.body, [], ['csrf', 'response'], RESPONSE_MAX_LENGTH);
      const parsed = webauthn.parseAuthentication(response ?? '');
      if (!parsed) return refuse('malformed', null);
      const passkey = await accounts.getPasskey(parsed.credentialId);
      if (!passkey) return refuse('unknown_credential', null);
      const login = await accounts.getLogin(passkey.loginId);
      if (!login) return refuse('unknown_credential', null);
      if (tenant.id !== ANY_TENANT && login.tenant !== tenant.id) return refuse('other_tenant', login);
      if (login.disabled) return refuse('disabled', login);
      // A discoverable credential always names its user; it must be the one it was registered for.
      if (parsed.userHandle !== passkey.userHandle) return refuse('user_handle', login);

      let failure: CeremonyFailure = 'unverified';
      let amr: string[] = [];
      const result = await attempts.run(login, async () => {
        const checked = await webauthn.verifyAuthentication(challenge, parsed.response, passkey, true);
        if (!checked.ok) {
          failure = checked.failure;
          return false;
        }
        const a = checked.assertion;
        if (!(await accounts.recordPasskeyUse(passkey.id, { counter: passkey.counter, newCounter: a.newCounter, backedUp: a.backedUp, usedAt: new Date(now()) }))) {
          failure = 'counter';
          return false;
        }
        amr = passkeyAmr(a);
        return true;
      });
      if (!result.passed) {
        if (result.frozen) return refuse(failure, login, frozenOut());
        if (!result.evaluated || result.lockedForSeconds > 0) return refuse(failure, login, lockedOut(result.lockedForSeconds));
        return refuse(failure, login);
      }
      await audit.record({ type: 'signin.passkey', outcome: 'success', tenant: login.tenant, login: login.id, ...info, detail: { credential: passkey.id.slice(0, 12), amr } });
      return steps.signedInWithFactor(ctx, interaction, tenant, progress, login, 'passkey', amr);
    });

    return {
      /**
       * The login page offers the passkeys in the email field's autofill
       * (conditional mediation, where the browser has it; the button stays for
       * the others). Its challenge is the one the answer is checked against,
       * kept in the sign-in like the button's and claimed once: a fresh page
       * replaces it, and the passkey page's own request replaces it in turn.
       */
      async loginPage(tenant, progress) {
        if (!offersPasskeySignIn(tenant)) return {};
        const { options, challenge } = await webauthn.authenticationOptions(undefined, 'required');
        progress.draft = { ...progress.draft, [DRAFT]: challenge };
        return { passkeySignIn: true, passkeyAutofill: JSON.stringify(options) };
      },
    };
  };
}
