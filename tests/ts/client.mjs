// An ACP client on the official TypeScript SDK (@agentclientprotocol/sdk), for
// tests/e2e/test_ts_sdk.py: a strict client written by others, run against our agent.
//
//     node client.mjs [--unstable] COMMAND [ARG...] < script.json > record.json
//
// Spawns COMMAND (the agent; it inherits this process's environment and stderr),
// runs the script read from stdin over its stdio, and prints one JSON record. The
// client is the SDK's default, stable ACP v1 one, or with --unstable the one that
// also knows ACP's unstable features (sub-agents, archiving, ...).
//
// The script is a JSON array of steps, run in order. A string that is all "$name"
// stands for the variable `name` (see `new`) wherever it is in a step.
//   {"op": "initialize", "clientCapabilities": {...}, "protocolVersion": 1}
//   {"op": "new", "cwd": "/abs", "as": "session"}   session/new; stores the sessionId
//                                                    in the variable `as` (default "session")
//   {"op": "load", "sessionId": "$session", "cwd": "/abs"}
//   {"op": "prompt", "sessionId": "$session", "text": "..."}   or "prompt": [ContentBlock...]
//   {"op": "request", "method": "...", "params": {...}}        any other request
//   {"op": "cancel", "sessionId": "$session"}                   session/cancel
//   {"op": "notify", "method": "...", "params": {...}}         any other notification
//   {"op": "permission", "answer": "allow_once"}   how to answer session/request_permission
//       from now on: the option of that kind (allow_once, allow_always, reject_once,
//       reject_always), or "cancelled"; until a permission step, "cancelled"
//   {"op": "waitFor", "update": {...}, "sessionId": "$session", "count": 1, "timeoutMs": 10000}
//       until `count` session/update notifications, counted from the first one received,
//       have an `update` matching `update` (objects by subset, arrays item by item), of
//       any session unless `sessionId` is given; or "permission": {...} to match the
//       params of permission requests instead. Records the index of the match.
//   {"op": "await", "name": "..."}                  the answer to a background request
// `load`, `prompt` and `cancel` default `sessionId` to "$session"; `initialize`, `new`,
// `load` and `prompt` merge `params` into what they send (for `_meta`, `mcpServers`...).
// A request step with "background": "name" does not wait for its answer; an `await`
// step does. A failed request is recorded in its step and the script goes on; a script
// error (an unknown op or variable, a waitFor timing out) ends it.
//
// The record:
//   steps               one entry per step: {op, method, result} or {op, method, error}...
//   updates             {sessionId, update}, as the SDK delivered them to the handler
//   permissionRequests  {request, outcome}: the params delivered and the answer given
//   notifications       {method, params} of any other notification
//   ignoredFields       {method, path}: fields this client does not know and so drops,
//                       as ACP lets it (a stable client, say, and an unstable field)
//   validationErrors    what a strict client cannot take as sent, by `source`:
//       "schema"       a message from the agent that fails the SDK's schema for it
//       "altered"      one the SDK takes only in part: a field it knows, or an array
//                      item, dropped or replaced because it was invalid
//       "sdk-log"      the SDK's own report of a notification it refused
//       "sdk-refused"  the SDK's error answer to a request (or line) it refused
//   errors              everything else: other SDK output, script and agent failures
//   agentExit           {code, signal}

import { spawn } from "node:child_process";
import { Readable, Writable } from "node:stream";
import { text } from "node:stream/consumers";

// Each entrypoint with its own generated validators. The SDK applies them to the
// notifications and requests it receives but not to responses; the wire check below
// applies them to every message. The package does not export them, so they are found
// beside the entrypoint.
const ENTRYPOINTS = {
  stable: { module: "@agentclientprotocol/sdk", validators: "../schema/zod.gen.js" },
  unstable: { module: "@agentclientprotocol/sdk/unstable", validators: "./schema/zod.gen.js" },
};
const argv = process.argv.slice(2);
const entrypoint = ENTRYPOINTS[argv[0] === "--unstable" ? (argv.shift(), "unstable") : "stable"];
const acp = await import(entrypoint.module);
const zod = await import(
  new URL(entrypoint.validators, import.meta.resolve(entrypoint.module)).href
);

const DEFAULT_TIMEOUT_MS = 10_000;
const AGENT_EXIT_TIMEOUT_MS = 10_000;
// Not "$/cancel_request": method names are left alone.
const VARIABLE = /^\$([A-Za-z_]\w*)$/;
const SESSION_OPS = new Set(["load", "prompt", "cancel"]);

