// The official npm decoders on one body, timed inside Node (m8's external reference).
//
//   node npm_decode.mjs <folder with node_modules> <format> <body file> <piece bytes> <runs>
//
// The body is cut into pieces beforehand and fed through the decoder's
// TransformStream; a run is timed from the first piece to the last decoded
// chunk, after one decode that warms the JIT up, in CPU time of the process
// (user and system, all of its threads: V8 collects garbage and compiles in
// helper threads), as the Python side is timed. The chunks are counted by
// type and let go, so that only the decoder is timed (tests/js/decode.mjs
// keeps and prints every chunk, which is what a test wants and a timing not).
//
// stdout: {"seconds": [...one per run], "types": {chunk type: count}}.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [modules, format, path, pieceText, runsText] = process.argv.slice(2);
const require = createRequire(`${modules}/package.json`);
const stream = await import(pathToFileURL(require.resolve("assistant-stream")).href);
const DECODERS = {
  "data-stream": () => new stream.DataStreamDecoder(),
  "assistant-transport": () => new stream.AssistantTransportDecoder(),
  "ui-message-stream": () => new stream.UIMessageStreamDecoder(),
};
const body = readFileSync(path);
const size = Number(pieceText) || body.length;
const pieces = [];
for (let at = 0; at < body.length; at += size) pieces.push(new Uint8Array(body.subarray(at, at + size)));

async function once() {
  let next = 0;
  const source = new ReadableStream({
    pull(controller) {
      if (next < pieces.length) controller.enqueue(pieces[next++]);
      else controller.close();
    },
  });
  const types = {};
  const started = process.cpuUsage();
  const reader = source.pipeThrough(DECODERS[format]()).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    types[value.type] = (types[value.type] ?? 0) + 1;
  }
  const used = process.cpuUsage(started);
  return { seconds: (used.user + used.system) / 1e6, types };
}

await once();
const seconds = [];
let types;
for (let run = 0; run < Number(runsText); run++) ({ seconds: seconds[run], types } = await once());
process.stdout.write(JSON.stringify({ seconds, types }) + "\n");
