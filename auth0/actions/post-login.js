/**
 * Auth0 post-login Action: redeem an invitation.
 *
 * The invitation link sends the browser to /authorize with `invitation=<token>`. When that
 * very login completes in the browser (an interactive protocol, see INTERACTIVE_PROTOCOLS, and
 * not `prompt=none`), this Action reports it to the invites service
 * (`POST /v1/webhooks/auth0`, Standard Webhooks-signed) and copies the answer into custom
 * claims on the ID and access tokens. Without a link, two more logins are reported:
 *
 *   - an account a provisioned invitation created (`app_metadata.invites.status` is
 *     `invited`): its first login redeems that invitation by id (`invitation_id`), no token;
 *   - an account whose identity provider verified its address and that was never asked
 *     (`app_metadata.invites.claimed_at` unset): the Action asks once (`invitation.claim`)
 *     for the invitations pending for that address, then marks the account asked. Every
 *     other login sends nothing and costs nothing.
 *
 * The claims set:
 *
 *   <ns>roles             the roles the invitation granted (accepted)
 *   <ns>invitation_error  a reason code (rejected, invalid link, or service unavailable)
 *
 * where <ns> is the secret INVITES_CLAIM_NAMESPACE (default https://invites.dev/).
 *
 * The invitation never blocks a login: sign-up and sign-in work whatever the webhook says,
 * so this Action never throws and never calls api.access.deny. The token is a credential:
 * it is sent to the webhook only and never logged.
 */
const crypto = require("node:crypto");
const { Webhook } = require("standardwebhooks");

const DEFAULT_CLAIM_NAMESPACE = "https://invites.dev/";

// Auth0 ends a flow after 20 s in total, so both attempts together must stay well inside it.
const DEFAULTS = Object.freeze({
  timeoutMs: 5000,
  retryDelayMs: 300,
});

// An invitation id as the service makes them (`inv_` + 26 Crockford base32 characters).
const INVITATION_ID_PATTERN = /^inv_[0-7][0-9A-HJKMNP-TV-Z]{25}$/;
// `app_metadata.invites.status` of an account a provisioned invitation created, before its
// first login; the grant sets `active`, a refused redeem `ended` (see handle).
const STATUS_INVITED = "invited";
const STATUS_ENDED = "ended";

// Longest token value we will forward; anything longer is not one of ours.
const MAX_TOKEN_LENGTH = 1024;

// Rejection reasons are short snake_case codes (expired, revoked, stale_link, ...).
const REASON_PATTERN = /^[a-z][a-z0-9_]{0,63}$/;

const ERROR_INVALID_LINK = "invalid_link";
const ERROR_UNAVAILABLE = "unavailable";

/** The claim namespace from the secrets, always ending with a slash. */
function claimNamespace(secrets) {
  const configured = secrets && typeof secrets.INVITES_CLAIM_NAMESPACE === "string"
    ? secrets.INVITES_CLAIM_NAMESPACE.trim()
    : "";
  const ns = configured || DEFAULT_CLAIM_NAMESPACE;
  return ns.endsWith("/") ? ns : `${ns}/`;
}

/**
 * The `event.transaction.protocol` values of logins a person goes through in a browser, where
 * the invitation link's `/authorize` request can arrive. Auth0 lists every value
 * (Management API enum `EventStreamCloudEventContextTransactionProtocolEnum`, node-auth0):
 *
 *   oidc-basic-profile, oidc-implicit-profile, oidc-hybrid-profile   /authorize (code, implicit,
 *                                   hybrid): the universal login page, where the link lands
 *   samlp, wsfed                    Auth0 as a SAML / WS-Federation identity provider: a browser
 *                                   redirect to the login page too
 *
 * and the ones left out, each a credential or token exchanged by an application without the
 * login page, so no link can have brought the user there:
 *
 *   oauth2-password, oauth2-resource-owner, oauth2-resource-owner-jwt-bearer,
 *   wstrust-usernamemixed           a password (or assertion) posted by the application itself
 *   oauth2-refresh-token, oauth2-access-token, oauth2-token-exchange
 *                                   a token from an earlier login exchanged for new ones
 *   oauth2-device-code              the user confirms on another device; the polling request
 *                                   is the application's, not the link's
 *   oauth2-webauthn                 a native passkey grant, no login page
 *
 * An unknown or missing protocol is not on the list, so a protocol Auth0 adds later does not
 * redeem until it is judged and added here.
 */
const INTERACTIVE_PROTOCOLS = Object.freeze(new Set([
  "oidc-basic-profile",
  "oidc-implicit-profile",
  "oidc-hybrid-profile",
  "samlp",
  "wsfed",
]));

