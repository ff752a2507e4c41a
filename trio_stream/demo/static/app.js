// The trio-stream demo chat: plain ES modules, no build step, no dependencies.
//
// The page reads each wire format itself, incrementally, from the response
// body's reader: bytes -> text -> lines -> (SSE events) -> JSON frames, and
// every frame becomes a call on a MessageView (text, toolStart, toolResult…),
// which renders it at once. Chunks from sub-streams carry the id of the tool
// call that opened them, and render inside that tool's card.

const FORMAT_NAMES = {
  "data-stream": "data stream",
  "assistant-transport": "assistant transport",
  "ui-message-stream": "UI message stream",
};

// ---------------------------------------------------------------------------
// Small helpers

/** An element with attributes (`class`, `dataset`, anything else) and children. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  el.append(...children.filter((child) => child != null));
  return el;
}

function newId(prefix) {
  // crypto.randomUUID exists only in secure contexts (https, localhost).
  const random = globalThis.crypto?.randomUUID?.() ?? Math.random().toString(36).slice(2);
  return `${prefix}_${random.replaceAll("-", "").slice(0, 16)}`;
}

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Just enough Markdown for chat text: `code`, **bold**, [links](https://…). */
function renderInline(text) {
  // Escape first, so that only the markup below becomes HTML.
  return escapeHtml(text)
    .replace(/`([^`\n]+)`/g, "<code>$1</code>")
    .replace(/\*\*([^*\n]+)\*\*/g, "<strong>$1</strong>")
    .replace(
      /\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)/g,
      '<a href="$2" target="_blank" rel="noopener noreferrer">$1</a>',
    );
}

function pretty(value) {
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

/** JSON on one line when it is short, else indented: cards stay compact. */
function displayJson(value) {
  if (typeof value === "string") return value;
  const line = JSON.stringify(value, null, 1)?.replace(/\n\s*/g, " ") ?? String(value);
  // One long value (a URL) reads better wrapped on one line than indented.
  const entries = value !== null && typeof value === "object" ? Object.values(value) : [];
  const flat = entries.length <= 1 && entries.every((v) => v === null || typeof v !== "object");
  return line.length <= 44 || flat ? line : pretty(value);
}

function formatSeconds(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** Apply one `update-state` operation; copy-on-write, as the server does. */
function applyOperation(node, path, depth, op) {
  if (depth === path.length) {
    if (op.type === "set") return op.value;
    if (op.type === "append-text") return (typeof node === "string" ? node : "") + op.value;
    throw new Error(`unknown state operation ${op.type}`);
  }
  const key = path[depth];
  if (Array.isArray(node)) {
    const items = node.slice();
    items[Number(key)] = applyOperation(items[Number(key)], path, depth + 1, op);
    return items;
  }
  const copy = node !== null && typeof node === "object" ? { ...node } : {};
  copy[key] = applyOperation(copy[key], path, depth + 1, op);
  return copy;
}

// ---------------------------------------------------------------------------
// Wire decoding: each stage is an async generator feeding the next one.

/** The text of a body, read by `reader` piece by piece. */
async function* textPieces(reader, onBytes) {
  // stream: true keeps a multi-byte character cut between two reads until
  // its last byte arrives.
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    onBytes(value.byteLength);
    const text = decoder.decode(value, { stream: true });
    if (text) yield text;
  }
  const rest = decoder.decode();
  if (rest) yield rest;
}

/** Complete lines of a text stream, however the reads cut it. */
async function* lines(pieces) {
  // SSE ends lines with \n, \r\n or \r; the data stream with \n.
  const eol = /\r\n|\r|\n/g;
  let buffer = "";
  for await (const piece of pieces) {
    buffer += piece;
    let start = 0;
    eol.lastIndex = 0;
    for (let match; (match = eol.exec(buffer)); ) {
      // A \r at the very end may be the first half of a \r\n: wait for more.
      if (match[0] === "\r" && match.index === buffer.length - 1) break;
      yield buffer.slice(start, match.index);
      start = eol.lastIndex;
    }
    buffer = buffer.slice(start); // only the unfinished line stays
  }
  if (buffer) yield buffer.replace(/\r$/, "");
}

/** The `data` of each server-sent event; comments (heartbeats) are skipped. */
async function* sseData(lineStream) {
  let data = [];
  for await (const line of lineStream) {
    if (line === "") {
      // A blank line ends the event.
      if (data.length) yield data.join("\n");
      data = [];
      continue;
    }
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data.push(value);
    // event, id and retry: none of these formats uses them.
  }
  // An event cut off by the end of the body is dropped, as EventSource does.
}

/** JSON frames of an SSE format, up to `data: [DONE]`. */
async function* sseJson(lineStream) {
  for await (const data of sseData(lineStream)) {
    if (data === "[DONE]") return;
    yield JSON.parse(data);
  }
}

// ---------------------------------------------------------------------------
// The three wire formats: how to read a body into a view, and what to post.

/** The assistant-ui data stream: `code:json` lines. */
function readDataStreamLine(line, view) {
  if (line === "") return; // a heartbeat
  const colon = line.indexOf(":");
  if (colon <= 0) throw new Error(`not a data stream line: ${line.slice(0, 60)}`);
  const code = line.slice(0, colon);
  const value = JSON.parse(line.slice(colon + 1));
  switch (code) {
    case "0": return view.text("text", value, null);
    case "g": return view.text("reasoning", value, null);
    case "aui-text-delta": return view.text("text", value.textDelta, value.parentId);
    case "aui-reasoning-delta": return view.text("reasoning", value.reasoningDelta, value.parentId);
    case "b": return view.toolStart(value.toolCallId, value.toolName, value.parentId);
    case "c":
      view.toolArgs(value.toolCallId, value.argsTextDelta);
      if (value.isFinal) view.toolArgsDone(value.toolCallId);
      return;
    case "9": // AI SDK 4: a whole tool call in one line
      view.toolStart(value.toolCallId, value.toolName, value.parentId);
      view.toolArgs(value.toolCallId, JSON.stringify(value.args));
      return view.toolArgsDone(value.toolCallId);
    case "a": return view.toolResult(value.toolCallId, value.result, value.isError === true);
    case "2": return value.forEach((item) => view.data(null, item, null));
    case "aui-data": return view.data(value.name, value.data, value.parentId);
    case "3": return view.error(value);
    case "aui-state": return view.updateState(value);
    case "h": return view.source(value.url, value.title, value.parentId);
    case "k": return view.file(value.mimeType, `data:${value.mimeType};base64,${value.data}`, value.parentId);
    case "8": return view.annotations(value);
    case "f": return view.stepStart();
    case "e": return view.stepFinish(value.finishReason, value.usage);
    case "d": return view.finish(value.finishReason, value.usage);
    default: return; // a code from a newer protocol: ignore it, as the decoders do
  }
}

/** assistant-ui's assistant transport: parts addressed by their path. */
function assistantTransportReader() {
  const parts = []; // by index: what each part-start created
  return (event, view) => {
    const part = event.path ? parts[event.path[0]] : undefined;
    switch (event.type) {
      case "part-start": {
        const p = event.part;
        const parentId = p.parentId ?? null;
        if (p.type === "text" || p.type === "reasoning") {
          parts.push({ segment: view.openText(p.type, parentId) });
        } else if (p.type === "tool-call") {
          view.toolStart(p.toolCallId, p.toolName, parentId);
          parts.push({ toolCallId: p.toolCallId });
        } else {
          if (p.type === "source") view.source(p.url, p.title, parentId);
          else if (p.type === "file") view.file(p.mimeType, `data:${p.mimeType};base64,${p.data}`, parentId);
          else if (p.type === "data") view.data(p.name, p.data, parentId);
          parts.push({});
        }
        return;
      }
      case "text-delta":
        if (part?.segment) return view.appendText(part.segment, event.textDelta);
        if (part?.toolCallId) return view.toolArgs(part.toolCallId, event.textDelta);
        return;
      case "tool-call-args-text-finish": return part?.toolCallId && view.toolArgsDone(part.toolCallId);
      case "result":
        return part?.toolCallId && view.toolResult(part.toolCallId, event.result, event.isError === true);
      case "part-finish": return part?.segment && view.closeText(part.segment);
      case "update-state": return view.updateState(event.operations);
      case "error": return view.error(event.error);
      case "data": return event.data.forEach((item) => view.data(null, item, null));
      case "annotations": return view.annotations(event.annotations);
      case "step-start": return view.stepStart();
      case "step-finish": return view.stepFinish(event.finishReason, event.usage);
      case "message-finish": return view.finish(event.finishReason, event.usage);
      default: return;
    }
  };
}

/** The AI SDK's UI message stream: blocks addressed by id, tools by call id. */
function uiMessageStreamReader() {
  const blocks = new Map(); // text/reasoning block id -> segment
  return (event, view) => {
    const parentId = event.providerMetadata?.trioStream?.parentId ?? null;
    switch (event.type) {
      case "text-start":
      case "reasoning-start":
        blocks.set(event.id, view.openText(event.type.replace("-start", ""), parentId));
        return;
      case "text-delta":
      case "reasoning-delta": {
        const kind = event.type.replace("-delta", "");
        if (!blocks.has(event.id)) blocks.set(event.id, view.openText(kind, null));
        return view.appendText(blocks.get(event.id), event.delta);
      }
      case "text-end":
      case "reasoning-end":
        if (blocks.has(event.id)) view.closeText(blocks.get(event.id));
        return;
      case "tool-input-start": return view.toolStart(event.toolCallId, event.toolName, parentId);
      case "tool-input-delta": return view.toolArgs(event.toolCallId, event.inputTextDelta);
      case "tool-input-available":
        view.toolStart(event.toolCallId, event.toolName, parentId); // no-op if it exists
        return view.toolArgsDone(event.toolCallId, event.input);
      case "tool-input-error":
        view.toolStart(event.toolCallId, event.toolName, parentId);
        return view.toolArgsDone(event.toolCallId, undefined, event.errorText);
      case "tool-output-available": return view.toolResult(event.toolCallId, event.output, false);
      case "tool-output-error": return view.toolResult(event.toolCallId, event.errorText, true);
      case "source-url": return view.source(event.url, event.title, parentId);
      case "file": return view.file(event.mediaType, event.url, parentId);
      case "data-update-state": return view.updateState(event.data);
      case "start-step": return view.stepStart();
      case "finish-step": return view.stepFinish(event.finishReason, event.usage);
      case "message-metadata": return view.annotations(event.messageMetadata?.annotations ?? []);
      case "error": return view.error(event.errorText);
      case "finish": return view.finish(event.finishReason, event.usage);
      default:
        if (event.type.startsWith("data-")) {
          const name = event.type.slice("data-".length);
          return view.data(name === "custom" ? null : name, event.data, parentId);
        }
        return; // start, abort, and types from newer releases
    }
  };
}

// What each front-end posts. The conversation is kept here in a neutral form:
// {role: "user", id, text} and {role: "assistant", id, parts}, where parts are
// the message's top-level content (a sub-stream's content is its tool's
// business, not the conversation's).

/** assistant-ui's data stream runtime: the AI SDK's model messages. */
function dataStreamBody(conversation) {
  const messages = [];
  for (const message of conversation) {
    if (message.role === "user") {
      messages.push({ role: "user", content: [{ type: "text", text: message.text }] });
      continue;
    }
    // An assistant turn is split at each tool step, as the AI SDK does: the
    // calls, then a tool message with their results, then what followed.
    let content = [];
    let results = [];
    const flush = () => {
      if (content.length) messages.push({ role: "assistant", content });
      if (results.length) messages.push({ role: "tool", content: results });
      content = [];
      results = [];
    };
    for (const part of message.parts) {
      if ((part.type === "text" || part.type === "reasoning") && part.text) {
        if (results.length) flush();
        content.push({ type: part.type, text: part.text });
      } else if (part.type === "tool" && part.state !== "running") {
        const { toolCallId, toolName } = part;
        content.push({ type: "tool-call", toolCallId, toolName, input: part.input ?? {} });
        const output = part.isError
          ? { type: "error-text", value: pretty(part.result) }
          : { type: "json", value: part.result };
        results.push({ type: "tool-result", toolCallId, toolName, output });
      }
    }
    flush();
  }
  return { messages, tools: {} };
}

/** assistant-ui's assistant transport: the new message as a command, and the state. */
function assistantTransportBody(conversation, state) {
  const user = conversation.at(-1);
  const previous = conversation.at(-2);
  return {
    commands: [
      {
        type: "add-message",
        message: { role: "user", parts: [{ type: "text", text: user.text }] },
        parentId: previous?.id ?? null,
        sourceId: null,
      },
    ],
    state, // the server keeps the conversation here: send back what it sent
    tools: {},
  };
}

/** The AI SDK's useChat (DefaultChatTransport): the whole conversation as UI messages. */
function uiMessageStreamBody(conversation, chatId) {
  const messages = conversation.map((message) => {
    if (message.role === "user") {
      return { id: message.id, role: "user", parts: [{ type: "text", text: message.text }] };
    }
    const parts = [];
    for (const part of message.parts) {
      if (part.type === "text" || part.type === "reasoning") {
        parts.push({ type: part.type, text: part.text, state: "done" });
      } else if (part.type === "step-start") {
        parts.push({ type: "step-start" });
      } else if (part.type === "tool" && part.state !== "running") {
        const tool = { type: `tool-${part.toolName}`, toolCallId: part.toolCallId, input: part.input ?? {} };
        parts.push(part.isError
          ? { ...tool, state: "output-error", errorText: pretty(part.result) }
          : { ...tool, state: "output-available", output: part.result });
      } else if (part.type === "source") {
        const source = { type: "source-url", sourceId: part.id, url: part.url };
        parts.push(part.title ? { ...source, title: part.title } : source);
      } else if (part.type === "file") {
        parts.push({ type: "file", mediaType: part.mediaType, url: part.url });
      } else if (part.type === "data") {
        parts.push({ type: `data-${part.name ?? "custom"}`, data: part.value });
      }
    }
    return { id: message.id, role: "assistant", parts };
  });
  return { id: chatId, messages, trigger: "submit-message", messageId: null };
}

const FORMATS = {
  "data-stream": {
    body: (conversation) => dataStreamBody(conversation),
    async read(textStream, view) {
      for await (const line of lines(textStream)) {
        view.frame();
        readDataStreamLine(line, view);
      }
    },
  },
  "assistant-transport": {
    body: (conversation, session) => assistantTransportBody(conversation, session.state),
    async read(textStream, view) {
      const read = assistantTransportReader();
      for await (const event of sseJson(lines(textStream))) {
        view.frame();
        read(event, view);
      }
    },
  },
  "ui-message-stream": {
    body: (conversation, session) => uiMessageStreamBody(conversation, session.chatId),
    async read(textStream, view) {
      const read = uiMessageStreamReader();
      for await (const event of sseJson(lines(textStream))) {
        view.frame();
        read(event, view);
      }
    },
  },
};

// ---------------------------------------------------------------------------
// Rendering one assistant message

class MessageView {
  constructor({ format, initialState, onState, onFrame }) {
    this.started = performance.now();
    this.format = format;
    this.status = "streaming";
    this.parts = []; // top-level content, for the conversation history
    this.tools = new Map(); // tool call id -> card record
    this.usage = null;
    this.finishReason = null;
    this.state = initialState;
    this.onState = onState;
    this.onFrame = onFrame;

    this.content = h("div", { class: "content" });
    this.footer = h("footer", { class: "message-footer", "data-testid": "message-footer" });
    this.el = h(
      "li",
      { class: "message assistant", "data-testid": "message", "data-role": "assistant", "aria-busy": "true" },
      h("div", { class: "avatar", "aria-hidden": "true" }, "ts"),
      h("div", { class: "bubble" }, this.content, this.footer),
    );
    this.setStatus("streaming");
    this.footer.textContent = `Streaming over the ${FORMAT_NAMES[format]}…`;
    this.dirty = new Set(); // text segments to re-render at the next frame
  }

  setStatus(status) {
    this.status = status;
    this.el.dataset.status = status;
    if (status !== "streaming") this.el.removeAttribute("aria-busy");
  }

  frame() {
    this.onFrame();
  }

  /** Where content with this parent id goes: its tool card's body, or the message. */
  container(parentId) {
    if (parentId != null) {
      const tool = this.tools.get(parentId);
      if (tool) {
        tool.el.classList.add("has-nested");
        return tool.nested;
      }
    }
    return this.content;
  }

  /** Add a top-level part to the history (sub-stream content stays in its card). */
  record(parentId, part) {
    if (parentId == null || !this.tools.has(parentId)) this.parts.push(part);
    return part;
  }

  // -- text and reasoning --------------------------------------------------

  openText(kind, parentId) {
    const container = this.container(parentId);
    this.closeReasoningIn(container);
    const part = this.record(parentId, { type: kind, text: "" });
    let el;
    let body;
    if (kind === "reasoning") {
      body = h("div", { class: "reasoning-text" });
      el = h(
        "details",
        { class: "reasoning", "data-testid": "reasoning", open: true },
        h("summary", {}, h("span", { class: "reasoning-label" }, "Thinking…")),
        body,
      );
    } else {
      el = body = h("div", { class: "text", "data-testid": "text" });
    }
    const segment = { kind, el, body, part, started: performance.now(), closed: false };
    el.segment = segment;
    container.append(el);
    return segment;
  }

  appendText(segment, delta) {
    segment.part.text += delta;
    this.dirty.add(segment);
    this.scheduleRender();
  }

  closeText(segment) {
    if (segment.closed) return;
    segment.closed = true;
    if (segment.kind === "reasoning") {
      // Fold the reasoning away once the answer moves on; a click reopens it.
      const seconds = formatSeconds(performance.now() - segment.started);
      segment.el.querySelector(".reasoning-label").textContent = `Reasoning · ${seconds}`;
      segment.el.open = false;
    }
  }

  closeReasoningIn(container) {
    const last = container.lastElementChild;
    if (last?.segment?.kind === "reasoning") this.closeText(last.segment);
  }

  /** A delta of a format without block boundaries (the data stream): it extends
   * the producer's latest segment of its kind, unless something came after it. */
  text(kind, delta, parentId) {
    const last = this.container(parentId).lastElementChild;
    const open = last?.segment?.kind === kind && !last.segment.closed;
    const segment = open ? last.segment : this.openText(kind, parentId);
    this.appendText(segment, delta);
  }

  scheduleRender() {
    // Tokens can arrive many per frame: render each segment once per frame.
    if (this.renderPending) return;
    this.renderPending = true;
    requestAnimationFrame(() => this.flush());
  }

  flush() {
    this.renderPending = false;
    for (const segment of this.dirty) {
      if (segment.kind === "text") segment.body.innerHTML = renderInline(segment.part.text);
      else segment.body.textContent = segment.part.text;
    }
    this.dirty.clear();
    keepScrolledDown();
  }

  /** Anything but text ends the producer's open reasoning block. */
  place(parentId, el) {
    const container = this.container(parentId);
    this.closeReasoningIn(container);
    container.append(el);
    keepScrolledDown();
    return el;
  }

  // -- tool calls --------------------------------------------------------------

  toolStart(toolCallId, toolName, parentId) {
    if (this.tools.has(toolCallId)) return;
    const container = this.container(parentId);
    this.closeReasoningIn(container);
    // Consecutive calls share a grid, so parallel calls show side by side.
    let group = container.lastElementChild;
    if (!group?.classList.contains("tool-group")) {
      group = h("div", { class: "tool-group" });
      container.append(group);
    }
    const status = h("span", { class: "tool-status" }, "streaming arguments");
    const elapsed = h("span", { class: "tool-elapsed" });
    const preview = h("span", { class: "tool-preview" });
    const args = h("pre", { class: "tool-args", "data-testid": "tool-args" });
    const nested = h("div", { class: "tool-nested", "data-testid": "tool-nested" });
    const result = h("pre", { class: "tool-result", "data-testid": "tool-result" });
    const resultLabel = h("div", { class: "tool-label" }, "Result");
    const el = h(
      "article",
      {
        class: "tool-card",
        "data-testid": "tool-card",
        "data-tool-name": toolName,
        "data-tool-call-id": toolCallId,
        "aria-label": `Tool call ${toolName}`,
      },
      h(
        "header",
        { class: "tool-head" },
        h("span", { class: "tool-icon", "aria-hidden": "true" }),
        h("span", { class: "tool-name" }, toolName),
        preview,
        h("span", { class: "tool-meta" }, status, elapsed),
      ),
      h("div", { class: "tool-section" }, h("div", { class: "tool-label" }, "Arguments"), args),
      nested,
      h("div", { class: "tool-section tool-result-section" }, resultLabel, result),
    );
    el.dataset.status = "running";
    el.dataset.phase = "arguments";
    group.append(el);
    const record = this.record(parentId, {
      type: "tool",
      toolCallId,
      toolName,
      argsText: "",
      input: undefined,
      result: undefined,
      isError: false,
      state: "running",
    });
    const started = performance.now();
    this.tools.set(toolCallId, { el, status, elapsed, preview, args, nested, result, resultLabel, record, started });
    ticker.add(this);
    keepScrolledDown();
  }

  toolArgs(toolCallId, delta) {
    const tool = this.tools.get(toolCallId);
    if (!tool) return;
    tool.record.argsText += delta;
    tool.args.textContent = tool.record.argsText;
  }

  toolArgsDone(toolCallId, input, errorText) {
    const tool = this.tools.get(toolCallId);
    if (!tool) return;
    if (input === undefined && !errorText) {
      try {
        input = JSON.parse(tool.record.argsText || "{}");
      } catch {
        errorText = "the arguments are not valid JSON";
      }
    }
    tool.record.input = input;
    if (errorText) {
      tool.args.classList.add("invalid");
      tool.args.title = errorText;
    } else {
      tool.args.textContent = displayJson(input);
      tool.preview.textContent = argsPreview(input);
    }
    if (tool.el.dataset.status === "running") {
      tool.el.dataset.phase = "working";
      tool.status.textContent = "running";
    }
  }

  toolResult(toolCallId, result, isError) {
    const tool = this.tools.get(toolCallId);
    if (!tool) return;
    if (tool.record.input === undefined) this.toolArgsDone(toolCallId);
    Object.assign(tool.record, { result, isError, state: "done" });
    tool.result.textContent = displayJson(result);
    tool.resultLabel.textContent = isError ? "Error" : "Result";
    this.endTool(tool, isError ? "error" : "done", isError ? "failed" : "done");
  }

  endTool(tool, status, label) {
    tool.el.dataset.status = status;
    tool.el.dataset.phase = "ended";
    tool.status.textContent = label;
    tool.elapsed.textContent = formatSeconds(performance.now() - tool.started);
  }

  tick() {
    // Running cards show how long they have been running.
    let running = 0;
    for (const tool of this.tools.values()) {
      if (tool.el.dataset.status !== "running") continue;
      running += 1;
      tool.elapsed.textContent = formatSeconds(performance.now() - tool.started);
    }
    return running > 0;
  }

  // -- everything else -------------------------------------------------------

  source(url, title, parentId) {
    this.record(parentId, { type: "source", id: newId("src"), url, title });
    const container = this.container(parentId);
    let list = container.lastElementChild;
    if (!list?.classList.contains("sources")) {
      const label = h("span", { class: "sources-label" }, "Sources");
      list = this.place(parentId, h("div", { class: "sources" }, label));
    }
    let host = url;
    try {
      host = new URL(url).host;
    } catch {}
    list.append(
      h(
        "a",
        {
          class: "source",
          "data-testid": "source",
          // Only web links: a source URL comes from the model, and a
          // javascript: or data: link must not become clickable.
          href: /^https?:\/\//i.test(url) ? url : undefined,
          target: "_blank",
          rel: "noopener noreferrer",
          title: url,
        },
        h("span", { class: "source-title" }, title || url),
        h("span", { class: "source-host" }, host),
      ),
    );
  }

  file(mediaType, url, parentId) {
    this.record(parentId, { type: "file", mediaType, url });
    const label = h("figcaption", {}, mediaType);
    const body = mediaType.startsWith("image/")
      ? h("img", { src: url, alt: `Attached image (${mediaType})` })
      : h("a", { href: url, download: "attachment" }, "Download");
    const attrs = { class: "file", "data-testid": "file", "data-media-type": mediaType };
    this.place(parentId, h("figure", attrs, body, label));
  }

  data(name, value, parentId) {
    if (name === "tool-progress" && this.toolProgress(value, parentId)) return;
    this.record(parentId, { type: "data", name, value });
    this.place(
      parentId,
      h(
        "div",
        { class: "data-part", "data-testid": "data", "data-name": name ?? "" },
        h("span", { class: "data-name" }, name ? `data · ${name}` : "data"),
        h("pre", {}, pretty(value)),
      ),
    );
  }

  /** A tool's progress (MCP's, piped by the MCP adapter) as a line on its card.
   * Returns false if no card is found: the part then shows as plain data. */
  toolProgress(value, parentId) {
    if (value === null || typeof value !== "object") return false;
    const tool = this.progressCard(parentId, value.toolCallId);
    if (!tool) return false;
    if (!tool.progress) {
      const bar = h("progress", { "aria-label": `Progress of ${tool.record.toolName}` });
      const label = h("span", { class: "tool-progress-text" });
      const el = h("div", { class: "tool-section tool-progress", "data-testid": "tool-progress" }, bar, label);
      tool.nested.before(el);
      tool.progress = { el, bar, label };
    }
    const { progress, total, message } = value;
    const { el, bar, label } = tool.progress;
    if (typeof total === "number" && total > 0) {
      bar.max = total;
      bar.value = Math.min(progress, total);
    } else {
      bar.removeAttribute("value"); // no total: an indeterminate bar
    }
    label.textContent = message ?? (typeof total === "number" ? `${progress} of ${total}` : String(progress));
    el.dataset.progress = String(progress);
    el.dataset.total = total == null ? "" : String(total);
    keepScrolledDown();
    return true;
  }

  /** The card of the call a progress value belongs to: its parent id, where the
   * format keeps it, else the id in the value. A call relayed from another
   * server has an id prefixed with the local call's (`call_a.call_b`), while
   * the value holds the id its own server gave it (`call_b`). */
  progressCard(parentId, toolCallId) {
    if (parentId != null && this.tools.has(parentId)) return this.tools.get(parentId);
    if (typeof toolCallId !== "string") return undefined;
    if (this.tools.has(toolCallId)) return this.tools.get(toolCallId);
    for (const [id, tool] of this.tools) {
      if (id.endsWith(`.${toolCallId}`)) return tool;
    }
    return undefined;
  }

  annotations() {
    // Annotations are the app's metadata about the message: nothing to show.
  }

  stepStart() {
    this.parts.push({ type: "step-start" });
  }

  stepFinish() {
    // The message's finish carries the usage summed over its steps.
  }

  updateState(operations) {
    for (const op of operations) this.state = applyOperation(this.state, op.path, 0, op);
    this.onState(this.state);
  }

  error(message) {
    this.errorText = message;
    const attrs = { class: "error-banner", role: "alert", "data-testid": "error" };
    this.content.append(h("div", attrs, h("strong", {}, "Error: "), String(message)));
    this.setStatus("error");
  }

  finish(reason, usage) {
    this.finishReason = reason;
    this.usage = usage;
  }

  // -- the end of the body ------------------------------------------------------

  /** The body ended (or failed, or was stopped): settle every open piece. */
  end(outcome, detail) {
    this.flush();
    for (const segment of this.openSegments()) this.closeText(segment);
    const seconds = formatSeconds(performance.now() - this.started);
    for (const tool of this.tools.values()) {
      if (tool.el.dataset.status !== "running") continue;
      if (outcome === "stopped") {
        this.endTool(tool, "stopped", "stopped");
      } else {
        tool.result.textContent = "The stream ended before this call's result.";
        tool.resultLabel.textContent = "Error";
        this.endTool(tool, "error", "no result");
      }
    }
    if (outcome === "stopped") {
      this.setStatus("stopped");
      this.footer.replaceChildren(
        h("span", { class: "badge badge-stopped" }, "Stopped"),
        ` after ${seconds}: the connection is closed, so the server cancels the run and its tools.`,
      );
      return;
    }
    if (outcome === "failed") {
      this.error(detail);
    } else if (this.status === "streaming") {
      this.setStatus("done");
    }
    const bits = [];
    if (this.finishReason) bits.push(`finish: ${this.finishReason}`);
    if (this.usage) bits.push(`${this.usage.inputTokens} in · ${this.usage.outputTokens} out tokens`);
    bits.push(seconds, FORMAT_NAMES[this.format]);
    if (this.status === "done" && !this.finishReason) bits.unshift("ended without a finish");
    const dot = () => h("span", { class: "dot", "aria-hidden": "true" }, "·");
    this.footer.replaceChildren(...bits.flatMap((bit, i) => (i ? [dot(), bit] : [bit])));
  }

  *openSegments() {
    for (const el of this.el.querySelectorAll(".reasoning")) {
      if (el.segment && !el.segment.closed) yield el.segment;
    }
  }
}

function argsPreview(input) {
  if (input === null || typeof input !== "object") return "";
  const text = Object.values(input)
    .map((value) => (typeof value === "string" ? value : JSON.stringify(value)))
    .join(", ");
  return text.length > 48 ? `${text.slice(0, 47)}…` : text;
}

/** One timer for the elapsed time of every running tool card. */
const ticker = {
  views: new Set(),
  timer: null,
  add(view) {
    this.views.add(view);
    this.timer ??= setInterval(() => {
      for (const v of this.views) if (!v.tick()) this.views.delete(v);
      if (!this.views.size) {
        clearInterval(this.timer);
        this.timer = null;
      }
    }, 100);
  },
};

// ---------------------------------------------------------------------------
// The page

const elements = {
  messages: document.getElementById("messages"),
  welcome: document.getElementById("welcome"),
  form: document.getElementById("composer-form"),
  composer: document.getElementById("composer"),
  send: document.getElementById("send"),
  stop: document.getElementById("stop"),
  format: document.getElementById("format"),
  model: document.getElementById("model-name"),
  stateBody: document.getElementById("state-body"),
  wire: {
    endpoint: document.getElementById("wire-endpoint"),
    frames: document.getElementById("wire-frames"),
    bytes: document.getElementById("wire-bytes"),
    ttfb: document.getElementById("wire-ttfb"),
  },
};

const session = {
  conversation: [],
  chatId: newId("chat"),
  state: null, // the latest state snapshot the server sent
  abort: null, // the AbortController of the run streaming now
};

/** Follow the stream down, unless the reader has scrolled up to read. */
let followScroll = true;
window.addEventListener("scroll", () => {
  followScroll = window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 120;
}, { passive: true });

function keepScrolledDown() {
  if (followScroll) window.scrollTo({ top: document.documentElement.scrollHeight });
}

/** A state value in a few characters: lists by their length. */
function summarize(value) {
  if (Array.isArray(value)) return `${value.length} item${value.length === 1 ? "" : "s"}`;
  return value !== null && typeof value === "object" ? "{…}" : String(value);
}

function renderState(state) {
  const body = elements.stateBody;
  body.replaceChildren();
  if (state == null || typeof state !== "object") {
    body.append(h("p", { class: "muted" }, state == null ? "No state yet." : pretty(state)));
    return;
  }
  const progress = state.progress;
  if (progress && typeof progress.done === "number" && typeof progress.total === "number") {
    const { done, total } = progress;
    body.append(
      h(
        "div",
        { class: "state-progress", "data-testid": "state-progress", "data-done": done, "data-total": total },
        h("div", { class: "state-row" }, h("span", {}, "Tools done"), h("strong", {}, `${done} / ${total}`)),
        h("progress", { max: String(total), value: String(done), "aria-label": "Tools done" }),
      ),
    );
  }
  const rows = Object.entries(state).filter(([key]) => key !== "progress");
  if (rows.length) {
    body.append(
      h("dl", { class: "state-keys" },
        ...rows.flatMap(([key, value]) => [
          h("dt", {}, key),
          h("dd", { "data-key": key }, summarize(value)),
        ])),
    );
  }
  const raw = h("pre", {}, JSON.stringify(state, null, 2));
  body.append(h("details", { class: "state-raw" }, h("summary", {}, "Raw state"), raw));
}

function setRunning(abort) {
  session.abort = abort;
  elements.send.disabled = abort !== null;
  elements.stop.disabled = abort === null;
  elements.format.disabled = abort !== null;
  if (abort === null) elements.composer.focus();
}

function showUser(message) {
  elements.welcome?.remove();
  elements.messages.append(
    h("li", { class: "message user", "data-testid": "message", "data-role": "user", "data-status": "done" },
      h("div", { class: "bubble" }, h("div", { class: "text", "data-testid": "text" }, message.text))),
  );
}

async function errorDetail(response) {
  // The API answers FastAPI-style: {"detail": "…"} or {"detail": [{"loc", "msg"}…]}.
  try {
    const { detail } = await response.json();
    if (Array.isArray(detail)) return detail.map((e) => `${e.loc.join(".")}: ${e.msg}`).join("; ");
    return String(detail);
  } catch {
    return response.statusText;
  }
}

async function send(text) {
  if (session.abort || !text.trim()) return;
  const format = elements.format.value;
  const user = { role: "user", id: newId("msg"), text };
  session.conversation.push(user);
  showUser(user);
  followScroll = true;

  const stats = { frames: 0, bytes: 0 };
  const endpoint = `/api/chat/${format}`;
  elements.wire.endpoint.textContent = `POST ${endpoint}`;
  elements.wire.frames.textContent = "0";
  elements.wire.bytes.textContent = "0";
  elements.wire.ttfb.textContent = "…";

  // The assistant transport's state continues from the snapshot sent back;
  // the other formats start each run from an empty state.
  const view = new MessageView({
    format,
    initialState: format === "assistant-transport" ? session.state : null,
    onState: renderState,
    onFrame: () => {
      stats.frames += 1;
      elements.wire.frames.textContent = String(stats.frames);
    },
  });
  elements.messages.append(view.el);
  renderState(view.state);
  keepScrolledDown();

  const abort = new AbortController();
  setRunning(abort);
  const body = FORMATS[format].body(session.conversation, session);
  let outcome = "done";
  let detail;
  try {
    const response = await fetch(endpoint, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: abort.signal,
    });
    elements.wire.ttfb.textContent = formatSeconds(performance.now() - view.started);
    if (!response.ok) {
      outcome = "failed";
      detail = `the server answered ${response.status}: ${await errorDetail(response)}`;
    } else {
      const onBytes = (n) => {
        stats.bytes += n;
        elements.wire.bytes.textContent = stats.bytes.toLocaleString("en");
      };
      await FORMATS[format].read(textPieces(response.body.getReader(), onBytes), view);
    }
  } catch (error) {
    // Stop aborts the fetch: reading then rejects with an AbortError, and the
    // closed connection tells the server to cancel the run.
    if (abort.signal.aborted) outcome = "stopped";
    else {
      outcome = "failed";
      detail = error instanceof Error ? error.message : String(error);
    }
  } finally {
    view.end(outcome, detail);
    if (view.state != null) session.state = view.state;
    if (view.parts.some((part) => part.type !== "step-start")) {
      session.conversation.push({ role: "assistant", id: newId("msg"), parts: view.parts });
    }
    setRunning(null);
  }
}

elements.form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = elements.composer.value;
  if (!text.trim() || session.abort) return;
  elements.composer.value = "";
  autosize();
  send(text);
});

elements.composer.addEventListener("keydown", (event) => {
  // Enter sends; Shift+Enter is a new line; Enter while composing (IME) is not a send.
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    elements.form.requestSubmit();
  }
});

function autosize() {
  elements.composer.style.height = "auto";
  elements.composer.style.height = `${Math.min(elements.composer.scrollHeight, 200)}px`;
}
elements.composer.addEventListener("input", autosize);

elements.stop.addEventListener("click", () => session.abort?.abort());
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && session.abort) session.abort.abort();
});

function suggest(button) {
  button.addEventListener("click", () => {
    elements.composer.value = button.textContent;
    elements.form.requestSubmit();
  });
}

document.querySelectorAll(".suggestion").forEach(suggest);

/** The agent's own welcome, when it describes itself: what a turn shows, and where to start. */
function showWelcome(about, suggestions) {
  const welcome = elements.welcome;
  if (!welcome?.isConnected) return;
  if (about) welcome.querySelector("p").textContent = about;
  if (suggestions?.length) {
    const buttons = suggestions.map((text) => h("button", { type: "button", class: "suggestion" }, text));
    buttons.forEach(suggest);
    welcome.querySelector(".suggestions").replaceChildren(...buttons);
  }
}

async function loadInfo() {
  try {
    const response = await fetch("/api/info");
    const info = await response.json();
    elements.model.textContent = info.model;
    if (info.about || info.suggestions) showWelcome(info.about, info.suggestions);
    if (info.format in FORMATS) elements.format.value = info.format;
    for (const option of elements.format.options) {
      option.disabled = !info.formats.includes(option.value);
    }
  } catch (error) {
    elements.model.textContent = "unavailable";
    console.error("GET /api/info failed", error);
  }
  document.body.dataset.ready = "true";
}

loadInfo();
elements.composer.focus();