// The schemas of what an agent may send, by name: requests and notifications by
// method, responses by the method of the request they answer. Names the entrypoint
// lacks (the unstable methods, for the stable one) go unchecked.
const INCOMING = {
  "session/update": "zSessionNotification",
  "session/request_permission": "zRequestPermissionRequest",
  "fs/read_text_file": "zReadTextFileRequest",
  "fs/write_text_file": "zWriteTextFileRequest",
  "terminal/create": "zCreateTerminalRequest",
  "terminal/output": "zTerminalOutputRequest",
  "terminal/release": "zReleaseTerminalRequest",
  "terminal/wait_for_exit": "zWaitForTerminalExitRequest",
  "terminal/kill": "zKillTerminalRequest",
  "elicitation/create": "zCreateElicitationRequest",
  "elicitation/complete": "zCompleteElicitationNotification",
  "auth/status_update": "zAuthStatusUpdateNotification",
  "$/cancel_request": "zCancelRequestNotification",
};
const RESPONSES = {
  initialize: "zInitializeResponse",
  authenticate: "zAuthenticateResponse",
  logout: "zLogoutResponse",
  "auth/status": "zAuthStatusResponse",
  "session/new": "zNewSessionResponse",
  "session/load": "zLoadSessionResponse",
  "session/list": "zListSessionsResponse",
  "session/delete": "zDeleteSessionResponse",
  "session/fork": "zForkSessionResponse",
  "session/archive": "zArchiveSessionResponse",
  "session/unarchive": "zUnarchiveSessionResponse",
  "session/status": "zSessionStatusResponse",
  "session/set_title": "zSetSessionTitleResponse",
  "session/resume": "zResumeSessionResponse",
  "session/close": "zCloseSessionResponse",
  "session/set_mode": "zSetSessionModeResponse",
  "session/set_config_option": "zSetSessionConfigOptionResponse",
  "session/prompt": "zPromptResponse",
};
// What the SDK answers a message it refuses with: it then never reaches a handler.
const REFUSALS = new Set([-32700, -32600, -32602]);

const record = {
  steps: [],
  updates: [],
  permissionRequests: [],
  notifications: [],
  ignoredFields: [],
  validationErrors: [],
  errors: [],
  agentExit: null,
};

/** A list that can be waited on for entries matching a predicate. */
class Watched {
  constructor(items) {
    this.items = items;
    this.listeners = new Set();
  }

  push(item) {
    this.items.push(item);
    for (const listener of this.listeners) listener();
  }

