// Live updates (issue 13): after each load of the view, the page watches the
// same filters from the loaded snapshot's version (list-then-watch) and
// applies each change to the loaded rows: new rows appear where the API's
// order puts them, changed cells are highlighted, removed rows go, and the
// freshness line moves with each version. A dropped stream resumes from the
// last version seen; a reset (the service could not resume) reloads the view.
// Where streaming does not work (a proxy that buffers, an old service), the
// page falls back to polling: it reloads the view when the snapshot moves.
import { Code, ConnectError } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { isAbort } from "./api.js";
import type { Auth } from "./auth.js";
import type { ClientVpnClient } from "./client.js";
import { h } from "./dom.js";
import { refKey, refOf, type EndpointRef } from "./endpoint.js";
import type { SnapshotFeed } from "./freshness.js";
import {
  SnapshotInfoSchema,
  type ClientVpnEndpoint,
  type ClientVpnEndpointKey,
  type SnapshotInfo,
  type WatchClientVpnEndpointsResponse,
} from "./gen/clientvpn/v1/clientvpn_pb.js";
import type { FilterSpec } from "./view.js";

/** LoadedView is what a load of the view brought: where its rows sit and which snapshot they are. */
export interface LoadedView {
  filters: FilterSpec[];
  /** True on the first page (or "load all"): rows before the first one belong here. */
  firstPage: boolean;
  /** The token of the next page; "" when no row follows the last one. */
  nextToken: string;
  snapshot: SnapshotInfo | undefined;
}

/** LiveHost is what the live updates need of the page. */
export interface LiveHost {
  /** loadedRows returns the loaded rows, in the API's order. */
  loadedRows(): ClientVpnEndpoint[];
  /** patchRows replaces the loaded rows; countDelta adjusts a known match count. */
  patchRows(rows: ClientVpnEndpoint[], snapshot: SnapshotInfo, countDelta: number): void;
  /** reload loads the view again, from a fresh List. */
  reload(): void;
}

/** LiveState is what the connection indicator shows. */
export type LiveState = "off" | "connecting" | "live" | "reconnecting" | "reset" | "polling";

/** Timing of reconnections and of the polling fallback. */
const firstRetryMs = 1_000;
const maxRetryMs = 30_000;
/** failuresBeforePolling: failed streams in a row, while plain calls work, before falling back to polling. */
const failuresBeforePolling = 3;
/** streamRetryMs is how long the polling fallback lasts before streaming is tried again. */
const streamRetryMs = 120_000;
/** upAfterMs: a stream that has not failed this long after it was opened counts as live. */
const upAfterMs = 1_000;
/** quietMs is how long after a poll reports a newer snapshot the stream may still bring its change. */
const quietMs = 3_000;
/** highlightMs is how long a changed cell or a new row stays highlighted. */
const highlightMs = 6_000;

/** Live keeps the loaded rows current through WatchClientVpnEndpoints. */
export class Live {
  private run = 0; // generation: each follow() supersedes the stream before it
  private abort: AbortController | undefined;
  private state: LiveState = "off";
  private polling = false;
  private pollUntil = 0;
  private current: LoadedView | undefined;
  private lastInfo: SnapshotInfo | undefined; // the newest snapshot heard of, for its stale flag
  private shownVersion = 0n; // the snapshot the rows are known to be current with
  private readonly marks = new Map<string, { cols: Set<string> | "row"; until: number }>();
  private readonly indicator: HTMLElement;

  constructor(
    private readonly client: ClientVpnClient,
    private readonly host: LiveHost,
    private readonly feed: SnapshotFeed,
    private readonly auth: Auth,
  ) {
    this.indicator = h("span", { id: "live", role: "status", "aria-live": "polite" });
    document.getElementById("freshness")?.after(this.indicator);
    feed.subscribe((info, source) => {
      if (!this.lastInfo || info.version >= this.lastInfo.version) this.lastInfo = info;
      if (source === "view" && info.version > this.shownVersion) this.shownVersion = info.version;
      // A newer snapshot that changed nothing this view matches brings no
      // message until the next heartbeat: once the stream had time to bring
      // a change and did not, the rows are that snapshot's too.
      if (source === "poll" && this.state === "live" && info.version > this.shownVersion) {
        const run = this.run;
        setTimeout(() => {
          if (run === this.run && this.state === "live" && info.version > this.shownVersion) this.feed.publish(info, "view");
        }, quietMs);
      }
      // Polling fallback: a newer snapshot than the rows' reloads the view.
      if (this.polling && source === "poll" && this.current?.snapshot && info.version > this.current.snapshot.version) {
        this.host.reload();
      }
    });
    this.render();
  }