/**
 * Whether this post-login run is a login the user is going through in the browser right now:
 * an interactive protocol (INTERACTIVE_PROTOCOLS) that is not silent authentication
 * (`prompt=none`, a hidden frame renewing tokens from the existing session without the user).
 */
function isInteractiveLogin(event) {
  const transaction = event.transaction || {};
  if (!INTERACTIVE_PROTOCOLS.has(transaction.protocol)) return false;
  const prompts = Array.isArray(transaction.prompt) ? transaction.prompt : [];
  const query = (event.request && event.request.query) || {};
  const queryPrompts = typeof query.prompt === "string" ? query.prompt.split(/\s+/) : [];
  return !prompts.includes("none") && !queryPrompts.includes("none");
}

/** The transaction's protocol for a log line: a known-shaped name, or `none`. */
function protocolName(event) {
  const protocol = event.transaction && event.transaction.protocol;
  return typeof protocol === "string" && /^[a-z0-9-]{1,40}$/.test(protocol) ? protocol : "none";
}

/**
 * The invitation token from this login's own `/authorize` request (`event.request.query` is the
 * query of the request that started this transaction), or undefined when there is none.
 *
 * Nothing else counts: not the body of a token request, not an earlier login's query, not the
 * session. A login that rides on an existing single-sign-on session (no form, the
 * `event.authentication.methods` timestamps are the session's first sign-in) redeems only when
 * the link brought the browser to this `/authorize`, i.e. the user opened the link while signed
 * in; without it, it is an ordinary login and sends nothing.
 */
function invitationFromQuery(event) {
  const query = (event.request && event.request.query) || {};
  const value = query.invitation;
  if (value === undefined || value === null || value === "") return undefined;
  return value;
}

function isPlausibleToken(value) {
  return typeof value === "string" && value.length <= MAX_TOKEN_LENGTH && !/\s/.test(value);
}

function newMessageId() {
  return `msg_${crypto.randomBytes(16).toString("hex")}`;
}

/**
 * Sign a JSON payload as a Standard Webhooks message.
 *
 * Returns the exact body string that was signed and the headers to send with it. The
 * Python interop test calls this through scripts/sign.js, so both ends are proven to agree.
 *
 * @param {{secret: string, payload: unknown, msgId?: string, timestamp?: number|Date}} args
 *   timestamp in Unix seconds (or a Date); defaults to now.
 */
function signWebhook({ secret, payload, msgId, timestamp }) {
  const id = msgId || newMessageId();
  let seconds;
  if (timestamp instanceof Date) seconds = Math.floor(timestamp.getTime() / 1000);
  else if (timestamp === undefined || timestamp === null) seconds = Math.floor(Date.now() / 1000);
  else seconds = Math.floor(Number(timestamp));
  if (!Number.isFinite(seconds)) throw new Error("timestamp must be Unix seconds");

  const body = JSON.stringify(payload);
  const signature = new Webhook(secret).sign(id, new Date(seconds * 1000), body);
  return {
    headers: {
      "content-type": "application/json",
      "webhook-id": id,
      "webhook-timestamp": String(seconds),
      "webhook-signature": signature,
    },
    body,
  };
}

/** The login, as every webhook body reports it: the user, the connection, whether it is new. */
function loginFields(event) {
  const user = event.user || {};
  const connection = event.connection || {};
  const loginsCount = event.stats && event.stats.logins_count;
  return {
    user: {
      user_id: user.user_id,
      email: user.email,
      email_verified: user.email_verified === true,
      name: user.name,
    },
    connection: { name: connection.name, strategy: connection.strategy },
    // Auth0 counts the login in progress, so the first login after sign-up reports 1.
    is_new_user: typeof loginsCount === "number" && loginsCount <= 1,
  };
}

/** The webhook body: what the invites service needs to decide and record the redemption. */
function redeemPayload(event, token) {
  return { type: "invitation.redeem", invitation: token, ...loginFields(event) };
}

/** A provisioned account's first login: the invitation by id, from app_metadata. */
function provisionedPayload(event, invitationId) {
  return { type: "invitation.redeem", invitation_id: invitationId, ...loginFields(event) };
}

/** Ask for the invitations pending for the account's verified address. */
function claimPayload(event) {
  return { type: "invitation.claim", ...loginFields(event) };
}

/** `app_metadata.invites` (ours: written by the service's grant and by this Action), or {}. */
function invitesMetadata(event) {
  const metadata = (event.user && event.user.app_metadata) || {};
  const invites = metadata.invites;
  return invites && typeof invites === "object" && !Array.isArray(invites) ? invites : {};
}

