// The bench's peer: a stock @tus/server with a @tus/file-store on loopback.
// Usage: node tus_peer.mjs PORT DIRECTORY [MAX_SIZE_BYTES]
import http from "node:http";
import { FileStore } from "@tus/file-store";
import { Server } from "@tus/server";

const [port, directory, maxSize] = process.argv.slice(2);
if (!port || !directory) {
  console.error("usage: node tus_peer.mjs PORT DIRECTORY [MAX_SIZE_BYTES]");
  process.exit(2);
}

const tus = new Server({
  path: "/files",
  datastore: new FileStore({ directory }),
  maxSize: Number(maxSize || 16 * 1024 ** 3),
});

const server = http.createServer((req, res) => tus.handle(req, res));
// Big uploads: no request or header deadline (Node's default requestTimeout is 300 s).
server.requestTimeout = 0;
server.headersTimeout = 0;
server.keepAliveTimeout = 60_000;
server.listen(Number(port), "127.0.0.1", () => {
  console.log(`tus peer listening on http://127.0.0.1:${port}/files`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
