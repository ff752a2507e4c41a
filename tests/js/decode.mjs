// Decode a raw HTTP response body with the official npm client decoders.
//
//   node decode.mjs <format> [--split N] < body
//   node decode.mjs <format> [--split N] --url URL [--post JSON]
//
// With --url, Node fetches the body itself over HTTP (a POST with a JSON
// body when --post is given) and decodes it as it arrives, as a browser
// client would; the output then also has "status" and "headers".
//
// Formats:
//   data-stream           assistant-stream DataStreamDecoder         -> AssistantMessageAccumulator
//   assistant-transport   assistant-stream AssistantTransportDecoder -> AssistantMessageAccumulator
//   ui-message-stream     assistant-stream UIMessageStreamDecoder    -> AssistantMessageAccumulator
//   ai-ui-message-stream  ai: parseJsonEventStream + uiMessageChunkSchema -> readUIMessageStream
//   object-stream         assistant-stream fromObjectStreamResponse  -> the last snapshot
//                         (the response's own headers with --url; else the format's)
//
// --split N feeds the body as N-byte pieces (N=1 splits inside UTF-8
// sequences and SSE/line delimiters), default: one piece.
//
// stdout: {"message": ..., "chunks": [...], "warnings": [...]}; exit 0.
// On a decoder error: {"error": "...", "chunks": [...], "warnings": [...]}; exit 1.
// "chunks" are the objects the decoder emitted before accumulation;
// "warnings" are what the libraries logged through console.warn/console.error
// (they silently drop malformed input that way, which a test wants to see).
// Wall-clock fields (parts[].timing, metadata.timing) differ between runs.
//
// Setup: `npm ci` in this folder (versions pinned in package-lock.json).

import {
  AssistantMessageAccumulator,
  AssistantTransportDecoder,
  DataStreamDecoder,
  UIMessageStreamDecoder,
  fromObjectStreamResponse,
} from "assistant-stream";
import { parseJsonEventStream, readUIMessageStream, uiMessageChunkSchema } from "ai";

const ASSISTANT_STREAM_DECODERS = {
  "data-stream": () => new DataStreamDecoder(),
  "assistant-transport": () => new AssistantTransportDecoder(),
  "ui-message-stream": () => new UIMessageStreamDecoder(),
};
const FORMATS = [...Object.keys(ASSISTANT_STREAM_DECODERS), "ai-ui-message-stream", "object-stream"];
const OBJECT_STREAM_HEADERS = {
  "content-type": "text/event-stream",
  "assistant-stream-format": "object-stream/v0",
};

// Capture library diagnostics; still echo them to stderr for humans.
const warnings = [];
for (const level of ["warn", "error"]) {
  const original = console[level].bind(console);
  console[level] = (...args) => {
    warnings.push(args.map((a) => (typeof a === "string" ? a : String(a?.stack ?? JSON.stringify(a)))).join(" "));
    original(...args);
  };
}

// Deep copy into plain JSON data. Reads getters (e.g. the accumulator's
// deprecated `content` alias of `parts`) and non-enumerable own properties,
// which a bare JSON.stringify would skip. `undefined` fields are dropped,
// as they would be on any JSON wire.
function plain(value, seen = new Set()) {
  if (value === null || typeof value !== "object") return typeof value === "function" ? undefined : value;
  if (typeof value.toJSON === "function") return plain(value.toJSON(), seen);
  if (seen.has(value)) return "[Circular]";
  seen.add(value);
  let out;
  if (Array.isArray(value)) {
    out = value.map((item) => plain(item, seen) ?? null);
  } else {
    out = {};
    for (const key of Object.getOwnPropertyNames(value)) {
      const item = plain(value[key], seen);
      if (item !== undefined) out[key] = item;
    }
  }
  seen.delete(value);
  return out;
}

function splitBody(body, size) {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= body.length) return controller.close();
      // Copy: decoders may keep references, and Buffer slices share memory.
      controller.enqueue(new Uint8Array(body.subarray(offset, offset + size)));
      offset += size;
    },
  });
}

// Pass-through that records every chunk as it was at emission time.
function tap(chunks) {
  return new TransformStream({
    transform(chunk, controller) {
      chunks.push(plain(chunk));
      controller.enqueue(chunk);
    },
  });
}

