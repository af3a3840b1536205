// Loaded into every sandboxed Node process with NODE_OPTIONS=--require. Node 20's built-in fetch()
// ignores HTTP(S)_PROXY; undici's global dispatcher (shared with the built-in fetch through a
// global symbol) makes it use the egress proxy like every other client in the sandbox.
"use strict";
try {
  const { EnvHttpProxyAgent, setGlobalDispatcher } = require(require("path").join(__dirname, "node_modules", "undici"));
  setGlobalDispatcher(new EnvHttpProxyAgent());
} catch (err) {
  process.stderr.write(`gigmcp: proxy preload failed: ${err && err.message}\n`);
}
