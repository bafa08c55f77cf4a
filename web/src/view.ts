// The view state: everything a link must reproduce (filters, columns, sort,
// page size and position, the selected endpoint), and its URL form.
//
//   ?filter=transport-protocol%3Dudp&filter=tag%3AEnvironment%3Dprod*
//   &cols=name,id,status&sort=-created&size=50&page=<token>&page=<token>
//   &all=1&endpoint=<account>/<region>/<id>
//
// Defaults are left out, so the plain page is "/" and the links the first
// version of the page made (?filter=name%3Dvalue) keep working.
import type { EndpointRef } from "./endpoint.js";

/** FilterSpec is one filter chip: an API filter name and its values (ORed). */
export interface FilterSpec {
  name: string;
  values: string[];
}

/** Sort orders the loaded rows by one column. */
export interface Sort {
  column: string;
  descending: boolean;
}

/** ViewState is the whole state of the page that a link carries. */
export interface ViewState {
  filters: FilterSpec[];
  /** Column ids, in display order. */
  columns: string[];
  sort: Sort | null;
  pageSize: number;
  /**
   * Page tokens of the pages walked through, oldest first: empty on the first
   * page; the last one fetches the current page. Tokens stay valid across
   * refreshes, so a link to page 3 shows page 3 later too.
   */
  pages: string[];
  /** Load every match (up to maxLoadAll) instead of one page. */
  all: boolean;
  selected: EndpointRef | null;
}

/** pageSizes are the page sizes offered. */
export const pageSizes = [25, 50, 100, 250, 1000];

/** defaultPageSize is the API's default page size. */
export const defaultPageSize = 100;

/** maxLoadAll bounds "load all". */
export const maxLoadAll = 10_000;

/** parseFilter parses "name=v1,v2" into a filter; it throws a message naming what is wrong. */
export function parseFilter(text: string): FilterSpec {
  const trimmed = text.trim();
  const eq = trimmed.indexOf("=");
  if (eq <= 0) throw new Error(`"${clip(trimmed)}" is not name=value, e.g. transport-protocol=udp`);
  const name = trimmed.slice(0, eq).trim();
  const values = trimmed.slice(eq + 1).split(",").map((v) => v.trim()).filter((v) => v !== "");
  if (values.length === 0) throw new Error(`the filter ${clip(name)} has no value: write ${clip(name)}=value`);
  return { name, values };
}

/** formatFilter is the inverse of parseFilter. */
export function formatFilter(f: FilterSpec): string {
  return `${f.name}=${f.values.join(",")}`;
}

/** clip shortens user text quoted back in a message to 64 characters. */
export function clip(s: string): string {
  return s.length > 64 ? s.slice(0, 63) + "…" : s;
}

/** readView reads the view from a query string; whatever does not parse is dropped. */
export function readView(search: string, defaultColumns: string[], knownColumns: Set<string>): ViewState {
  const q = new URLSearchParams(search);
  const filters: FilterSpec[] = [];
  for (const raw of q.getAll("filter")) {
    try {
      filters.push(parseFilter(raw));
    } catch {
      // A malformed filter in a hand-edited link is dropped, not fatal.
    }
  }
  const cols = (q.get("cols") ?? "").split(",").filter((c) => knownColumns.has(c));
  let sort: Sort | null = null;
  const rawSort = q.get("sort") ?? "";
  const descending = rawSort.startsWith("-");
  const column = descending ? rawSort.slice(1) : rawSort;
  if (knownColumns.has(column)) sort = { column, descending };
  const size = Number(q.get("size"));
  let selected: EndpointRef | null = null;
  const ep = (q.get("endpoint") ?? "").split("/");
  if (ep.length === 3 && ep[2] !== "") selected = { account: ep[0]!, region: ep[1]!, id: ep[2]! };
  return {
    filters,
    columns: cols.length > 0 ? cols : [...defaultColumns],
    sort,
    pageSize: pageSizes.includes(size) ? size : defaultPageSize,
    pages: q.getAll("page").filter((t) => t !== ""),
    all: q.get("all") === "1",
    selected,
  };
}

/** writeView renders the view as a query string ("" for the default view). */
export function writeView(v: ViewState, defaultColumns: string[]): string {
  const q = new URLSearchParams();
  for (const f of v.filters) q.append("filter", formatFilter(f));
  if (v.columns.join(",") !== defaultColumns.join(",")) q.set("cols", v.columns.join(","));
  if (v.sort) q.set("sort", (v.sort.descending ? "-" : "") + v.sort.column);
  if (v.pageSize !== defaultPageSize) q.set("size", String(v.pageSize));
  if (v.all) q.set("all", "1");
  else for (const t of v.pages) q.append("page", t);
  if (v.selected) q.set("endpoint", `${v.selected.account}/${v.selected.region}/${v.selected.id}`);
  const s = q.toString();
  return s === "" ? "" : "?" + s;
}

/** queryKey identifies what the server must be asked for a view: a change means a new fetch. */
export function queryKey(v: ViewState): string {
  return JSON.stringify([v.filters, v.pageSize, v.all ? "all" : v.pages]);
}
