// The inline verdict's side of the MCP Apps protocol (io.modelcontextprotocol/ui, 2026-01-26): JSON-RPC
// over postMessage with the host. The server renders the verdict (escaped, in Python) into the tool
// result's _meta; this script only places what the host hands over, so no report is rendered twice.
(() => {
  "use strict";
  const VERDICT_KEY = "io.github.frontier-mcp/verdict-html";
  const view = document.getElementById("verdict");
  const host = window.parent !== window ? window.parent : null;
  const pending = new Map();
  let nextId = 1;

  const send = (message) => host && host.postMessage(Object.assign({ jsonrpc: "2.0" }, message), "*");
  const notify = (method, params) => send({ method, params });
  const request = (method, params) => new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    send({ id, method, params });
  });

  let lastSize = "";
  let initialized = false;  // nothing but the handshake goes to the host before it completes
  const sizeChanged = () => {
    if (!initialized) return;
    const box = document.documentElement.getBoundingClientRect();
    const size = { width: Math.ceil(box.width), height: Math.ceil(box.height) };
    if (JSON.stringify(size) !== lastSize) {
      lastSize = JSON.stringify(size);
      notify("ui/notifications/size-changed", size);
    }
  };

  const showText = (text, source) => {
    const line = document.createElement("p");
    line.className = "pre";
    line.textContent = text;  // text, never markup: it may quote the model
    view.replaceChildren(line);
    view.dataset.source = source;
    sizeChanged();
  };

  const showResult = (result) => {
    const rendered = result && result._meta && result._meta[VERDICT_KEY];
    if (typeof rendered === "string") {
      // Rendered and escaped by the server; the page's CSP runs no script but this one, whatever it holds.
      view.innerHTML = rendered;
      view.dataset.source = "tool-result";
      sizeChanged();
      return;
    }
    // A running job, an error, an experiment without a benchmark: the tool's own readable text.
    const text = ((result && result.content) || []).filter((c) => c && c.type === "text").map((c) => c.text);
    showText(text.join("\n") || "The tool returned no verdict to show.", "text");
  };

  const handlers = {
    "ui/notifications/tool-input": (params) => {
      const args = (params && params.arguments) || {};
      if (view.dataset.source === "waiting" && args.experiment_id !== undefined) {
        showText(`Waiting for the result on experiment #${args.experiment_id}…`, "waiting");
      }
    },
    "ui/notifications/tool-result": showResult,
    "ui/notifications/tool-cancelled": (params) =>
      showText(`The call was cancelled${params && params.reason ? `: ${params.reason}` : "."}`, "cancelled"),
  };

  window.addEventListener("message", (event) => {
    if (!host || event.source !== host) return;
    const message = event.data;
    if (!message || message.jsonrpc !== "2.0") return;
    if (message.method === undefined) {  // a response to one of our requests
      const waiting = pending.get(message.id);
      if (waiting) {
        pending.delete(message.id);
        if (message.error) waiting.reject(message.error); else waiting.resolve(message.result);
      }
      return;
    }
    if (message.id !== undefined) {  // a request from the host
      if (message.method === "ui/resource-teardown" || message.method === "ping") {
        send({ id: message.id, result: {} });
      } else {
        send({ id: message.id, error: { code: -32601, message: `method not found: ${message.method}` } });
      }
      return;
    }
    const handle = handlers[message.method];
    if (handle) handle(message.params);
  });

  if (host) {
    request("ui/initialize", {
      appInfo: { name: "frontier-mcp verdict", version: view.dataset.appVersion || "0" },
      appCapabilities: { availableDisplayModes: ["inline"] },
      protocolVersion: "2026-01-26",
    }).then(() => {
      initialized = true;
      notify("ui/notifications/initialized", {});
      sizeChanged();
      if (typeof ResizeObserver === "function") new ResizeObserver(sizeChanged).observe(document.documentElement);
    }, () => { /* a host that refuses the handshake keeps the document as it is */ });
  }
})();
