// Hold a conversation with an endpoint the way the AI SDK's useChat does.
//
//   node chat.mjs URL "first message" ["second message" ...]
//
// Each turn posts the whole conversation with ai's DefaultChatTransport (the
// transport useChat uses by default), decodes the reply with
// readUIMessageStream, and appends the final assistant message to the
// conversation, tool, data, file and source parts included, so later turns
// send back everything the earlier ones received.
//
// stdout: {"messages": [...UIMessage]}; exit 0.
// On an error: {"error": "...", "messages": [...]}; exit 1.

import { DefaultChatTransport, readUIMessageStream } from "ai";

const [url, ...texts] = process.argv.slice(2);
const transport = new DefaultChatTransport({ api: url });
const messages = [];

try {
  for (const [turn, text] of texts.entries()) {
    messages.push({ id: `user-${turn}`, role: "user", parts: [{ type: "text", text }] });
    const stream = await transport.sendMessages({
      chatId: "chat-1",
      messages,
      trigger: "submit-message",
      messageId: undefined,
      abortSignal: undefined,
    });
    let last;
    for await (const message of readUIMessageStream({
      stream,
      onError: (error) => {
        throw error;
      },
    })) {
      last = message;
    }
    messages.push(structuredClone(last));
  }
  process.stdout.write(JSON.stringify({ messages }));
} catch (error) {
  process.stdout.write(JSON.stringify({ error: String(error?.message ?? error), messages }));
  process.exitCode = 1;
}
