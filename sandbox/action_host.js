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
 * carries the JSON only. The process exits as soon as the Action settles.
 */
const { printAndExit, readStdin, runAction } = require("../auth0/actions/scripts/runtime");

const MIN_NODE_MAJOR = 20;

async function main() {
  const major = Number(process.versions.node.split(".")[0]);
  if (major < MIN_NODE_MAJOR) {
    const error = { name: "NodeTooOld", message: `Node.js ${process.versions.node} is too old` };
    return printAndExit({ idToken: {}, accessToken: {}, denied: null, logs: [], error });
  }
  let event;
  try {
    ({ event } = JSON.parse(await readStdin()));
  } catch (err) {
    const error = { name: "SyntaxError", message: String(err.message).slice(0, 500) };
    return printAndExit({ idToken: {}, accessToken: {}, denied: null, logs: [], error });
  }
  const result = await runAction(process.argv[2], event);
  // The first deny wins, as in Auth0.
  return printAndExit({ ...result, denied: result.denied[0] ?? null });
}

main();
