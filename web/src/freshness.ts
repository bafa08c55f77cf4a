// Freshness: which snapshot the page shows, how long ago it was refreshed
// (ticking by itself), and a visible warning when the service says it is stale.
//
// SnapshotFeed is the seam for what reports snapshots: today every answer the
// page reads and a slow poll; a live Watch stream (issue 13) can publish into
// the same feed, and a status panel (issue 17) can subscribe to it.
import type { Api } from "./api.js";
import type { SnapshotInfo } from "./gen/clientvpn/v1/clientvpn_pb.js";
import { h } from "./dom.js";
import { ago, isoSeconds, toDate } from "./format.js";

/** SnapshotListener hears about every snapshot the page learns of. */
export type SnapshotListener = (info: SnapshotInfo, source: "view" | "poll") => void;

/** SnapshotFeed passes snapshot infos to its listeners. */
export class SnapshotFeed {
  private listeners: SnapshotListener[] = [];

  /** subscribe adds a listener and returns a function removing it. */
  subscribe(l: SnapshotListener): () => void {
    this.listeners.push(l);
    return () => (this.listeners = this.listeners.filter((x) => x !== l));
  }

  /** publish tells every listener. */
  publish(info: SnapshotInfo | undefined, source: "view" | "poll"): void {
    if (info) for (const l of this.listeners) l(info, source);
  }
}

/** pollSnapshots asks the service for its current snapshot every interval, publishing into feed. */
export function pollSnapshots(api: Api, feed: SnapshotFeed, intervalMs: number): () => void {
  const timer = setInterval(() => {
    api.snapshot().then((s) => feed.publish(s, "poll"), () => {
      // The view's own reads report errors; a failed poll only skips a beat.
    });
  }, intervalMs);
  return () => clearInterval(timer);
}

/** Freshness renders the snapshot line and the stale warning. */
export class Freshness {
  private shown: SnapshotInfo | undefined; // the snapshot the view's data came from
  private latest: SnapshotInfo | undefined; // the newest snapshot heard of

  constructor(
    private readonly line: HTMLElement,
    private readonly stale: HTMLElement,
    feed: SnapshotFeed,
    private readonly reload: () => void,
  ) {
    feed.subscribe((info, source) => {
      if (source === "view") this.shown = info;
      if (!this.latest || info.version >= this.latest.version) this.latest = info;
      this.render();
    });
    setInterval(() => this.render(), 1000);
  }

  private render(): void {
    const s = this.shown ?? this.latest;
    if (!s) return;
    const at = toDate(s.refreshedAt);
    const parts: (Node | string)[] = [`Snapshot ${s.version} · refreshed `];
    parts.push(at ? h("time", { datetime: isoSeconds(at), title: isoSeconds(at) }, ago(at)) : "at an unknown time");
    const newer = this.shown && this.latest && this.latest.version > this.shown.version ? this.latest : undefined;
    if (newer) {
      const b = h("button", { type: "button", class: "link", id: "reload" }, `snapshot ${newer.version} is available — reload`);
      b.addEventListener("click", this.reload);
      parts.push(" · ", b);
    }
    this.line.replaceChildren(...parts);
    // The warning is about the service now: the newest snapshot heard of.
    const current = this.latest ?? s;
    const last = toDate(current.refreshedAt);
    this.stale.hidden = !current.stale;
    if (current.stale) {
      this.stale.replaceChildren(
        h("strong", {}, "⚠ Stale data. "),
        "The service could not refresh some accounts or regions, or could not reach its cache: what is shown may be out of date",
        last ? ` (last good refresh ${ago(last)}, ${isoSeconds(last)}).` : ".",
      );
    }
  }
}
