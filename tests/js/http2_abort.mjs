// Abort one HTTP/2 stream the way a browser's fetch abort does (RST_STREAM
// with CANCEL), then use the same connection for another request.
//
//   node http2_abort.mjs <base url> <path to abort> <path to fetch after>
//
// stdout: {"aborted": <bytes read before the abort>, "after": <status>, "body": <body>}
import http2 from "node:http2";

const [base, abortPath, afterPath] = process.argv.slice(2);
const session = http2.connect(base);
session.on("error", (e) => {
  console.error(e);
  process.exitCode = 1;
});

function request(path) {
  const stream = session.request({ ":path": path });
  stream.setEncoding("utf8");
  return stream;
}

const first = request(abortPath);
let aborted = "";
first.on("data", (piece) => {
  aborted += piece;
  if (aborted.includes("\n") && !first.closed) {
    first.close(http2.constants.NGHTTP2_CANCEL);
    const second = request(afterPath);
    let status;
    let body = "";
    second.on("response", (headers) => (status = headers[":status"]));
    second.on("data", (piece) => (body += piece));
    second.on("end", () => {
      console.log(JSON.stringify({ aborted, after: status, body }));
      session.close();
    });
  }
});
