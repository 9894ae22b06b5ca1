// Prometheus metrics (prom-client) and the HTTP endpoint that serves them.
import http from 'node:http';
import { Registry, Counter, Histogram, Gauge, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly events = new Counter({ name: 'paas_rproxy_events_total', help: 'SPI events received, by action and result (applied|unchanged|rejected)', labelNames: ['action', 'result'], registers: [this.registry] });
  readonly rejected = new Counter({ name: 'paas_rproxy_rejected_events_total', help: 'SPI messages/documents rejected by validation', labelNames: ['code'], registers: [this.registry] });
  readonly runs = new Counter({ name: 'paas_rproxy_playbook_runs_total', help: 'ansible-playbook runs, by kind and result', labelNames: ['kind', 'result'], registers: [this.registry] });
  readonly runDuration = new Histogram({ name: 'paas_rproxy_playbook_run_duration_seconds', help: 'ansible-playbook run duration, by result', labelNames: ['result'], buckets: [0.5, 1, 1.5, 2, 3, 5, 8, 13, 21, 34, 60, 120], registers: [this.registry] });
  readonly latency = new Histogram({ name: 'paas_rproxy_event_to_applied_seconds', help: 'time from an event\'s arrival (broker timestamp when present) until a playbook run applied it on every proxy', buckets: [0.25, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 5, 8, 13, 30, 60, 120, 300], registers: [this.registry] });
  readonly pending = new Gauge({ name: 'paas_rproxy_pending_events', help: 'events durably written to the state but not yet applied on every proxy', registers: [this.registry] });
  readonly lastSuccess = new Gauge({ name: 'paas_rproxy_last_successful_run_timestamp_seconds', help: 'end of the last successful routing run per proxy (unix time)', labelNames: ['proxy'], registers: [this.registry] });
  readonly connected = new Gauge({ name: 'paas_rproxy_broker_connected', help: '1 while the listener is connected and subscribed', registers: [this.registry] });
  readonly reconnects = new Counter({ name: 'paas_rproxy_broker_reconnects_total', help: 'broker (re)connection attempts that failed or dropped', registers: [this.registry] });

  constructor() { collectDefaultMetrics({ register: this.registry, prefix: 'paas_rproxy_' }); }

  /** listen: "host:port" (port 0 = any); resolves with the bound address */
  serve(listen: string): Promise<{ server: http.Server; address: string }> {
    const i = listen.lastIndexOf(':');
    const host = i > 0 ? listen.slice(0, i).replace(/^\[|\]$/g, '') : '127.0.0.1';
    const port = Number(i >= 0 ? listen.slice(i + 1) : listen);
    const server = http.createServer((req, res) => {
      if (req.url === '/metrics' || req.url === '/') {
        this.registry.metrics().then((text) => { res.writeHead(200, { 'content-type': this.registry.contentType }); res.end(text); },
          (e: unknown) => { res.writeHead(500); res.end(String(e)); });
      } else if (req.url === '/healthz') { res.writeHead(200); res.end('ok\n'); } else { res.writeHead(404); res.end(); }
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        const a = server.address();
        resolve({ server, address: typeof a === 'object' && a ? `${a.address}:${a.port}` : listen });
      });
    });
  }
}
