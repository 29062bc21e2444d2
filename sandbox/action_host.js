#!/usr/bin/env node
/**
 * Run one Auth0 post-login Action the way a tenant does, for the sandbox's universal login.
 *
 *   node sandbox/action_host.js /path/to/post-login.js < '{"event": {...}}'
 *
 * requires the Action file, calls `onExecutePostLogin(event, api)` with an `api` that records
 * what the Action asked for, and prints one JSON line on stdout:
 *
 *   {"idToken": {claim: value}, "accessToken": {...}, "denied": null | "reason",
 *    "appMetadata": {...} | null, "userMetadata": {...} | null, "logs": ["..."],
 *    "error": null | {"name": "...", "message": "..."}}
 *
 * The Action's console output goes into `logs` (Auth0 shows it in the Action's log), so stdout
 * carries the JSON only. The process exits as soon as the Action settles: Node's fetch keeps
 * idle sockets open for seconds, and the login must not wait for them.
 */
const path = require("node:path");
const util = require("node:util");

const MIN_NODE_MAJOR = 20;

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on("data", (chunk) => chunks.push(chunk));
    process.stdin.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    process.stdin.on("error", reject);
  });
}

/** The post-login `api` subset the sandbox honours, recording every call into `result`. */
function makeApi(result) {
  const cache = new Map();
  const claims = (target) => ({
    setCustomClaim: (name, value) => {
      target[name] = value;
    },
  });
  return {
    idToken: claims(result.idToken),
    accessToken: {
      ...claims(result.accessToken),
      addScope: (scope) => result.scopes.add.push(scope),
      removeScope: (scope) => result.scopes.remove.push(scope),
    },
    access: {
      deny: (reason) => {
        // As in Auth0, the Action goes on running; the login fails once it returns.
        if (result.denied === null) result.denied = String(reason);
      },
    },
    user: {
      setAppMetadata: (name, value) => {
        result.appMetadata = { ...(result.appMetadata || {}), [name]: value ?? null };
      },
      setUserMetadata: (name, value) => {
        result.userMetadata = { ...(result.userMetadata || {}), [name]: value ?? null };
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
}

function captureConsole(logs) {
  for (const name of ["log", "info", "warn", "error", "debug", "trace"]) {
    console[name] = (...args) => {
      logs.push(util.format(...args));
    };
  }
}

function finish(result) {
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
}

async function main() {
  const result = {
    idToken: {},
    accessToken: {},
    scopes: { add: [], remove: [] },
    denied: null,
    appMetadata: null,
    userMetadata: null,
    logs: [],
    error: null,
  };
  const major = Number(process.versions.node.split(".")[0]);
  if (major < MIN_NODE_MAJOR) {
    result.error = { name: "NodeTooOld", message: `Node.js ${process.versions.node} is too old` };
    return finish(result);
  }
  const actionPath = process.argv[2];
  try {
    const { event } = JSON.parse(await readStdin());
    captureConsole(result.logs);
    const action = require(path.resolve(actionPath));
    if (typeof action.onExecutePostLogin !== "function") {
      throw new TypeError("the Action does not export onExecutePostLogin");
    }
    await action.onExecutePostLogin(event, makeApi(result));
  } catch (err) {
    result.error = {
      name: (err && err.name) || "Error",
      code: (err && err.code) || null,
      message: String((err && err.message) || err).slice(0, 500),
    };
  }
  return finish(result);
}

main();
