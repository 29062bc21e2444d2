/**
 * What Auth0's runtime hands a post-login Action, outside Auth0: the `event` of an interactive
 * universal-login sign-in, an `api` that records what the Action asks for, and the plumbing of
 * the scripts that run an Action from another language (JSON on stdin, console output kept off
 * stdout). Shared by the Action's tests (test/stubs.js), scripts/sign.js, the sandbox's
 * `action_host.js` and the Python interop test's `action_driver.js`.
 */
const path = require("node:path");
const util = require("node:util");

const CONSOLE_METHODS = ["log", "info", "warn", "error", "debug", "trace"];

/**
 * A post-login event for an interactive universal-login sign-in whose `/authorize` query carried
 * `invitation`. `overrides` are merged one level deep (request, transaction, user, ... are
 * merged, not replaced); `secrets` is taken as given, so a caller states exactly which exist.
 */
function loginEvent({ invitation, ...overrides } = {}) {
  const base = {
    client: { client_id: "client_123", name: "Customer space", metadata: {} },
    connection: { id: "con_1", name: "Username-Password-Authentication", strategy: "auth0" },
    request: {
      ip: "127.0.0.1",
      method: "GET",
      hostname: "tenant.example.auth0.com",
      query: {
        client_id: "client_123",
        response_type: "code",
        scope: "openid profile email",
        invitation,
        screen_hint: "signup",
      },
      body: {},
      geoip: {},
    },
    secrets: {},
    stats: { logins_count: 1 },
    tenant: { id: "tenant" },
    transaction: {
      id: "tx_1",
      protocol: "oidc-basic-profile",
      prompt: [],
      requested_scopes: ["openid", "profile", "email"],
      locale: "en",
    },
    user: { app_metadata: {}, user_metadata: {}, identities: [] },
  };
  const event = { ...base };
  for (const [key, value] of Object.entries(overrides)) {
    const isObject = value && typeof value === "object" && !Array.isArray(value);
    event[key] = isObject && base[key] && key !== "secrets" ? { ...base[key], ...value } : value;
  }
  return event;
}

/** The post-login `api` (the subset Auth0 offers that these Actions may use), recording into `calls`. */
function recordingApi() {
  const calls = {
    idToken: {},
    accessToken: {},
    scopes: { add: [], remove: [] },
    denied: [],
    appMetadata: null,
    userMetadata: null,
  };
  const cache = new Map();
  const claims = (target) => ({
    setCustomClaim: (name, value) => {
      target[name] = value;
    },
  });
  const api = {
    idToken: claims(calls.idToken),
    accessToken: {
      ...claims(calls.accessToken),
      addScope: (scope) => calls.scopes.add.push(scope),
      removeScope: (scope) => calls.scopes.remove.push(scope),
    },
    // As in Auth0, the Action goes on running after a deny; the login fails once it returns.
    access: { deny: (reason) => calls.denied.push(String(reason)) },
    user: {
      setAppMetadata: (name, value) => {
        calls.appMetadata = { ...(calls.appMetadata || {}), [name]: value ?? null };
      },
      setUserMetadata: (name, value) => {
        calls.userMetadata = { ...(calls.userMetadata || {}), [name]: value ?? null };
      },
    },
    cache: {
      get: (key) => (cache.has(key) ? { value: cache.get(key) } : undefined),
      set: (key, value) => {
        cache.set(key, value);
        return { type: "success" };
      },
      delete: (key) => {
        cache.delete(key);
        return { type: "success" };
      },
    },
  };
  return { api, calls };
}

/** Send everything written through console.* into `lines`; returns the function that undoes it. */
function redirectConsole(lines) {
  const saved = CONSOLE_METHODS.map((name) => console[name]);
  for (const name of CONSOLE_METHODS) {
    console[name] = (...args) => {
      lines.push(util.format(...args));
    };
  }
  return () => {
    CONSOLE_METHODS.forEach((name, i) => {
      console[name] = saved[i];
    });
  };
}

/**
 * Run the Action file's `onExecutePostLogin(event, api)` once: what it asked for, its console
 * lines (Auth0 shows them in the Action's log) and what it threw, if anything.
 */
async function runAction(actionPath, event) {
  const { api, calls } = recordingApi();
  const logs = [];
  const restore = redirectConsole(logs);
  let error = null;
  try {
    const action = require(path.resolve(actionPath));
    if (typeof action.onExecutePostLogin !== "function") {
      throw new TypeError("the Action does not export onExecutePostLogin");
    }
    await action.onExecutePostLogin(event, api);
  } catch (err) {
    error = {
      name: (err && err.name) || "Error",
      code: (err && err.code) || null,
      message: String((err && err.message) || err).slice(0, 500),
    };
  } finally {
    restore();
  }
  return { ...calls, logs, error };
}

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on("data", (chunk) => chunks.push(chunk));
    process.stdin.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    process.stdin.on("error", reject);
  });
}

/**
 * Print one JSON line on stdout and exit once it is out: Node's fetch keeps idle keep-alive
 * sockets open for seconds, and the caller must not wait for them.
 */
function printAndExit(value) {
  process.stdout.write(`${JSON.stringify(value)}\n`, () => process.exit(0));
}

module.exports = { loginEvent, printAndExit, readStdin, recordingApi, redirectConsole, runAction };
