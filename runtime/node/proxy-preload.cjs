// Loaded into every sandboxed Node process with NODE_OPTIONS=--require. Node 20's built-in fetch()
// ignores HTTP(S)_PROXY; undici's global dispatcher (shared with the built-in fetch, and with any
// copy of the undici package, through a global symbol) makes it use the egress proxy like every
// other client in the sandbox.
//
// Lazily: loading undici costs 100-300 ms of every Node start, and many servers never make a
// request. The symbol is a getter that builds the proxy agent the first time anything asks for the
// global dispatcher (Node's fetch does on its first call); a dispatcher set explicitly replaces it.
"use strict";
const KEY = Symbol.for("undici.globalDispatcher.1");
// undici's own module set-up asks "is a global dispatcher set?" and, if not, installs a plain Agent
// for good: while ours is being built, the answer must be yes.
const BUILDING = Object.freeze({
  dispatch() {
    throw new Error("gigmcp: the proxy agent is still being built");
  },
});
let agent;
let building = false;

function proxyAgent() {
  if (agent === undefined) {
    if (building) return BUILDING;
    building = true;
    try {
      const { EnvHttpProxyAgent } = require(require("path").join(__dirname, "node_modules", "undici"));
      agent = new EnvHttpProxyAgent();
    } catch (err) {
      process.stderr.write(`gigmcp: proxy preload failed: ${err && err.message}\n`);
      agent = null; // fetch then falls back to direct connections, which have no route out anyway
    } finally {
      building = false;
    }
  }
  return agent === null ? undefined : agent;
}

Object.defineProperty(globalThis, KEY, {
  configurable: true,
  enumerable: false,
  get: proxyAgent,
  set(value) {
    Object.defineProperty(globalThis, KEY, { value, writable: true, enumerable: false, configurable: true });
  },
});
