// The official TypeScript SDK's Client over StreamableHTTPClientTransport,
// driven against /mcp by `cargo xtask e2e` (xtask/src/e2e/mcp.rs).
//
// Usage: node ts-client.mjs URL KEY PLAN_JSON
// PLAN_JSON names what the inbox holds: {message, fromPeer, peer, parts}.
// It prints one JSON line {"event": "waiting", "after": N} before it waits
// (the harness then delivers a mail), and a last line {"event": "done", ...}.
// The SDK validates every structuredContent against its tool's outputSchema
// itself (callTool throws when it does not conform).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [url, key, planJson] = process.argv.slice(2);
const plan = JSON.parse(planJson);
const headers = { Authorization: `Bearer ${key}` };
const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
const client = new Client({ name: 'inboxkit-e2e-ts', version: '1.0.0' });
await client.connect(transport);

const fail = (what) => { throw new Error(what); };
const call = async (name, args) => {
  const result = await client.callTool({ name, arguments: args }, undefined, { timeout: 90_000 });
  if (result.isError) fail(`${name} failed: ${result.content?.[0]?.text}`);
  const text = JSON.parse(result.content[0].text);
  if (JSON.stringify(text) !== JSON.stringify(result.structuredContent)) fail(`${name}: text block != structuredContent`);
  return result;
};

const out = { event: 'done', negotiated: transport.protocolVersion, called: [] };
const { tools } = await client.listTools();
out.tools = tools.map((t) => t.name);
const called = (name) => out.called.push(name);

const me = (await call('whoami', {})).structuredContent; called('whoami');
out.email = me.email;
const list = (await call('list_messages', { limit: 10 })).structuredContent; called('list_messages');
if (!list.messages.some((m) => m.id === plan.message)) fail('list_messages lacks the message');
const message = (await call('get_message', { id: plan.message })).structuredContent; called('get_message');
out.code = message.codes?.[0]?.value;
const found = (await call('search_messages', { q: 'verification' })).structuredContent; called('search_messages');
if (!found.messages.some((m) => m.id === plan.message)) fail('search_messages missed the message');
const threads = (await call('list_threads', {})).structuredContent; called('list_threads');
const thread = (await call('get_thread', { id: threads.threads[0].id })).structuredContent; called('get_thread');
if (!thread.messages.length) fail('get_thread: no messages');
await call('mark_read', { id: plan.message, read: true }); called('mark_read');
out.attachments = {};
for (const part of plan.parts) {
  const result = await call('get_attachment', { messageId: plan.message, attachmentId: part });
  out.attachments[part] = result.content[1].type;
}
called('get_attachment');
const sent = (await call('send_message', { to: plan.peer, subject: 'from ts', text: 'hello', idempotencyKey: `ts-${Date.now()}` })).structuredContent;
called('send_message');
out.sent = sent.status;
await call('reply_to_message', { id: plan.fromPeer, text: 'a reply from ts' }); called('reply_to_message');
const conversation = (await call('get_message', { id: plan.fromPeer })).structuredContent.threadId;
await call('delete_thread', { id: conversation }); called('delete_thread');
await call('forward_message', { id: plan.message, to: plan.peer, text: 'fyi' }); called('forward_message');

// A wait that a mail delivered meanwhile ends.
const newest = (await call('list_messages', { limit: 1 })).structuredContent.messages[0].id;
console.log(JSON.stringify({ event: 'waiting', after: newest }));
const started = Date.now();
const waited = (await call('wait_for_message', { after: newest, timeout: 30 })).structuredContent;
called('wait_for_message');
out.waited = { subject: waited.message?.subject, code: waited.message?.codes?.[0]?.value, ms: Date.now() - started };

await call('delete_message', { id: plan.message }); called('delete_message');
const gone = await client.callTool({ name: 'get_message', arguments: { id: plan.message } });
out.deletedIsError = gone.isError === true;

// Latency: tools/call whoami against GET /api/me, the same client runtime.
const rounds = 30;
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const mcp = []; const rest = [];
const base = new URL(url);
for (let i = 0; i < rounds; i++) {
  let t = performance.now();
  await client.callTool({ name: 'whoami', arguments: {} });
  mcp.push(performance.now() - t);
  t = performance.now();
  const r = await fetch(new URL('/api/me', base), { headers });
  await r.json();
  rest.push(performance.now() - t);
}
out.latency = { rounds, mcpWhoamiMs: median(mcp), restMeMs: median(rest) };
await client.close();
console.log(JSON.stringify(out));