  /** follow watches the view just loaded, from its snapshot's version; undefined stops watching (a failed load). */
  follow(v: LoadedView | undefined): void {
    this.stop();
    this.current = v;
    this.shownVersion = v?.snapshot?.version ?? 0n;
    if (!v) {
      this.setState("off");
      return;
    }
    if (this.polling && Date.now() < this.pollUntil) {
      this.setState("polling");
      return;
    }
    this.polling = false;
    const from = v.snapshot?.version ?? 0n;
    if (from === 0n) {
      // No snapshot yet: nothing to resume from. Polling shows the first one.
      this.fallBack();
      return;
    }
    void this.watch(++this.run, v, from);
  }

  private stop(): void {
    this.run++;
    this.abort?.abort();
    this.abort = undefined;
  }

  private fallBack(): void {
    this.stop();
    this.polling = true;
    this.pollUntil = Date.now() + streamRetryMs;
    this.setState("polling");
  }

  private async watch(run: number, view: LoadedView, from: bigint): Promise<void> {
    let version = from;
    let failures = 0; // attempts in a row without a message
    let attempt = 0;
    while (run === this.run) {
      this.setState(attempt === 0 ? "connecting" : "reconnecting");
      const abort = (this.abort = new AbortController());
      try {
        // A resumed stream starts with the changes missed and a heartbeat;
        // a service older than that says nothing until something changes or
        // the next heartbeat: one that has not failed within a moment is up.
        const up = setTimeout(() => {
          if (run === this.run && !abort.signal.aborted) this.setState("live");
        }, upAfterMs);
        abort.signal.addEventListener("abort", () => clearTimeout(up));
        const stream = this.client.watchClientVpnEndpoints(
          { filters: view.filters.map((f) => ({ name: f.name, values: f.values })), resumeFromVersion: version },
          { signal: abort.signal },
        );
        for await (const m of stream) {
          if (run !== this.run) return;
          failures = 0;
          attempt = 0;
          if (m.reset) {
            // The service could not take us on from `version`: list again
            // (the view's page, not the whole matching set the stream would send).
            this.setState("reset");
            this.stop();
            this.host.reload();
            return;
          }
          this.setState("live");
          if (!m.heartbeat && m.version > version) {
            version = m.version;
            this.apply(m, view);
            this.feed.publish(this.infoAt(m), "view");
          } else if (m.heartbeat && m.version >= version) {
            version = m.version;
            if (m.refreshedAt) {
              // A heartbeat carries its version's latest refresh: one that
              // found nothing changed moves the freshness line too.
              this.feed.publish(this.infoAt(m), "view");
            } else if (this.lastInfo?.version === m.version) {
              // A service that does not say when: show the snapshot as polled.
              this.feed.publish(this.lastInfo, "view");
            }
          }
        }
        // The stream ended cleanly (the service is shutting down): resume elsewhere.
        clearTimeout(up);
      } catch (err) {
        abort.abort();
        if (run !== this.run || isAbort(err)) return;
        if (this.auth.noteError(err)) {
          // The page reloads once the user gives a token, and follows again.
          this.setState("off");
          return;
        }
        if (err instanceof ConnectError && (err.code === Code.Unimplemented || err.code === Code.ResourceExhausted)) {
          this.fallBack(); // this service (or this client's share of it) has no streams for us
          return;
        }
        // A stream that fails while plain calls work means streaming does not
        // get through (a proxy, a browser extension): after a few tries, poll.
        // When plain calls fail too, the service is away: keep reconnecting.
        if ((await this.serving()) && ++failures >= failuresBeforePolling) {
          this.fallBack();
          return;
        }
      }
      attempt++;
      await sleep(Math.min(maxRetryMs, firstRetryMs * 2 ** (attempt - 1)));
    }
  }

  /** serving reports whether the service answers a plain call. */
  private async serving(): Promise<boolean> {
    try {
      await this.client.listClientVpnEndpoints({ maxResults: 1 });
      return true;
    } catch {
      return false;
    }
  }

  /** infoAt is the snapshot a change message brings the rows to. */
  private infoAt(m: WatchClientVpnEndpointsResponse): SnapshotInfo {
    return create(SnapshotInfoSchema, {
      version: m.version,
      refreshedAt: m.refreshedAt,
      // The stream does not carry staleness; the last poll's word stands until the next.
      stale: this.lastInfo?.stale ?? false,
    });
  }

