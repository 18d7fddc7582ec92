// The engine's Web Worker: loads the engine's wasm (Trunk's `backfill-worker` binary, built
// for workers), whose start function takes over the worker's messages.
importScripts("./backfill-worker.js");
wasm_bindgen("./backfill-worker_bg.wasm");