/**
 * What this login reports, if anything: `redeem` (the link's token in this login's request),
 * `provisioned` (an account a provisioned invitation created, before it redeemed), `claim`
 * (a verified address never asked), or undefined: an ordinary login, nothing sent.
 */
function loginKind(event, token, invites) {
  if (token !== undefined) return "redeem";
  if (invites.status === STATUS_INVITED && INVITATION_ID_PATTERN.test(String(invites.invitation_id))) {
    return "provisioned";
  }
  const user = event.user || {};
  if (user.email_verified === true && typeof user.email === "string" && !invites.claimed_at) return "claim";
  return undefined;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** One POST with a deadline covering connect, headers and body. */
async function postOnce(url, signed, timeoutMs) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: signed.headers,
      body: signed.body,
      signal: controller.signal,
      redirect: "error",
    });
    const text = await response.text();
    let json;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: response.status, json };
  } catch (err) {
    const cause = (err && err.cause && err.cause.code) || (err && err.name) || "error";
    return { networkError: controller.signal.aborted ? "timeout" : String(cause) };
  } finally {
    clearTimeout(timer);
  }
}

function isTransient(result) {
  return Boolean(result.networkError) || result.status >= 500 || result.status === 429;
}

/**
 * POST the signed message, retrying once on a network error, timeout, 5xx or 429.
 *
 * The retry resends the very same message (same webhook-id and signature): if the first
 * attempt was applied and only its answer was lost, the service's replay protection answers
 * with the first result instead of redeeming twice.
 */
async function deliver(url, signed, options) {
  const first = await postOnce(url, signed, options.timeoutMs);
  if (!isTransient(first)) return { ...first, attempts: 1 };
  await sleep(options.retryDelayMs);
  const second = await postOnce(url, signed, options.timeoutMs);
  return { ...second, attempts: 2 };
}

/**
 * Map a claim's answer: {roles} when invitations were claimed (the grant marks the account
 * asked, beside what it writes), {none: true} when there were none (this Action marks it),
 * else {error} and the account is asked again at its next login.
 */
function interpretClaim(result) {
  if (result.networkError) return { error: ERROR_UNAVAILABLE, detail: result.networkError };
  const body = result.json || {};
  if (result.status === 200 && body.result === "claimed" && Array.isArray(body.invitations)) {
    const roles = new Set();
    for (const invitation of body.invitations) {
      for (const role of (invitation && Array.isArray(invitation.roles) ? invitation.roles : [])) {
        if (typeof role === "string") roles.add(role);
      }
    }
    return { roles: [...roles], detail: `claimed ${body.invitations.length}` };
  }
  if (result.status === 200 && body.result === "none") return { none: true, detail: "none" };
  return { error: ERROR_UNAVAILABLE, detail: `status=${result.status}` };
}

/** Map the webhook's answer to the claims we set: {roles} or {error}. */
function interpret(result) {
  if (result.networkError) return { error: ERROR_UNAVAILABLE, detail: result.networkError };
  const body = result.json || {};
  if (result.status === 200 && body.result === "accepted" && Array.isArray(body.roles)) {
    const roles = body.roles.filter((role) => typeof role === "string");
    return {
      roles,
      detail: `accepted invitation_id=${body.invitation_id} grant=${body.grant}`,
    };
  }
  if ((result.status === 409 || result.status === 410) && body.result === "rejected") {
    const reason = typeof body.reason === "string" && REASON_PATTERN.test(body.reason)
      ? body.reason
      : ERROR_UNAVAILABLE;
    return { error: reason, detail: `rejected status=${result.status}` };
  }
  if (result.status === 404) return { error: ERROR_INVALID_LINK, detail: "status=404" };
  if (result.status === 401) {
    return { error: ERROR_UNAVAILABLE, detail: "status=401 (check INVITES_WEBHOOK_SECRET)" };
  }
  return { error: ERROR_UNAVAILABLE, detail: `status=${result.status}` };
}

function setClaim(api, name, value) {
  api.idToken.setCustomClaim(name, value);
  api.accessToken.setCustomClaim(name, value);
}

function log(message) {
  // Auth0 keeps at most 256 characters of each console.log.
  console.log(`invites: ${message}`.slice(0, 256));
}

/**
 * The Action body, with tunable timings for tests. Never throws.
 *
 * @param {object} event Auth0 post-login event
 * @param {object} api Auth0 post-login api
 * @param {{timeoutMs?: number, retryDelayMs?: number}} [overrides]
 */
