// The data the browser tests push through the real push API: a small cluster's last hour,
// stamped relative to now so the UI's default "last hour" shows it. Deterministic apart
// from the clock: a seeded generator picks levels and messages.
//
//   namespace shop:  Deployment api (2 pods, JSON lines with structured metadata, 6,000
//                    lines between them), Deployment checkout (one pod OOMKilled three
//                    times, gone for 20 minutes), StatefulSet cart-db-0 (healthy)
//   namespace batch: StatefulSet worker-0 (logfmt), legacy-7d9f8b6c5-zz9kq with ANSI colours
//   Kubernetes events for both namespaces, as the agent writes them.

export const TERMINATION_POD = 'checkout-6f7d8c9b5-k2x7q';

function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const ns = (ms) => `${BigInt(Math.floor(ms)) * 1_000_000n + BigInt(Math.floor((ms % 1) * 1e6))}`;
const iso = (ms) => new Date(ms).toISOString();

function podLabels(namespace, app, pod, container, node, stream = 'stdout') {
  return { namespace, app, pod, container, node, stream, job: `${namespace}/${app}`, service_name: app };
}

/** Streams for Loki's JSON push API, `[{stream, values}]`, with `now` in milliseconds. */
export function fixtureStreams(now = Date.now()) {
  const r = rng(42);
  const pick = (a) => a[Math.floor(r() * a.length)];
  const streams = [];
  const hour = 3600e3;

  // api: 2 pods × 3,000 JSON lines over the last 55 minutes.
  for (const [i, pod] of ['api-7c9d8b5f4-m6t8z', 'api-7c9d8b5f4-x2k9p'].entries()) {
    const values = [];
    for (let k = 0; k < 3000; k++) {
      const t = now - 55 * 60e3 + (k * 55 * 60e3) / 3000 + i * 7.3 + r();
      const level = pick(['info', 'info', 'info', 'info', 'debug', 'warn', 'error']);
      const status = level === 'error' ? pick([500, 502, 503]) : level === 'warn' ? pick([404, 429]) : pick([200, 200, 201, 204]);
      const line = JSON.stringify({ level, msg: pick(['request served', 'cache miss', 'upstream timeout', 'user login']), method: pick(['GET', 'POST', 'DELETE']), path: pick(['/api/v1/orders', '/api/v1/cart', '/healthz', '/login']), status, duration_ms: Math.round(r() * 200000) / 100, user: { id: Math.floor(r() * 500), name: pick(['alice', 'bob', 'carol', 'zoë']) } });
      values.push([ns(t), line, { pod_uid: `uid-api-${i}`, trace_id: (0xabc000 + k).toString(16).padStart(16, '0') }]);
    }
    streams.push({ stream: podLabels('shop', 'api', pod, 'api', `node-${i + 1}`), values });
  }

  // checkout: OOMKilled three times, the last 20 minutes ago; the pod is gone since.
  {
    const pod = TERMINATION_POD;
    const values = [];
    const deaths = [now - 50 * 60e3, now - 35 * 60e3, now - 20 * 60e3];
    let start = now - hour + 60e3;
    for (const [d, death] of deaths.entries()) {
      for (let t = start + 1000; t < death - 500; t += 15e3) {
        values.push([ns(t), `level=info msg="processing order" order_id=${Math.floor(r() * 1e6)} items=${1 + Math.floor(r() * 9)} heap_mb=${Math.floor(200 + ((t - start) / (death - start)) * 300)}`]);
      }
      values.push([ns(death - 400), `level=error msg="allocation failed: out of memory" heap_mb=512 limit_mb=512`]);
      values.push([
        ns(death),
        `kiroku_event=container_terminated reason=OOMKilled exit_code=137 signal=9 restart_count=${d + 1} started_at=${iso(start)} finished_at=${iso(death)} container=checkout pod=${pod} namespace=shop container_id=containerd://${(0x4f1c00 + d).toString(16)}`,
      ]);
      start = death + 2000;
    }
    streams.push({ stream: podLabels('shop', 'checkout', pod, 'checkout', 'node-2', 'stderr'), values, metadata: { pod_uid: 'uid-checkout' } });
  }

  // cart-db-0: healthy, quiet.
  {
    const values = [];
    for (let t = now - hour + 5000; t < now - 2000; t += 60e3) values.push([ns(t), `LOG:  checkpoint complete: wrote ${Math.floor(r() * 300)} buffers`]);
    streams.push({ stream: podLabels('shop', 'cart-db', 'cart-db-0', 'postgres', 'node-1'), values });
  }

  // worker-0: logfmt.
  {
    const values = [];
    for (let t = now - hour + 3000; t < now - 1000; t += 9e3) {
      const level = pick(['info', 'info', 'debug', 'warn', 'error']);
      values.push([ns(t), `ts=${iso(t)} level=${level} caller=worker.go:${Math.floor(r() * 400)} msg="${pick(['job done', 'job failed', 'retrying job'])}" queue=${pick(['emails', 'thumbnails', 'reports'])} attempt=${1 + Math.floor(r() * 4)} duration=${(r() * 10).toFixed(1)}s`]);
    }
    streams.push({ stream: podLabels('batch', 'worker', 'worker-0', 'worker', 'node-3'), values });
  }

  // legacy: ANSI-coloured Java-style lines on stderr.
  {
    const values = [];
    for (let t = now - hour + 7000; t < now - 3000; t += 30e3) {
      const [code, word] = pick([[32, 'INFO'], [33, 'WARN'], [31, 'ERROR']]);
      values.push([ns(t), `\u001b[${code}m${word}\u001b[0m [main] \u001b[36mcom.example.Legacy\u001b[0m - heartbeat ok seq=${Math.floor(t / 1000) % 100000}`]);
    }
    streams.push({ stream: podLabels('batch', 'legacy', 'legacy-7d9f8b6c5-zz9kq', 'legacy', 'node-3', 'stderr'), values });
  }

  // Kubernetes events, as the agent's eventhandler stream.
  const ev = (namespace, list) => ({ stream: { job: 'integrations/kubernetes/eventhandler', namespace, source: 'kubernetes-events' }, values: list.sort((a, b) => (a[0] < b[0] ? -1 : 1)) });
  const shopEvents = [];
  for (const d of [now - 50 * 60e3, now - 35 * 60e3, now - 20 * 60e3]) {
    shopEvents.push([ns(d + 1000), `type=Warning reason=BackOff kind=Pod name=${TERMINATION_POD} count=3 component=kubelet msg="Back-off restarting failed container checkout in pod ${TERMINATION_POD}"`]);
  }
  shopEvents.push([ns(now - 19 * 60e3), `type=Normal reason=Killing kind=Pod name=${TERMINATION_POD} component=kubelet msg="Stopping container checkout"`]);
  shopEvents.push([ns(now - 10 * 60e3), `type=Warning reason=FailedCreate kind=ReplicaSet name=payments-5f6d7c8b9 count=12 component=replicaset-controller msg="Error creating: pods \\"payments-5f6d7c8b9-\\" is forbidden: exceeded quota: compute"`]);
  shopEvents.push([ns(now - 50 * 60e3 + 3000), `type=Normal reason=Pulled kind=Pod name=api-7c9d8b5f4-m6t8z component=kubelet msg="Container image already present on machine"`]);
  streams.push(ev('shop', shopEvents));
  streams.push(ev('batch', [[ns(now - 40 * 60e3), `type=Normal reason=Scheduled kind=Pod name=worker-0 component=default-scheduler msg="Successfully assigned batch/worker-0 to node-3"`]]));

  // Every value sorted by time within its stream; per-stream metadata on each entry.
  for (const s of streams) {
    s.values.sort((a, b) => (BigInt(a[0]) < BigInt(b[0]) ? -1 : 1));
    if (s.metadata) {
      s.values = s.values.map((v) => [v[0], v[1], s.metadata]);
      delete s.metadata;
    }
  }
  return streams;
}

/** Pushes streams to a server with its JSON push API, one request per stream. */
export async function push(baseUrl, streams) {
  for (const s of streams) {
    const resp = await fetch(`${baseUrl}/loki/api/v1/push`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ streams: [s] }) });
    if (resp.status !== 204) throw new Error(`push of ${JSON.stringify(s.stream)} answered ${resp.status}: ${await resp.text()}`);
  }
}