async function decodeAssistantStream(format, body, chunks) {
  const messages = body
    .pipeThrough(ASSISTANT_STREAM_DECODERS[format]())
    .pipeThrough(tap(chunks))
    .pipeThrough(new AssistantMessageAccumulator());
  let last;
  for await (const message of messages) last = message;
  return last;
}

async function decodeAiUIMessageStream(body, chunks) {
  // readUIMessageStream does not throw by default: it reports both `error`
  // chunks (as `new Error(errorText)`) and real failures through onError,
  // then just closes. Only real failures count as decoder errors here.
  const pendingErrorChunks = [];
  let failure;
  const onError = (e) => {
    const fromErrorChunk =
      Object.getPrototypeOf(e) === Error.prototype && e.message === pendingErrorChunks[0];
    if (fromErrorChunk) pendingErrorChunks.shift();
    else failure ??= e;
  };

  // Same pipeline as ai's DefaultChatTransport.processResponseStream:
  // invalid JSON or a chunk failing uiMessageChunkSchema errors the stream.
  const uiChunks = parseJsonEventStream({ stream: body, schema: uiMessageChunkSchema }).pipeThrough(
    new TransformStream({
      transform(result, controller) {
        if (!result.success) throw result.error;
        chunks.push(plain(result.value));
        if (result.value.type === "error") pendingErrorChunks.push(result.value.errorText);
        controller.enqueue(result.value);
      },
    }),
  );

  let last;
  for await (const message of readUIMessageStream({ stream: uiChunks, onError })) last = message;
  if (failure) throw failure;
  return last;
}

// The client's own entry point, which checks the response's headers; "chunks"
// are the operation batches, "message" the state after the last one.
async function decodeObjectStream(body, headers, chunks) {
  let state = null;
  for await (const chunk of fromObjectStreamResponse(new Response(body, { headers }))) {
    chunks.push(plain(chunk.operations));
    state = chunk.snapshot;
  }
  return state;
}

function option(argv, name) {
  const at = argv.indexOf(name);
  if (at === -1) return undefined;
  const value = argv[at + 1];
  if (value === undefined) throw new UsageError(`${name} needs a value`);
  argv.splice(at, 2);
  return value;
}

async function main(argv) {
  argv = [...argv];
  const splitOption = option(argv, "--split");
  const url = option(argv, "--url");
  const post = option(argv, "--post");
  const split = splitOption === undefined ? Infinity : Number(splitOption);
  if (!Number.isSafeInteger(split) && split !== Infinity) throw new UsageError("--split needs a positive integer");
  if (split < 1) throw new UsageError("--split needs a positive integer");
  const format = argv[0];
  if (!FORMATS.includes(format) || argv.length !== 1) {
    throw new UsageError(`usage: node decode.mjs <${FORMATS.join("|")}> [--split N] [--url URL [--post JSON]] [< body]`);
  }

  let body;
  const response = {};
  if (url !== undefined) {
    const res = await fetch(url, post === undefined ? {} : {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: post,
    });
    response.status = res.status;
    response.headers = Object.fromEntries(res.headers);
    if (split === Infinity) body = res.body;
    else body = splitBody(Buffer.from(await res.arrayBuffer()), split);
  } else {
    const input = [];
    for await (const piece of process.stdin) input.push(piece);
    const bytes = Buffer.concat(input);
    body = splitBody(bytes, Math.min(split, Math.max(bytes.length, 1)));
  }

  const chunks = [];
  try {
    const message =
      format === "ai-ui-message-stream"
        ? await decodeAiUIMessageStream(body, chunks)
        : format === "object-stream"
          ? await decodeObjectStream(body, response.headers ?? OBJECT_STREAM_HEADERS, chunks)
          : await decodeAssistantStream(format, body, chunks);
    return { status: 0, output: { ...response, message: plain(message) ?? null, chunks, warnings } };
  } catch (e) {
    return { status: 1, output: { ...response, error: String(e?.message ?? e), chunks, warnings } };
  }
}

class UsageError extends Error {}

try {
  const { status, output } = await main(process.argv.slice(2));
  process.stdout.write(JSON.stringify(output) + "\n");
  process.exitCode = status;
} catch (e) {
  if (!(e instanceof UsageError)) throw e;
  process.stderr.write(e.message + "\n");
  process.exitCode = 2;
}
