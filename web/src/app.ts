// The page as a whole: it keeps the view state in the address, fetches what the
// view needs, and hands the results to the table, the filters, the details and
// the freshness line.
//
// Seams for other features: the live Watch stream (live.ts) hears of each
// load through app.onLoad and changes the loaded rows through app.patchRows;
// a status panel (issue 17) can subscribe to app.feed and use app.api.
import type { Api } from "./api.js";
import { describeError, isAbort } from "./api.js";
import { columnById, columns, defaultColumns } from "./columns.js";
import { renderDetails } from "./details.js";
import { byId, h } from "./dom.js";
import { refOf, sameRef } from "./endpoint.js";
import { FilterBar, Suggestions } from "./filters.js";
import { plural } from "./format.js";
import { Freshness, pollSnapshots, SnapshotFeed } from "./freshness.js";
import type { LiveHost, LoadedView } from "./live.js";
import type { ClientVpnEndpoint, SnapshotInfo } from "./gen/clientvpn/v1/clientvpn_pb.js";
import { Table } from "./table.js";
import { formatFilter, maxLoadAll, pageSizes, queryKey, readView, writeView, type FilterSpec, type ViewState } from "./view.js";

/** pollIntervalMs is how often the page asks which snapshot is current. */
const pollIntervalMs = 15_000;

const knownColumns = new Set(columns.map((c) => c.id));

/** Count is what is known of the number of matches of the current filters. */
type Count = { state: "known"; n: number } | { state: "more-than"; n: number } | { state: "counting" } | { state: "unknown" };

/** App is the running page. */
export class App implements LiveHost {
  /** feed carries every snapshot the page learns of. */
  readonly feed = new SnapshotFeed();
  /** onLoad hears of each load of the view: what it brought, or undefined when it failed. */
  onLoad: (v: LoadedView | undefined) => void = () => {};

  private view: ViewState;
  private rows: ClientVpnEndpoint[] = [];
  private rowsSnapshot: SnapshotInfo | undefined;
  private nextToken = "";
  private fetchedKey = "";
  private count: Count = { state: "unknown" };
  private counts = new Map<string, Count>(); // by filters, for this page's life
  private fetchAbort: AbortController | undefined;
  private countAbort: AbortController | undefined;
  private detailAbort: AbortController | undefined;
  private shownDetail = "";
  private loads = 0; // completed fetches, in body[data-loads], so that tests and tools can wait for one

  private readonly suggestions = new Suggestions();
  private readonly table: Table;
  private readonly filterBar: FilterBar;
  private readonly el = {
    filterInput: byId<HTMLInputElement>("filter"),
    error: byId<HTMLDivElement>("error"),
    empty: byId<HTMLDivElement>("empty"),
    count: byId<HTMLSpanElement>("count"),
    prev: byId<HTMLButtonElement>("prev"),
    next: byId<HTMLButtonElement>("next"),
    all: byId<HTMLButtonElement>("all"),
    size: byId<HTMLSelectElement>("size"),
    columns: byId<HTMLFieldSetElement>("columns"),
    details: byId<HTMLElement>("details"),
    tableWrap: byId<HTMLDivElement>("table-wrap"),
  };

  constructor(readonly api: Api) {
    this.view = readView(location.search, defaultColumns, knownColumns);
    this.table = new Table(byId<HTMLTableElement>("endpoints"), {
      open: (ref) => this.navigate({ ...this.view, selected: ref }),
      sort: (sort) => this.navigate({ ...this.view, sort }, "replace"),
    });
    this.filterBar = new FilterBar(
      byId("chips"),
      this.el.filterInput,
      byId<HTMLDataListElement>("filter-suggestions"),
      this.suggestions,
      (filters) => this.navigate({ ...this.view, filters: [...filters], pages: [] }),
      (message) => this.showError({ code: "Invalid filter", message }),
    );
    new Freshness(byId("freshness"), byId("stale"), this.feed, () => this.reload());
    pollSnapshots(api, this.feed, pollIntervalMs);
    // The freshness line does not wait for the view: a view that fails still
    // says which snapshot the service answers from.
    api.snapshot().then((s) => this.feed.publish(s, "poll"), () => {});
    this.buildControls();
    window.addEventListener("popstate", () => this.apply(readView(location.search, defaultColumns, knownColumns)));
    document.addEventListener("keydown", (ev) => this.onKey(ev));
  }