  /** apply changes the loaded rows as one message says. */
  private apply(m: WatchClientVpnEndpointsResponse, view: LoadedView): void {
    const before = this.host.loadedRows();
    const beforeCells = cellTexts();
    const removed = new Set(m.removed.map((k) => refKey(refOfKey(k))));
    const modified = new Map(m.modified.map((e) => [refKey(refOf(e)), e]));
    let rows = before.filter((e) => !removed.has(refKey(refOf(e)))).map((e) => modified.get(refKey(refOf(e))) ?? e);
    const first = before[0];
    const last = before.at(-1);
    const added: string[] = [];
    for (const e of m.added) {
      // A new row belongs to this page when the API's order puts it between
      // the page's first and last rows, or past either end with no page there.
      const afterFirst = view.firstPage || (first !== undefined && compareRefs(refOf(e), refOf(first)) > 0);
      const beforeLast = view.nextToken === "" || (last !== undefined && compareRefs(refOf(e), refOf(last)) < 0);
      if (!afterFirst || !beforeLast) continue;
      rows = insertSorted(rows, e);
      added.push(refKey(refOf(e)));
    }
    const info = this.infoAt(m);
    this.host.patchRows(rows, info, m.added.length - m.removed.length);
    const until = Date.now() + highlightMs;
    for (const k of added) this.marks.set(k, { cols: "row", until });
    for (const k of modified.keys()) {
      const old = beforeCells.get(k);
      const now = cellTexts().get(k);
      if (!old || !now) continue;
      const cols = new Set([...now].filter(([c, text]) => old.get(c) !== text).map(([c]) => c));
      if (cols.size > 0) this.marks.set(k, { cols, until });
    }
    this.highlight();
  }

  /** highlight marks new rows and changed cells, until their time is up. */
  private highlight(): void {
    const now = Date.now();
    for (const [k, mark] of this.marks) {
      if (mark.until <= now) {
        this.marks.delete(k);
        continue;
      }
      const tr = document.querySelector<HTMLTableRowElement>(`#endpoints tbody tr[data-key="${CSS.escape(k)}"]`);
      if (!tr) continue;
      if (mark.cols === "row") tr.classList.add("live-added");
      else {
        const cols = mark.cols;
        tr.querySelectorAll<HTMLElement>("td[data-column]").forEach((td) => {
          if (cols.has(td.dataset.column ?? "")) td.classList.add("live-changed");
        });
      }
    }
  }

  private setState(s: LiveState): void {
    if (s === this.state) return;
    this.state = s;
    this.render();
  }

  private render(): void {
    document.body.dataset.live = this.state;
    const text: Record<LiveState, string> = {
      off: "",
      connecting: "◌ Connecting…",
      live: "● Live",
      reconnecting: "◌ Reconnecting…",
      reset: "↻ Reset: reloading",
      polling: "○ Polling (live updates unavailable)",
    };
    this.indicator.textContent = text[this.state];
    this.indicator.className = `live ${this.state}`;
    this.indicator.title = this.state === "live" ? "Changes appear as the service publishes them" : "";
  }
}

function refOfKey(k: ClientVpnEndpointKey): EndpointRef {
  return { id: k.clientVpnEndpointId, region: k.region, account: k.accountId };
}

/** compareRefs orders references as the API lists them: by id, then region, then account. */
export function compareRefs(a: EndpointRef, b: EndpointRef): number {
  const cmp = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  return cmp(a.id, b.id) || cmp(a.region, b.region) || cmp(a.account, b.account);
}

function insertSorted(rows: ClientVpnEndpoint[], e: ClientVpnEndpoint): ClientVpnEndpoint[] {
  const ref = refOf(e);
  const at = rows.findIndex((x) => compareRefs(ref, refOf(x)) < 0);
  return at < 0 ? [...rows, e] : [...rows.slice(0, at), e, ...rows.slice(at)];
}

/** cellTexts reads the table's cells by row key and column. */
function cellTexts(): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  document.querySelectorAll<HTMLTableRowElement>("#endpoints tbody tr[data-key]").forEach((tr) => {
    const cells = new Map<string, string>();
    tr.querySelectorAll<HTMLElement>("td[data-column]").forEach((td) => cells.set(td.dataset.column ?? "", td.textContent ?? ""));
    out.set(tr.dataset.key ?? "", cells);
  });
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