async function handle(event, api, overrides) {
  const token = invitationFromQuery(event);
  const invites = invitesMetadata(event);
  const kind = loginKind(event, token, invites);
  if (kind === undefined) return;

  let ns = DEFAULT_CLAIM_NAMESPACE;
  try {
    ns = claimNamespace(event.secrets);
    if (!isInteractiveLogin(event)) {
      // An ordinary login (a claim not asked yet) stays silent; a link or an invited account says why.
      if (kind !== "claim") log(`invitation ignored: not an interactive login (protocol=${protocolName(event)})`);
      return;
    }
    if (kind === "claim") {
      await askClaim(event, api, ns, invites, { ...DEFAULTS, ...(overrides || {}) });
      return;
    }
    if (kind === "redeem" && !isPlausibleToken(token)) {
      setClaim(api, `${ns}invitation_error`, ERROR_INVALID_LINK);
      log("redeem not sent: malformed invitation parameter");
      return;
    }

    const secrets = event.secrets || {};
    const url = secrets.INVITES_WEBHOOK_URL;
    const secret = secrets.INVITES_WEBHOOK_SECRET;
    if (!url || !secret) {
      setClaim(api, `${ns}invitation_error`, ERROR_UNAVAILABLE);
      log("redeem not sent: set INVITES_WEBHOOK_URL and INVITES_WEBHOOK_SECRET");
      return;
    }

    const options = { ...DEFAULTS, ...(overrides || {}) };
    const payload = kind === "redeem" ? redeemPayload(event, token) : provisionedPayload(event, invites.invitation_id);
    const signed = signWebhook({ secret, payload });
    const result = await deliver(url, signed, options);
    const outcome = interpret(result);
    if (outcome.roles) setClaim(api, `${ns}roles`, outcome.roles);
    else setClaim(api, `${ns}invitation_error`, outcome.error);
    if (kind === "provisioned" && !outcome.roles && outcome.error !== ERROR_UNAVAILABLE) {
      // Refused for good (expired, revoked, not this account's): stop asking at every login.
      // Nothing else writes `invites` during this login: no grant ran.
      api.user.setAppMetadata("invites", { ...invites, status: STATUS_ENDED, reason: outcome.error });
    }
    log(`${kind} ${outcome.roles ? "ok" : outcome.error}: ${outcome.detail} attempts=${result.attempts}`);
  } catch (err) {
    // A bug or a bad secret (e.g. not base64) must not turn into a failed login.
    try {
      setClaim(api, `${ns}invitation_error`, ERROR_UNAVAILABLE);
    } catch {
      // The api object itself failed; nothing more we can do for this login.
    }
    log(`redeem failed: ${(err && err.name) || "error"}`);
  }
}

/**
 * Ask once per account for the invitations pending for its verified address: one attempt, no
 * retry (a failed ask is asked again at the next login), so it adds at most `timeoutMs` to one
 * login of each account, and nothing to the others.
 */
async function askClaim(event, api, ns, invites, options) {
  const secrets = event.secrets || {};
  const url = secrets.INVITES_WEBHOOK_URL;
  const secret = secrets.INVITES_WEBHOOK_SECRET;
  if (!url || !secret) {
    log("claim not asked: set INVITES_WEBHOOK_URL and INVITES_WEBHOOK_SECRET");
    return;
  }
  const signed = signWebhook({ secret, payload: claimPayload(event) });
  const result = await postOnce(url, signed, options.timeoutMs);
  const outcome = interpretClaim(result);
  if (outcome.roles) {
    setClaim(api, `${ns}roles`, outcome.roles);
  } else if (outcome.none) {
    // Written whole (Auth0 replaces a top-level key): `invites` as this login read it, nothing
    // else writes it during this login since nothing was granted.
    api.user.setAppMetadata("invites", { ...invites, claimed_at: new Date().toISOString() });
  }
  log(`claim ${outcome.error || "ok"}: ${outcome.detail}`);
}

/**
 * Handler that will be called during the execution of a PostLogin flow.
 *
 * @param {Event} event - Details about the user and the context in which they are logging in.
 * @param {PostLoginAPI} api - Interface whose methods can be used to change the behavior of the login.
 */
exports.onExecutePostLogin = async (event, api) => handle(event, api);

exports._internal = {
  DEFAULTS,
  DEFAULT_CLAIM_NAMESPACE,
  INTERACTIVE_PROTOCOLS,
  claimNamespace,
  claimPayload,
  handle,
  interpret,
  interpretClaim,
  isInteractiveLogin,
  loginKind,
  provisionedPayload,
  redeemPayload,
  signWebhook,
};
