// Run an AG-UI agent with the official client (@ag-ui/client's HttpAgent).
//
//   node ag_ui.mjs --url URL --input JSON [--abort-after N]
//   node ag_ui.mjs --bodies < JSON list of bodies
//
// With --url, the agent POSTs the RunAgentInput (threadId, runId, state,
// messages, tools, context, forwardedProps) to URL and applies the events as
// they arrive. --abort-after N calls agent.abortRun() once N events have
// arrived.
//
// With --bodies, each body (a string) is served to an agent by a fetch of its
// own, without a server, one run per body.
//
// stdout: for one run an object, for --bodies a list of them:
//   {"events": [...]          the events the client applied, in order
//    "wire": [...]             the events of the body as sent (its data: lines)
//    "invalid": [...]          wire events that @ag-ui/core's EventSchemas refuses
//    "messages": [...]         the conversation as the client rebuilt it
//    "state": ...              the state as the client rebuilt it (its JSON Patch)
//    "error": "..."            if the run failed (the client rejected the stream)
//    "warnings": [...]}        what the libraries logged with console.warn/error
//
// Setup: `npm ci` in this folder (versions pinned in package-lock.json).

import { HttpAgent } from "@ag-ui/client";
import { EventSchemas } from "@ag-ui/core/schemas";

const warnings = [];
for (const level of ["warn", "error"]) {
  console[level] = (...args) => {
    warnings.push(args.map((a) => (typeof a === "string" ? a : String(a?.stack ?? JSON.stringify(a)))).join(" "));
  };
}

function option(name) {
  const index = process.argv.indexOf(name);
  return index === -1 ? undefined : process.argv[index + 1];
}

// The events of an SSE body, as the client's own parser frames them.
function wireEvents(text) {
  const events = [];
  for (const frame of text.split("\n\n")) {
    const data = frame
      .split("\n")
      .filter((line) => line.startsWith("data:"))
      .map((line) => line.slice(5).replace(/^ /, ""));
    if (data.length) events.push(JSON.parse(data.join("\n")));
  }
  return events;
}

// A fetch that keeps a copy of the body it hands on.
function recording(fetchBody) {
  const received = [];
  const fetch = async (url, init) => {
    const response = await fetchBody(url, init);
    const [forAgent, forUs] = response.body.tee();
    (async () => {
      const reader = forUs.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          received.push(value);
        }
      } catch {
        // aborted: keep what arrived
      }
    })();
    return new Response(forAgent, { status: response.status, headers: response.headers });
  };
  const text = () => new TextDecoder().decode(Buffer.concat(received.map((piece) => Buffer.from(piece))));
  return { fetch, text };
}

async function run(input, fetchBody, abortAfter) {
  warnings.length = 0;
  const { fetch, text } = recording(fetchBody);
  const agent = new HttpAgent({
    url: "http://agent.invalid/",
    fetch,
    threadId: input.threadId,
    initialMessages: input.messages ?? [],
    initialState: input.state,
  });
  const events = [];
  let error;
  try {
    await agent.runAgent(
      { runId: input.runId, tools: input.tools, context: input.context, forwardedProps: input.forwardedProps },
      {
        onEvent({ event }) {
          events.push(event);
          if (abortAfter !== undefined && events.length === abortAfter) agent.abortRun();
        },
      },
    );
  } catch (caught) {
    error = String(caught?.message ?? caught);
  }
  await new Promise((resolve) => setTimeout(resolve, 20)); // the copy's last reads
  const wire = wireEvents(text());
  const invalid = wire
    .map((event) => ({ event, result: EventSchemas.safeParse(event) }))
    .filter(({ result }) => !result.success)
    .map(({ event, result }) => ({ event, issues: result.error.issues }));
  return { events, wire, invalid, messages: agent.messages, state: agent.state, error, warnings: [...warnings] };
}

if (process.argv.includes("--bodies")) {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const bodies = JSON.parse(Buffer.concat(chunks).toString());
  const results = [];
  for (const body of bodies) {
    const serve = async () => new Response(body, { headers: { "content-type": "text/event-stream" } });
    results.push(await run({ threadId: "thread", runId: "run", messages: [], state: null }, serve));
  }
  process.stdout.write(JSON.stringify(results));
} else {
  const url = option("--url");
  const input = JSON.parse(option("--input") ?? "{}");
  const abortAfter = option("--abort-after");
  const serve = (_, init) => globalThis.fetch(url, init);
  const result = await run(input, serve, abortAfter === undefined ? undefined : Number(abortAfter));
  process.stdout.write(JSON.stringify(result));
}
