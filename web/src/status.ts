// The status panel: what vpnfacade.admin.v1.AdminService's GetStatus says
// (each partition's freshness, the lease holder, the answering replica's
// role) and a "Refresh now" button calling RefreshNow. It keeps to itself:
// main.ts creates it beside the App and hands it the page's interceptors
// (the token) and snapshot feed (to reload when a new version shows up).
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { describeError } from "./api.js";
import { byId, h } from "./dom.js";
import { ago, isoSeconds, plural, toDate } from "./format.js";
import type { SnapshotFeed } from "./freshness.js";
import { AdminService, Role, type GetStatusResponse, type PartitionStatus } from "./gen/vpnfacade/admin/v1/admin_pb.js";
import type { Timestamp } from "@bufbuild/protobuf/wkt";

/** A typed client for AdminService. */
export type AdminClient = Client<typeof AdminService>;

/** newAdminClient returns a client for the admin service at baseUrl (POST: its answers are never cached). */
export function newAdminClient(baseUrl: string, interceptors: Interceptor[] = []): AdminClient {
  return createClient(AdminService, createConnectTransport({ baseUrl, interceptors }));
}

const roleNames: Record<Role, string> = {
  [Role.UNSPECIFIED]: "unknown",
  [Role.LEADER]: "leader",
  [Role.FOLLOWER]: "follower",
  [Role.SOLO]: "solo (in-memory store)",
};

/** StatusPanel shows GetStatus and offers RefreshNow. */
export class StatusPanel {
  private readonly root: HTMLElement;
  private readonly summary: HTMLElement;
  private readonly body: HTMLElement;
  private readonly button: HTMLButtonElement;
  private readonly result: HTMLElement;
  private version: bigint | undefined;
  private loads = 0; // completed GetStatus calls, in data-loads, so that tests can wait for one

  /**
   * @param client the admin client
   * @param feed snapshots the page learns of: a new version reloads the panel
   * @param onRefreshed called after a forced refresh published, to reload the table
   */
  constructor(private readonly client: AdminClient, feed: SnapshotFeed, private readonly onRefreshed: () => void) {
    this.summary = h("summary", { id: "status-summary" }, "Status: loading…");
    this.body = h("div", { id: "status-body" });
    this.button = h("button", { type: "button", id: "refresh-now" }, "Refresh now");
    this.result = h("span", { id: "refresh-result", "aria-live": "polite" });
    this.root = h("details", { id: "status-panel", "data-loads": "0" },
      this.summary,
      h("div", { class: "status-actions" }, this.button, this.result),
      this.body,
    );
    byId("freshness").closest("header")?.after(this.root);
    this.button.addEventListener("click", () => void this.refreshNow());
    feed.subscribe((info) => {
      if (this.version !== undefined && info.version !== this.version) void this.load();
    });
  }

  /** load asks GetStatus and shows the answer, or the error. */
  async load(): Promise<void> {
    try {
      this.show(await this.client.getStatus({}));
    } catch (err) {
      const e = describeError(err);
      this.root.dataset.state = "error";
      this.summary.textContent = `Status: ${e.code}`;
      this.body.replaceChildren(h("p", { class: "status-error" }, `${e.code}: ${e.message}`));
    } finally {
      this.root.dataset.loads = String(++this.loads);
    }
  }

  private show(s: GetStatusResponse): void {
    this.version = s.snapshot?.version;
    this.root.dataset.state = "loaded";
    const leader = s.lease ? s.lease.holder || "nobody" : s.replica;
    const parts = s.partitions.length;
    const stale = s.partitions.filter((p) => p.stale).length;
    this.summary.textContent = `Status: ${plural(parts, "partition", "partitions")}${stale ? `, ${stale} stale` : ""} · leader ${leader}` +
      ` · this replica ${s.replica} is ${roleNames[s.role] ?? "unknown"}`;
    const rows = s.partitions.map((p) => partitionRow(p));
    const facts = h("dl", { class: "status-facts" },
      h("dt", {}, "Snapshot"), h("dd", { id: "status-snapshot" }, s.snapshot ? `${s.snapshot.version} · ${plural(s.snapshot.endpoints, "endpoint", "endpoints")}${s.snapshot.stale ? " · stale" : ""}` : "none yet"),
      h("dt", {}, "Leader"), h("dd", { id: "status-leader" }, s.lease ? `${leader} (epoch ${s.lease.epoch})` : `${s.replica} (alone)`),
      h("dt", {}, "This replica"), h("dd", { id: "status-role" }, `${s.replica}: ${roleNames[s.role] ?? "unknown"}`),
      h("dt", {}, "Next refresh"), h("dd", {}, when(s.refresher?.nextAttempt) ?? "not known"),
    );
    const table = h("table", { id: "status-partitions", "aria-label": "Partitions" },
      h("thead", {}, h("tr", {}, ...["Account", "Region", "Endpoints", "Last success", "Last error", "Failures", "Next attempt"].map((c) => h("th", {}, c)))),
      h("tbody", {}, ...rows),
    );
    this.body.replaceChildren(facts, table);
  }

  /** refreshNow calls RefreshNow and says what came of it. */
  private async refreshNow(): Promise<void> {
    this.button.disabled = true;
    this.result.textContent = "Refreshing…";
    this.root.dataset.refresh = "running";
    try {
      const r = await this.client.refreshNow({});
      const failed = r.failedPartitions.length ? ` · ${plural(r.failedPartitions.length, "partition", "partitions")} failed` : "";
      this.result.textContent = `Refreshed by ${r.leader}: snapshot ${r.version} ${r.changed ? "(new)" : "(unchanged)"}${failed}`;
      this.root.dataset.refresh = "done";
      this.onRefreshed();
      await this.load();
    } catch (err) {
      const e = describeError(err);
      this.result.textContent = `${e.code}: ${e.message}`;
      this.root.dataset.refresh = "error";
    } finally {
      this.button.disabled = false;
    }
  }
}

function when(t: Timestamp | undefined): string | undefined {
  const d = toDate(t);
  return d && `${ago(d)} (${isoSeconds(d)})`;
}

function partitionRow(p: PartitionStatus): HTMLTableRowElement {
  const next = toDate(p.nextAttempt);
  return h("tr", { "data-partition": `${p.accountId}/${p.region}`, class: p.stale ? "stale" : undefined },
    h("td", {}, p.accountId),
    h("td", {}, p.region),
    h("td", {}, String(p.endpoints)),
    h("td", {}, when(p.lastSuccess) ?? "never"),
    h("td", { class: "status-error" }, p.lastError),
    h("td", {}, String(p.consecutiveFailures)),
    h("td", {}, next ? isoSeconds(next) : ""),
  );
}
