// Re-create, with the OpenTelemetry JS SDK, the spans tphd sent (the plain
// form test_otlp.py decoded: resource, scope, spans with their ids, times,
// attributes, events and status) and export them with the SDK's own
// OTLP/HTTP protobuf exporter. Usage: node send.mjs URL SPANS.json
import { readFileSync } from "node:fs";
import { context, trace } from "@opentelemetry/api";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { Resource } from "@opentelemetry/resources";

const [url, file] = process.argv.slice(2);
const [[resourceAttrs, [scopeName, scopeVersion], spans]] = JSON.parse(readFileSync(file, "utf8"));

// Nanoseconds since the epoch as the SDK's [seconds, nanoseconds] (exact,
// where a Number of milliseconds would round).
const hr = (ns) => [Number(BigInt(ns) / 1000000000n), Number(BigInt(ns) % 1000000000n)];

// The same ids as tphd's, handed out in creation order.
const spanIds = spans.map((s) => s.span_id);
const idGenerator = {
  generateTraceId: () => spans[0].trace_id,
  generateSpanId: () => spanIds.shift(),
};

const exporter = new OTLPTraceExporter({ url });
const provider = new BasicTracerProvider({
  resource: new Resource(resourceAttrs),
  idGenerator,
  // One request for all spans, sent by forceFlush() below.
  spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 60000 })],
});
const tracer = provider.getTracer(scopeName, scopeVersion);

const made = new Map();
for (const s of spans) {
  const parent = made.get(s.parent);
  const ctx = parent ? trace.setSpan(context.active(), parent) : context.active();
  const span = tracer.startSpan(s.name, { kind: s.kind - 1, startTime: hr(s.start), attributes: s.attributes },
    ctx);
  for (const e of s.events) span.addEvent(e.name, e.attributes, hr(e.time));
  if (s.status) span.setStatus({ code: s.status.code, message: s.status.message });
  made.set(s.span_id, span);
}
// Children end before their parents, as the calls did.
for (const s of [...spans].reverse()) made.get(s.span_id).end(hr(s.end));
await provider.forceFlush();
await provider.shutdown();
