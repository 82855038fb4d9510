// Two browser clients (config/realtime/static/realtime/client.js, run in Node) type into one
// document on two workers, drop mid-typing, stay cut off for a while, keep typing, and come
// back. Reads its parameters as JSON on stdin; prints what each client ended with.
import { Breaker, DocumentSession, RealtimeClient } from "../../../config/realtime/static/realtime/client.js";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const p = JSON.parse(input);
let partitionedUntil = 0;

function session(side) {
  const ticket = async () => {
    if (performance.now() < partitionedUntil) throw new Error("partitioned");
    const response = await fetch(`${side.http}/api/realtime/tickets/`, {
      method: "POST",
      headers: { Authorization: `Token ${side.token}` },
    });
    if (response.status !== 201) throw new Error(`ticket: ${response.status}`);
    return (await response.json()).ticket;
  };
  const client = new RealtimeClient(side.ws, {
    ticket,
    socketFactory: (url) => new WebSocket(url, { headers: { Origin: p.origin } }),
    backoffCap: 1,
    breaker: new Breaker({ threshold: 1000 }),
  });
  const doc = new DocumentSession(client, { clientId: side.name });
  doc.closes = []; // each socket's close code, and whether it came before the drop
  let previous = null;
  client.onState((state) => {
    if (previous === "open" && state !== "open") {
      doc.closes.push({ code: client.closeCode, beforeDrop: partitionedUntil === 0 });
    }
    previous = state;
  });
  client.start();
  return doc;
}

const until = async (condition, seconds, what) => {
  const deadline = performance.now() + seconds * 1000;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

let seed = p.seed;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);

const docs = p.sides.map(session);
await until(() => docs.every((d) => d.editor !== null), 10, "the snapshots");
const typing = docs.map(async (doc, n) => {
  for (const key of Array.from(p.sides[n].keys)) {
    const at = Math.floor(random() * (Array.from(doc.text).length + 1));
    doc.edit(at ? [at, key] : [key]);
    await new Promise((r) => setTimeout(r, 50));
  }
});
await new Promise((r) => setTimeout(r, 600));
partitionedUntil = performance.now() + p.offline_seconds * 1000;
const connectionsBeforeDrop = docs.map((d) => d.client.connections);
for (const doc of docs) doc.client.drop();
await until(() => docs.every((d) => d.client.state !== "open"), 5, "the drop");
await Promise.all(typing);
const offlineStill = docs.every((d) => d.client.state !== "open");
await until(() => docs.every((d) => d.settled), 60, "every edit acked");
await until(() => docs[0].version === docs[1].version, 10, "the same version");
process.stdout.write(
  JSON.stringify({
    offlineStill,
    texts: docs.map((d) => d.text),
    versions: docs.map((d) => d.version),
    connectionsAfterDrop: docs.map((d, n) => d.client.connections - connectionsBeforeDrop[n]),
    closes: docs.map((d) => d.closes),
    errors: docs.map((d) => d.errors.map(String)),
  }),
);
for (const doc of docs) doc.client.close();
process.exit(0);