  /** start shows the view the address describes. */
  start(): void {
    this.apply(this.view, true);
  }

  /** showRows replaces the loaded rows, as read from snapshot. */
  showRows(rows: ClientVpnEndpoint[], snapshot: SnapshotInfo | undefined): void {
    this.rows = rows;
    this.rowsSnapshot = snapshot;
    this.suggestions.learn(rows);
    this.feed.publish(snapshot, "view");
    this.render();
  }

  /** loadedRows returns the loaded rows, in the API's order. */
  loadedRows(): ClientVpnEndpoint[] {
    return this.rows;
  }

  /** patchRows replaces the loaded rows after a live change; countDelta adjusts a known count. */
  patchRows(rows: ClientVpnEndpoint[], snapshot: SnapshotInfo, countDelta: number): void {
    if (this.count.state === "known") {
      this.setCount(this.view.filters, { state: "known", n: Math.max(0, this.count.n + countDelta) });
    }
    const sel = this.view.selected;
    const before = sel && this.rows.find((e) => sameRef(refOf(e), sel));
    this.showRows(rows, snapshot);
    if (before && !rows.includes(before)) {
      // The open endpoint changed or went: show what the service says now.
      this.shownDetail = "";
      this.showDetail(false);
    }
  }

  private buildControls(): void {
    this.el.size.replaceChildren(...pageSizes.map((n) => h("option", { value: n }, String(n))));
    this.el.size.addEventListener("change", () => this.navigate({ ...this.view, pageSize: Number(this.el.size.value), pages: [] }));
    this.el.prev.addEventListener("click", () => this.navigate({ ...this.view, pages: this.view.pages.slice(0, -1) }));
    this.el.next.addEventListener("click", () => this.navigate({ ...this.view, pages: [...this.view.pages, this.nextToken] }));
    this.el.all.addEventListener("click", () => this.navigate({ ...this.view, all: !this.view.all, pages: [] }));
    this.el.columns.replaceChildren(
      h("legend", {}, "Columns"),
      ...columns.map((c) => {
        const box = h("input", { type: "checkbox", value: c.id, id: `col-${c.id}` });
        box.addEventListener("change", () => {
          const chosen = columns.filter((x) => (byId<HTMLInputElement>(`col-${x.id}`)).checked).map((x) => x.id);
          this.navigate({ ...this.view, columns: chosen.length > 0 ? chosen : [...defaultColumns] }, "replace");
        });
        return h("label", { for: `col-${c.id}` }, box, " ", c.label);
      }),
    );
    // The columns menu closes on a click elsewhere, as menus do.
    const menu = byId<HTMLDetailsElement>("columns-menu");
    document.addEventListener("click", (ev) => {
      if (menu.open && !menu.contains(ev.target as Node)) menu.open = false;
    });
    byId("apply-filter").addEventListener("click", () => this.filterBar.commit());
    byId("clear-filters").addEventListener("click", () => this.navigate({ ...this.view, filters: [], pages: [] }));
  }

  /** navigate makes v the view, recording it in the address. */
  private navigate(v: ViewState, how: "push" | "replace" = "push"): void {
    const url = location.pathname + writeView(v, defaultColumns);
    if (how === "push") history.pushState(null, "", url);
    else history.replaceState(null, "", url);
    this.apply(v);
  }

  /** reload fetches the current view again. */
  reload(): void {
    this.fetchedKey = "";
    this.counts.clear();
    this.apply(this.view);
  }

  private apply(v: ViewState, first = false): void {
    this.view = v;
    if (first) history.replaceState(null, "", location.pathname + writeView(v, defaultColumns)); // normalise
    this.filterBar.set(v.filters);
    this.el.size.value = String(v.pageSize);
    for (const c of columns) byId<HTMLInputElement>(`col-${c.id}`).checked = v.columns.includes(c.id);
    if (queryKey(v) !== this.fetchedKey) {
      void this.fetch();
    } else {
      this.render();
    }
    this.showDetail();
  }

