// Write a UI message stream body with the AI SDK itself, for the decoder tests.
//
//   node ai_sdk_stream.mjs stream-text   > body
//   node ai_sdk_stream.mjs writer        > body
//
// stream-text: streamText(...).toUIMessageStreamResponse() over ai/test's
// MockLanguageModelV3, which streams three steps: reasoning, text and a
// call of `weather` whose input streams in pieces; then a call of `weather`
// whose input comes whole and whose tool throws; then text, a source and a
// file. The tool has an `execute`, so its output (or error) follows each
// call. The model's parts are fixed here and mirrored by the Python test.
//
// writer: createUIMessageStreamResponse over createUIMessageStream, whose
// writer sends chunks streamText never does (a document source, a file by
// URL, transient and reconciled data parts, a tool approval request and a
// denial, message metadata, an abort) and no `finish`, as an app's own
// writer may.
//
// stdout: the raw response body, exactly as a client would receive it.

import {
  createUIMessageStream,
  createUIMessageStreamResponse,
  jsonSchema,
  stepCountIs,
  streamText,
  tool,
} from "ai";
import { MockLanguageModelV3, simulateReadableStream } from "ai/test";

const usage = (input, output) => ({
  inputTokens: { total: input, noCache: input, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: output, text: output, reasoning: undefined },
});

const finish = (unified, input, output) => ({
  type: "finish",
  finishReason: { unified, raw: unified },
  usage: usage(input, output),
});

// What the mock model streams in each step (LanguageModelV3StreamPart).
const STEPS = [
  [
    { type: "stream-start", warnings: [] },
    { type: "reasoning-start", id: "r1" },
    { type: "reasoning-delta", id: "r1", delta: "The user wants " },
    { type: "reasoning-delta", id: "r1", delta: "the weather." },
    { type: "reasoning-end", id: "r1" },
    { type: "text-start", id: "t1" },
    { type: "text-delta", id: "t1", delta: "Let me check " },
    { type: "text-delta", id: "t1", delta: "Lisbon." },
    { type: "text-end", id: "t1" },
    { type: "tool-input-start", id: "call-1", toolName: "weather" },
    { type: "tool-input-delta", id: "call-1", delta: '{"city":' },
    { type: "tool-input-delta", id: "call-1", delta: '"Lisbon"}' },
    { type: "tool-input-end", id: "call-1" },
    { type: "tool-call", toolCallId: "call-1", toolName: "weather", input: '{"city":"Lisbon"}' },
    finish("tool-calls", 10, 5),
  ],
  [
    { type: "stream-start", warnings: [] },
    { type: "tool-call", toolCallId: "call-2", toolName: "weather", input: '{"city":"Atlantis"}' },
    finish("tool-calls", 20, 3),
  ],
  [
    { type: "stream-start", warnings: [] },
    { type: "text-start", id: "t2" },
    { type: "text-delta", id: "t2", delta: "It is 21 °C in Lisbon; " },
    { type: "text-delta", id: "t2", delta: "Atlantis is not on the map." },
    { type: "text-end", id: "t2" },
    {
      type: "source",
      sourceType: "url",
      id: "src-1",
      url: "https://weather.example/lisbon",
      title: "Lisbon weather",
    },
    { type: "file", mediaType: "text/plain", data: "aGVsbG8=" },
    finish("stop", 30, 12),
  ],
];

async function streamTextBody() {
  const model = new MockLanguageModelV3({
    doStream: STEPS.map((parts) => ({ stream: simulateReadableStream({ chunks: parts }) })),
  });
  const weather = tool({
    description: "The weather in a city.",
    inputSchema: jsonSchema({
      type: "object",
      properties: { city: { type: "string" } },
      required: ["city"],
    }),
    execute: async ({ city }) => {
      if (city === "Atlantis") throw new Error("no such city");
      return { city, celsius: 21 };
    },
  });
  const result = streamText({
    model,
    prompt: "The weather in Lisbon and Atlantis?",
    tools: { weather },
    stopWhen: stepCountIs(3),
  });
  return result.toUIMessageStreamResponse({
    generateMessageId: () => "msg-1",
    sendSources: true,
    messageMetadata: ({ part }) => (part.type === "start" ? { model: "mock" } : undefined),
    onError: (error) => (error instanceof Error ? error.message : String(error)),
  });
}

function writerBody() {
  const stream = createUIMessageStream({
    execute({ writer }) {
      writer.write({ type: "start", messageId: "msg-2" });
      writer.write({ type: "start-step" });
      writer.write({ type: "text-start", id: "a" });
      writer.write({ type: "text-start", id: "b" });
      writer.write({ type: "text-delta", id: "a", delta: "first " });
      writer.write({ type: "text-delta", id: "b", delta: "second " });
      writer.write({ type: "text-delta", id: "a", delta: "block" });
      writer.write({ type: "text-end", id: "a" });
      writer.write({ type: "text-end", id: "b" });
      writer.write({
        type: "source-document",
        sourceId: "doc-1",
        mediaType: "application/pdf",
        title: "Report",
        filename: "report.pdf",
      });
      writer.write({ type: "file", url: "https://files.example/cat.png", mediaType: "image/png" });
      writer.write({ type: "data-progress", id: "p", data: { done: 1 } });
      writer.write({ type: "data-progress", id: "p", data: { done: 2 } });
      writer.write({ type: "data-toast", data: "saved", transient: true });
      writer.write({ type: "tool-input-start", toolCallId: "call-9", toolName: "delete_file" });
      writer.write({
        type: "tool-input-available",
        toolCallId: "call-9",
        toolName: "delete_file",
        input: { path: "/tmp/x" },
      });
      writer.write({ type: "tool-approval-request", approvalId: "appr-1", toolCallId: "call-9" });
      writer.write({ type: "tool-output-denied", toolCallId: "call-9" });
      writer.write({ type: "message-metadata", messageMetadata: { tokens: 42 } });
      writer.write({ type: "finish-step" });
      writer.write({ type: "abort", reason: "user stopped" });
    },
  });
  return createUIMessageStreamResponse({ stream });
}

const BODIES = { "stream-text": streamTextBody, writer: writerBody };

const scenario = process.argv[2];
if (!(scenario in BODIES)) {
  process.stderr.write(`usage: node ai_sdk_stream.mjs <${Object.keys(BODIES).join("|")}>\n`);
  process.exitCode = 2;
} else {
  const response = await BODIES[scenario]();
  process.stdout.write(Buffer.from(await response.arrayBuffer()));
}
