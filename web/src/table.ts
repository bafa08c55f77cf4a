// The endpoint table: the chosen columns, sorted within the loaded rows, with a
// keyboard cursor (arrows move, Enter opens) and a selected row.
import type { ClientVpnEndpoint } from "./gen/clientvpn/v1/clientvpn_pb.js";
import { columnById, type Column } from "./columns.js";
import { h } from "./dom.js";
import { refKey, refOf, sameRef, statusOf, toneOf, type EndpointRef } from "./endpoint.js";
import type { Sort } from "./view.js";

/** TableEvents are what the table asks of the page. */
export interface TableEvents {
  /** open shows the details of an endpoint. */
  open(ref: EndpointRef): void;
  /** sort asks for the rows ordered by a column. */
  sort(sort: Sort): void;
}

function compare(a: string | number | undefined, b: string | number | undefined): number {
  if (a === b) return 0;
  if (a === undefined || a === "") return 1; // missing values sort last either way
  if (b === undefined || b === "") return -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b), "en", { numeric: true });
}

/** sortRows returns the rows ordered by sort; a stable sort, so ties keep the API's id order. */
export function sortRows(rows: ClientVpnEndpoint[], sort: Sort | null): ClientVpnEndpoint[] {
  const col = sort && columnById.get(sort.column);
  if (!sort || !col) return rows;
  const keyed = rows.map((e) => ({ e, k: col.sortKey(e) }));
  keyed.sort((x, y) => {
    const missing = (x.k === undefined || x.k === "") !== (y.k === undefined || y.k === "");
    const c = compare(x.k, y.k);
    return sort.descending && !missing ? -c : c;
  });
  return keyed.map((x) => x.e);
}

/** Table renders rows into a <table> and handles its keyboard and mouse use. */
export class Table {
  private rows: ClientVpnEndpoint[] = [];
  private cursor = -1;

  constructor(
    private readonly table: HTMLTableElement,
    private readonly events: TableEvents,
  ) {
    table.tBodies[0]!.addEventListener("click", (ev) => {
      const tr = (ev.target as Element).closest("tr");
      if (tr && tr.dataset.index) this.openAt(Number(tr.dataset.index));
    });
    table.addEventListener("keydown", (ev) => this.onKey(ev));
  }

  /** render shows rows in the given columns and order, marking the selected one. */
  render(rows: ClientVpnEndpoint[], cols: Column[], sort: Sort | null, selected: EndpointRef | null): void {
    this.rows = sortRows(rows, sort);
    const now = new Date();
    const head = h("tr");
    for (const c of cols) {
      const active = sort?.column === c.id;
      const ariaSort = active ? (sort.descending ? "descending" : "ascending") : "none";
      const button = h("button", { type: "button", class: "sort", "data-column": c.id, title: `Sort by ${c.label}` },
        c.label, h("span", { class: "arrow", "aria-hidden": "true" }, active ? (sort.descending ? " ▼" : " ▲") : ""));
      button.addEventListener("click", () => this.events.sort({ column: c.id, descending: active && !sort.descending }));
      head.append(h("th", { scope: "col", "aria-sort": ariaSort }, button));
    }
    this.table.tHead!.replaceChildren(head);
    const body = this.table.tBodies[0]!;
    body.replaceChildren();
    this.cursor = -1;
    this.rows.forEach((e, i) => {
      const ref = refOf(e);
      const gone = toneOf(statusOf(e)) === "gone";
      const isSelected = sameRef(ref, selected);
      const tr = h("tr", {
        "data-index": i,
        "data-key": refKey(ref),
        tabindex: -1,
        class: gone ? "gone" : undefined,
        "aria-selected": isSelected ? "true" : "false",
      });
      for (const c of cols) tr.append(h("td", { class: c.mono ? "mono" : undefined, "data-column": c.id }, c.cell(e, now)));
      body.append(tr);
      if (isSelected) this.cursor = i;
    });
  }

  /** focus puts the keyboard cursor on the table: the selected row or the first. */
  focus(): void {
    this.moveTo(this.cursor >= 0 ? this.cursor : 0);
  }

  private rowAt(i: number): HTMLTableRowElement | undefined {
    return this.table.tBodies[0]!.rows[i];
  }

  private moveTo(i: number): void {
    if (this.rows.length === 0) return;
    this.cursor = Math.max(0, Math.min(this.rows.length - 1, i));
    this.rowAt(this.cursor)?.focus();
  }

  private openAt(i: number): void {
    const e = this.rows[i];
    if (!e) return;
    this.cursor = i;
    this.events.open(refOf(e));
  }

  private onKey(ev: KeyboardEvent): void {
    const tr = (ev.target as Element).closest?.("tbody tr") as HTMLTableRowElement | null;
    const at = tr ? Number(tr.dataset.index) : this.cursor;
    switch (ev.key) {
      case "ArrowDown":
        this.moveTo(at + 1);
        break;
      case "ArrowUp":
        this.moveTo(at - 1);
        break;
      case "Home":
        this.moveTo(0);
        break;
      case "End":
        this.moveTo(this.rows.length - 1);
        break;
      case "Enter":
        if (!tr) return;
        this.openAt(at);
        break;
      default:
        return;
    }
    ev.preventDefault();
  }
}