  private async fetch(): Promise<void> {
    const v = this.view;
    const key = queryKey(v);
    this.fetchedKey = key;
    this.fetchAbort?.abort();
    const abort = (this.fetchAbort = new AbortController());
    document.body.dataset.state = "loading";
    this.el.count.textContent = "Loading…";
    try {
      if (v.all) {
        const res = await this.api.all(v.filters, maxLoadAll, abort.signal);
        this.nextToken = "";
        this.setCount(v.filters, res.truncated ? { state: "more-than", n: maxLoadAll } : { state: "known", n: res.endpoints.length });
        this.hideError();
        document.body.dataset.state = "ready";
        this.showRows(res.endpoints, res.snapshot);
        this.onLoad({ filters: v.filters, firstPage: true, nextToken: res.truncated ? "truncated" : "", snapshot: res.snapshot });
      } else {
        const res = await this.api.page(v.filters, v.pageSize, v.pages.at(-1) ?? "", abort.signal);
        this.nextToken = res.nextToken;
        if (v.pages.length === 0 && res.nextToken === "") this.setCount(v.filters, { state: "known", n: res.endpoints.length });
        this.hideError();
        document.body.dataset.state = "ready";
        this.showRows(res.endpoints, res.snapshot);
        this.onLoad({ filters: v.filters, firstPage: v.pages.length === 0, nextToken: res.nextToken, snapshot: res.snapshot });
        this.countInBackground(v.filters);
      }
      document.body.dataset.loads = String(++this.loads);
    } catch (err) {
      if (isAbort(err)) return;
      this.fetchedKey = ""; // try again on the next change
      this.rows = [];
      this.nextToken = "";
      this.count = { state: "unknown" };
      this.render();
      this.showError(describeError(err));
      this.onLoad(undefined);
      document.body.dataset.loads = String(++this.loads);
    }
  }

  private setCount(filters: FilterSpec[], c: Count): void {
    this.counts.set(JSON.stringify(filters), c);
    this.count = c;
  }

  /** countInBackground counts every match (up to maxLoadAll), once per set of filters. */
  private countInBackground(filters: FilterSpec[]): void {
    const key = JSON.stringify(filters);
    const known = this.counts.get(key);
    if (known) {
      this.count = known;
      this.renderCount();
      return;
    }
    this.countAbort?.abort();
    const abort = (this.countAbort = new AbortController());
    this.count = { state: "counting" };
    this.renderCount();
    this.api.all(filters, maxLoadAll, abort.signal).then(
      (res) => {
        this.suggestions.learn(res.endpoints);
        const c: Count = res.truncated ? { state: "more-than", n: maxLoadAll } : { state: "known", n: res.endpoints.length };
        this.counts.set(key, c);
        if (JSON.stringify(this.view.filters) === key) {
          this.count = c;
          this.renderCount();
        }
      },
      () => {
        if (abort.signal.aborted) return; // superseded: the newer count reports
        if (JSON.stringify(this.view.filters) === key) {
          this.count = { state: "unknown" };
          this.renderCount();
        }
      },
    );
  }

  private render(): void {
    const v = this.view;
    const cols = v.columns.map((id) => columnById.get(id)!).filter((c) => c);
    this.table.render(this.rows, cols, v.sort, v.selected);
    const failed = document.body.dataset.state === "error";
    this.el.tableWrap.hidden = this.rows.length === 0;
    this.el.empty.hidden = failed || this.rows.length > 0 || document.body.dataset.state === "loading";
    if (!this.el.empty.hidden) this.renderEmpty();
    this.el.prev.disabled = v.all || v.pages.length === 0;
    this.el.next.disabled = v.all || this.nextToken === "";
    this.el.all.textContent = v.all ? "Show pages" : `Load all (up to ${maxLoadAll.toLocaleString("en-US")})`;
    this.el.size.disabled = v.all;
    this.renderCount();
  }

  private renderCount(): void {
    const v = this.view;
    const parts: string[] = [];
    switch (this.count.state) {
      case "known":
        parts.push(plural(this.count.n, "match", "matches"));
        break;
      case "more-than":
        parts.push(`more than ${plural(this.count.n, "match", "matches")}`);
        break;
      case "counting":
        parts.push("counting matches…");
        break;
    }
    if (this.rows.length > 0) {
      if (v.all) parts.push(`all ${this.rows.length.toLocaleString("en-US")} loaded`);
      else {
        const first = v.pages.length * v.pageSize + 1;
        parts.push(`page ${v.pages.length + 1}, rows ${first.toLocaleString("en-US")}–${(first + this.rows.length - 1).toLocaleString("en-US")}`);
      }
    }
    if (v.sort) parts.push(`sorted by ${columnById.get(v.sort.column)?.label ?? v.sort.column} within the loaded rows`);
    if (document.body.dataset.state !== "loading") this.el.count.textContent = parts.join(" · ");
  }