  /** The index of the `count`-th item for which `wanted` is true, once there is one. */
  until(wanted, count, timeoutMs, what) {
    return new Promise((resolve, reject) => {
      const check = () => {
        let seen = 0;
        const index = this.items.findIndex((item) => wanted(item) && ++seen === count);
        if (index >= 0) {
          stop();
          resolve(index);
        }
      };
      const timer = setTimeout(() => {
        stop();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const stop = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }
}

const updates = new Watched(record.updates);
const permissionRequests = new Watched(record.permissionRequests);
let permissionAnswer = "cancelled";

// The SDK reports what it cannot handle (a notification failing validation, a
// message that is not JSON-RPC, a connection closing) only on the console: keep
// every line, and keep stdout for the record alone.
for (const level of ["error", "warn", "log", "info", "debug"]) {
  console[level] = (...args) => {
    const line = args.map(describe).join(" ");
    process.stderr.write(`client.mjs: sdk ${level}: ${line}\n`);
    const entry = { source: "sdk-log", level, args: args.map(toJson) };
    const refused =
      (args[0] === "Error handling notification" && REFUSALS.has(args[1]?.code)) ||
      args[0] === "Invalid message";
    (refused ? record.validationErrors : record.errors).push(entry);
  };
}

function describe(value) {
  return typeof value === "string" ? value : JSON.stringify(toJson(value));
}

function toJson(value) {
  if (value instanceof Error) {
    return { name: value.name, message: value.message, code: value.code, data: value.data };
  }
  try {
    return JSON.parse(JSON.stringify(value ?? null));
  } catch {
    return String(value);
  }
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

// zod schema nodes that only wrap another: what the value inside is parsed with.
const WRAPPED = {
  catch: (def) => [def.innerType],
  optional: (def) => [def.innerType],
  nullable: (def) => [def.innerType],
  nonoptional: (def) => [def.innerType],
  default: (def) => [def.innerType],
  prefault: (def) => [def.innerType],
  readonly: (def) => [def.innerType],
  lazy: (def) => [def.getter()],
  pipe: (def) => [def.in, def.out],
  union: (def) => def.options,
  intersection: (def) => [def.left, def.right],
};

/** The object, array and other value schemas `schema` may parse a value with. */
function unwrap(schema, seen = new Set()) {
  if (seen.has(schema)) return [];
  seen.add(schema);
  const { def } = schema._zod;
  const inner = WRAPPED[def.type];
  return inner === undefined ? [schema] : inner(def).flatMap((node) => unwrap(node, seen));
}

/**
 * Whether `key` is a field the schema knows in the object at `path`, in any branch.
 * Values behind a transform are opaque (the SDK's required-or-default lists): their
 * fields count as unknown, so a field dropped there is never reported as altered.
 */
function knows(schema, path, key) {
  let nodes = [schema];
  for (const step of path) {
    nodes = nodes.flatMap((node) => unwrap(node)).flatMap(({ _zod: { def } }) => {
      if (def.type === "object") return Object.hasOwn(def.shape, step) ? [def.shape[step]] : [];
      if (def.type === "array") return [def.element];
      if (def.type === "record") return [def.valueType];
      return [];
    });
  }
  const known = ({ _zod: { def } }) =>
    def.type === "record" || (def.type === "object" && Object.hasOwn(def.shape, key));
  return nodes.flatMap((node) => unwrap(node)).some(known);
}

/**
 * How the SDK's parse of `wire` differs from it: `altered`, the values sent that it
 * does not keep as they were, and `ignored`, the paths of fields it does not know.
 * Fields the parse adds are defaults for ones left out, so only what was sent counts.
 */
function differences(schema, wire, parsed, path = [], found = { altered: [], ignored: [] }) {
  if (Object.is(wire, parsed)) return found;
  if (Array.isArray(wire) && Array.isArray(parsed) && wire.length === parsed.length) {
    wire.forEach((item, index) =>
      differences(schema, item, parsed[index], [...path, index], found),
    );
  } else if (isObject(wire) && isObject(parsed)) {
    for (const key of Object.keys(wire)) {
      if (parsed[key] === undefined && !knows(schema, path, key)) {
        found.ignored.push([...path, key].join("."));
      } else {
        differences(schema, wire[key], parsed[key], [...path, key], found);
      }
    }
  } else {
    found.altered.push({ path: path.join(".") || "(top)", sent: wire, parsed: parsed ?? null });
  }
  return found;
}

/**
 * One line per problem, for people. zod reports a failed union with every branch's
 * issues: when every branch has the wrong tag this names the tags allowed, and
 * otherwise it follows the branch whose tag matched, or else the closest one.
 */
function summarize(issues, prefix = []) {
  return issues.flatMap((issue) => {
    const path = [...prefix, ...issue.path];
    if (issue.code !== "invalid_union" || issue.errors.length === 0) {
      return [`${path.join(".") || "(top)"}: ${issue.message}`];
    }
    const wrongTag = (branch) =>
      branch.find((inner) => inner.code === "invalid_value" && inner.path.length <= 1);
    const tags = issue.errors.map(wrongTag);
    const tagPath = (tag) => tag?.path.join(".");
    if (tags.every((tag) => tag !== undefined && tagPath(tag) === tagPath(tags[0]))) {
      const allowed = tags.flatMap((tag) => tag.values).join(", ");
      return [`${[...path, ...tags[0].path].join(".")}: expected one of ${allowed}`];
    }
    const matched = issue.errors.filter((_, index) => tags[index] === undefined);
    const closest = (matched.length > 0 ? matched : issue.errors).reduce((best, branch) =>
      branch.length < best.length ? branch : best,
    );
    return summarize(closest, path);
  });
}

const requestMethods = new Map(); // our request id -> method, to check the answers

/**
 * Checks a message from the agent with the SDK's schema for it. A failure is one the
 * SDK would refuse (or, for a response, hand on unchecked); a parse that changes the
 * message is one the SDK takes only in part: a field dropped as unknown or invalid,
 * an array item skipped.
 */
function checkIncoming(message) {
  const isResponse = !("method" in message);
  const method = isResponse ? requestMethods.get(message.id) : message.method;
  if (isResponse) requestMethods.delete(message.id);
  const schema = zod[(isResponse ? RESPONSES : INCOMING)[method]];
  const payload = isResponse ? message.result : (message.params ?? {});
  if (schema === undefined || (isResponse && !("result" in message))) return;
  const where = { method, id: message.id, response: isResponse };
  const parsed = schema.safeParse(payload);
  if (!parsed.success) {
    record.validationErrors.push({
      source: "schema",
      ...where,
      problems: summarize(parsed.error.issues),
      issues: parsed.error.issues.map(toJson),
      message,
    });
    return;
  }
  const { altered, ignored } = differences(schema, payload, toJson(parsed.data));
  record.ignoredFields.push(...ignored.map((path) => ({ method, path })));
  if (altered.length > 0) {
    record.validationErrors.push({
      source: "altered",
      ...where,
      problems: altered.map(
        ({ path, sent, parsed: kept }) =>
          `${path}: sent ${JSON.stringify(sent)}, the SDK keeps ${JSON.stringify(kept)}`,
      ),
      differences: altered,
      message,
    });
  }
}

function checkOutgoing(message) {
  if ("method" in message && "id" in message) requestMethods.set(message.id, message.method);
  if (!("method" in message) && "error" in message) {
    const entry = { source: "sdk-refused", id: message.id, error: message.error };
    (REFUSALS.has(message.error.code) ? record.validationErrors : record.errors).push(entry);
  }
}

/** The agent's stdio as the SDK's stream, with every message seen on the way. */
function tappedStream(agent) {
  const toAgent = Writable.toWeb(agent.stdin);
  const writer = toAgent.getWriter();
  const decoder = new TextDecoder();
  // The SDK writes one whole NDJSON line per chunk, its own error answers included.
  const output = new WritableStream({
    async write(chunk) {
      checkOutgoing(JSON.parse(decoder.decode(chunk)));
      await writer.write(chunk);
    },
    close: () => writer.close(),
    abort: (reason) => writer.abort(reason),
  });
  const stream = acp.ndJsonStream(output, Readable.toWeb(agent.stdout));
  const readable = stream.readable.pipeThrough(
    new TransformStream({
      transform(message, controller) {
        try {
          checkIncoming(message);
        } catch (error) {
          record.errors.push({ source: "client", error: toJson(error) });
        }
        controller.enqueue(message);
      },
    }),
  );
  return { readable, writable: stream.writable };
}

function chooseOutcome(options) {
  if (permissionAnswer === "cancelled") return { outcome: "cancelled" };
  const option = options.find((candidate) => candidate.kind === permissionAnswer);
  if (option !== undefined) return { outcome: "selected", optionId: option.optionId };
  record.errors.push({
    source: "script",
    message: `no permission option of kind ${permissionAnswer}; answered cancelled`,
  });
  return { outcome: "cancelled" };
}

/** A deep subset match: every field of `pattern` is in `value`, equal or matching. */
function matches(value, pattern) {
  if (pattern === null || typeof pattern !== "object") return Object.is(value, pattern);
  if (value === null || typeof value !== "object") return false;
  if (Array.isArray(pattern)) {
    return (
      Array.isArray(value) &&
      pattern.length === value.length &&
      pattern.every((item, index) => matches(value[index], item))
    );
  }
  return Object.entries(pattern).every(([key, wanted]) => matches(value[key], wanted));
}

function substitute(value, variables) {
  const name = typeof value === "string" && VARIABLE.exec(value)?.[1];
  if (name) {
    if (!(name in variables)) throw new Error(`no variable ${value}`);
    return variables[name];
  }
  if (Array.isArray(value)) return value.map((item) => substitute(item, variables));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, substitute(item, variables)]),
    );
  }
  return value;
}

// Each request op: the method and params it sends.
const REQUESTS = {
  initialize: (step) => [
    acp.methods.agent.initialize,
    {
      protocolVersion: step.protocolVersion ?? acp.PROTOCOL_VERSION,
      clientCapabilities: step.clientCapabilities ?? {},
      ...step.params,
    },
  ],
  new: (step) => [
    acp.methods.agent.session.new,
    { cwd: step.cwd, mcpServers: [], ...step.params },
  ],
  load: (step) => [
    acp.methods.agent.session.load,
    { sessionId: step.sessionId, cwd: step.cwd, mcpServers: [], ...step.params },
  ],
  prompt: (step) => [
    acp.methods.agent.session.prompt,
    {
      sessionId: step.sessionId,
      prompt: step.prompt ?? [{ type: "text", text: step.text }],
      ...step.params,
    },
  ],
  request: (step) => [step.method, step.params ?? {}],
};

async function settle(method, answer) {
  try {
    return { method, result: await answer };
  } catch (error) {
    return { method, error: toJson(error) };
  }
}

async function runScript(agent, steps) {
  const variables = {};
  const background = new Map();
  for (const raw of steps) {
    const defaults = SESSION_OPS.has(raw.op) ? { sessionId: "$session" } : {};
    const step = substitute({ ...defaults, ...raw }, variables);
    const { op } = step;
    if (op in REQUESTS) {
      const [method, params] = REQUESTS[op](step);
      const outcome = settle(method, agent.request(method, params));
      if (step.background !== undefined) {
        background.set(step.background, outcome);
        record.steps.push({ op, method, background: step.background });
        continue;
      }
      const done = await outcome;
      if (op === "new" && done.result !== undefined) {
        variables[step.as ?? "session"] = done.result.sessionId;
      }
      record.steps.push({ op, ...done });
    } else if (op === "await") {
      const outcome = background.get(step.name);
      if (outcome === undefined) throw new Error(`no background request ${step.name}`);
      background.delete(step.name);
      record.steps.push({ op, name: step.name, ...(await outcome) });
    } else if (op === "cancel") {
      await agent.notify(acp.methods.agent.session.cancel, { sessionId: step.sessionId });
      record.steps.push({ op });
    } else if (op === "notify") {
      await agent.notify(step.method, step.params ?? {});
      record.steps.push({ op, method: step.method });
    } else if (op === "permission") {
      permissionAnswer = step.answer;
      record.steps.push({ op, answer: step.answer });
    } else if (op === "waitFor") {
      const count = step.count ?? 1;
      const timeoutMs = step.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      const [list, wanted] =
        step.permission === undefined
          ? [
              updates,
              (entry) =>
                (step.sessionId === undefined || entry.sessionId === step.sessionId) &&
                matches(entry.update, step.update),
            ]
          : [permissionRequests, (entry) => matches(entry.request, step.permission)];
      const what = JSON.stringify(step.update ?? step.permission);
      const index = await list.until(wanted, count, timeoutMs, `${count} x ${what}`);
      record.steps.push({ op, index });
    } else {
      throw new Error(`unknown op ${JSON.stringify(op)}`);
    }
  }
  for (const name of background.keys()) {
    record.errors.push({ source: "script", message: `background request ${name} never awaited` });
  }
  // The SDK hands messages that arrived before the last answer to their handlers in
  // microtasks; let those run before connectWith closes the connection.
  await new Promise((resolve) => setImmediate(resolve));
}

function agentExit(agent) {
  return new Promise((resolve) => {
    if (agent.exitCode !== null || agent.signalCode !== null) {
      resolve({ code: agent.exitCode, signal: agent.signalCode });
      return;
    }
    agent.once("exit", (code, signal) => resolve({ code, signal }));
  });
}

async function main() {
  const [command, ...args] = argv;
  if (command === undefined) {
    process.stderr.write("usage: node client.mjs [--unstable] COMMAND [ARG...] < script.json\n");
    process.exit(2);
  }
  const steps = JSON.parse(await text(process.stdin));
  const agent = spawn(command, args, { stdio: ["pipe", "pipe", "inherit"] });
  const exited = agentExit(agent);
  agent.on("error", (error) => record.errors.push({ source: "agent", error: toJson(error) }));
  // A write after the agent is gone fails here, and again as the request's error.
  agent.stdin.on("error", () => {});

  const app = acp
    .client({ name: "parley-ts-sdk-tests" })
    .onNotification(acp.methods.client.session.update, ({ params }) => {
      updates.push({ sessionId: params.sessionId, update: params.update });
    })
    .onNotification("*", ({ method, params }) => {
      record.notifications.push({ method, params: params ?? null });
    })
    .onRequest(acp.methods.client.session.requestPermission, ({ params }) => {
      const outcome = chooseOutcome(params.options);
      permissionRequests.push({ request: params, outcome });
      return { outcome };
    });
  try {
    await app.connectWith(tappedStream(agent), (context) => runScript(context, steps));
  } catch (error) {
    record.errors.push({ source: "script", error: toJson(error) });
  }

  agent.stdin.end();
  const timer = setTimeout(() => {
    record.errors.push({ source: "agent", message: "did not exit after its stdin closed" });
    agent.kill("SIGKILL");
  }, AGENT_EXIT_TIMEOUT_MS);
  record.agentExit = await exited;
  clearTimeout(timer);
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

await main();