  private renderEmpty(): void {
    const filters = this.view.filters;
    const list = byId("empty-filters");
    if (filters.length === 0) {
      byId("empty-title").textContent = "The cache holds no endpoints.";
      list.replaceChildren();
      byId("clear-filters").hidden = true;
      return;
    }
    byId("empty-title").textContent = "No endpoint matches these filters:";
    list.replaceChildren(...filters.map((f) => h("li", {}, h("code", {}, formatFilter(f)))));
    byId("clear-filters").hidden = false;
  }

  private showError(e: { code: string; message: string }): void {
    document.body.dataset.state = "error";
    this.el.empty.hidden = true;
    this.el.error.hidden = false;
    this.el.error.replaceChildren(h("strong", { class: "code" }, e.code), ": ", e.message);
    this.el.count.textContent = "";
  }

  private hideError(): void {
    this.el.error.hidden = true;
    this.el.error.replaceChildren();
  }

  /** showDetail shows the selected endpoint, from the loaded rows or read from the API; focus moves the focus to it. */
  private showDetail(focus = true): void {
    const sel = this.view.selected;
    const panel = this.el.details;
    if (!sel) {
      this.detailAbort?.abort();
      this.shownDetail = "";
      panel.hidden = true;
      panel.replaceChildren();
      document.body.classList.remove("with-details");
      return;
    }
    const key = JSON.stringify(sel);
    if (key === this.shownDetail) return;
    this.shownDetail = key;
    panel.hidden = false;
    document.body.classList.add("with-details");
    const close = () => this.navigate({ ...this.view, selected: null });
    const loaded = this.rows.find((e) => sameRef(refOf(e), sel));
    if (loaded) {
      panel.replaceChildren(renderDetails(loaded, this.rowsSnapshot, location.origin, close));
      if (focus) panel.focus();
      return;
    }
    this.detailAbort?.abort();
    const abort = (this.detailAbort = new AbortController());
    panel.dataset.state = "loading";
    panel.replaceChildren(h("p", { class: "sub" }, `Loading ${sel.id}…`));
    this.api.get(sel, abort.signal).then(
      (res) => {
        panel.dataset.state = "ready";
        this.feed.publish(res.snapshot, "view");
        panel.replaceChildren(renderDetails(res.endpoint, res.snapshot, location.origin, close));
        if (focus) panel.focus();
      },
      (err) => {
        if (isAbort(err)) return;
        panel.dataset.state = "error";
        const e = describeError(err);
        const b = h("button", { type: "button" }, "Close");
        b.addEventListener("click", close);
        panel.replaceChildren(h("div", { class: "error", role: "alert" }, h("strong", { class: "code" }, e.code), ": ", e.message), b);
      },
    );
  }

  private onKey(ev: KeyboardEvent): void {
    const t = ev.target as HTMLElement;
    const typing = t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement;
    if (ev.key === "Escape" && this.view.selected && !typing) {
      ev.preventDefault();
      this.navigate({ ...this.view, selected: null });
      this.table.focus();
      return;
    }
    if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === "/") {
      ev.preventDefault();
      this.el.filterInput.focus();
      // Some event sources (remote desktops, DevTools input) deliver the
      // character apart from the key press, after the focus moved: drop it.
      const input = this.el.filterInput;
      const drop = (e: InputEvent) => {
        if (e.data === "/") e.preventDefault();
      };
      input.addEventListener("beforeinput", drop);
      document.addEventListener("keyup", () => input.removeEventListener("beforeinput", drop), { once: true });
    } else if ((ev.key === "ArrowDown" || ev.key === "ArrowUp" || ev.key === "j" || ev.key === "k") && !t.closest("#endpoints")) {
      ev.preventDefault();
      this.table.focus();
    }
  }
}
