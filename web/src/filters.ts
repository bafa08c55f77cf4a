// The filter bar: one chip per filter (name=value,value; ANDed across chips,
// ORed across values, * and ? wildcards), typed in one box with autocomplete of
// the API's filter names and of the values seen in the loaded endpoints.
import type { ClientVpnEndpoint } from "./gen/clientvpn/v1/clientvpn_pb.js";
import { h } from "./dom.js";
import { statusOf, transportOf } from "./endpoint.js";
import { formatFilter, parseFilter, type FilterSpec } from "./view.js";

/** filterNames are the API's filter names (see the Filter message of the contract). */
export const filterNames = ["endpoint-id", "transport-protocol", "vpc-id", "status", "tag-key", "region", "account-id"];

/** Values every deployment knows even before any endpoint is loaded. */
const fixedValues: Record<string, string[]> = {
  "transport-protocol": ["tcp", "udp"],
  status: ["available", "pending-associate", "pending", "deleting", "deleted"],
};

/** Suggestions holds the known values of each filter name. */
export class Suggestions {
  private values = new Map<string, Set<string>>();

  /** learn adds the values of endpoints. */
  learn(endpoints: ClientVpnEndpoint[]): void {
    for (const e of endpoints) {
      this.add("endpoint-id", e.clientVpnEndpointId);
      this.add("transport-protocol", transportOf(e));
      this.add("vpc-id", e.vpcId);
      this.add("status", statusOf(e));
      this.add("region", e.region);
      this.add("account-id", e.accountId);
      for (const t of e.tags) {
        this.add("tag-key", t.key);
        if (t.key !== undefined) this.add(`tag:${t.key}`, t.value);
      }
    }
  }

  private add(name: string, value: string | undefined): void {
    if (value === undefined || value === "") return;
    let set = this.values.get(name);
    if (!set) this.values.set(name, (set = new Set()));
    set.add(value);
  }

  /** names lists the filter names, with tag:<key> for every known tag key. */
  names(): string[] {
    const tags = [...(this.values.get("tag-key") ?? [])].sort().map((k) => `tag:${k}`);
    return [...filterNames, ...tags];
  }

  /** valuesOf lists the known values of a filter name, sorted. */
  valuesOf(name: string): string[] {
    const all = new Set([...(fixedValues[name] ?? []), ...(this.values.get(name) ?? [])]);
    return [...all].sort();
  }
}

/** FilterBar renders the chips and the input, and reports the filters the user sets. */
export class FilterBar {
  private filters: FilterSpec[] = [];

  constructor(
    private readonly chips: HTMLElement,
    private readonly input: HTMLInputElement,
    private readonly list: HTMLDataListElement,
    private readonly suggestions: Suggestions,
    private readonly onChange: (filters: FilterSpec[]) => void,
    private readonly onInvalid: (message: string) => void,
  ) {
    input.addEventListener("input", () => this.suggest());
    input.addEventListener("focus", () => this.suggest());
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") {
        ev.preventDefault();
        this.commit();
      } else if (ev.key === "Backspace" && input.value === "" && this.filters.length > 0) {
        this.remove(this.filters.length - 1);
      } else if (ev.key === "Escape") {
        input.blur();
      }
    });
  }

  /** set shows filters (from the address) without reporting a change. */
  set(filters: FilterSpec[]): void {
    this.filters = filters.map((f) => ({ name: f.name, values: [...f.values] }));
    this.renderChips();
  }

  /** commit turns the typed text into a chip; a chip of the same name is replaced. */
  commit(): void {
    const text = this.input.value.trim();
    if (text === "") {
      this.onChange(this.filters);
      return;
    }
    let f: FilterSpec;
    try {
      f = parseFilter(text);
    } catch (err) {
      this.onInvalid((err as Error).message);
      return;
    }
    const i = this.filters.findIndex((x) => x.name === f.name);
    if (i >= 0) this.filters[i] = f;
    else this.filters.push(f);
    this.input.value = "";
    this.renderChips();
    this.onChange(this.filters);
  }

  private remove(i: number): void {
    this.filters.splice(i, 1);
    this.renderChips();
    this.onChange(this.filters);
    this.input.focus();
  }

  private renderChips(): void {
    this.chips.replaceChildren(
      ...this.filters.map((f, i) => {
        const edit = h("button", { type: "button", class: "chip-text", title: "Edit this filter" }, formatFilter(f));
        edit.addEventListener("click", () => {
          this.input.value = formatFilter(f);
          this.filters.splice(i, 1);
          this.renderChips();
          this.input.focus();
        });
        const remove = h("button", { type: "button", class: "chip-remove", "aria-label": `Remove filter ${formatFilter(f)}`, title: "Remove" }, "×");
        remove.addEventListener("click", () => this.remove(i));
        return h("li", { class: "chip", "data-filter": formatFilter(f) }, edit, remove);
      }),
    );
  }

  /** suggest fills the datalist: names before "=", known values of the name after it. */
  private suggest(): void {
    const text = this.input.value;
    const eq = text.indexOf("=");
    let options: string[];
    if (eq < 0) {
      options = this.suggestions.names().map((n) => `${n}=`);
    } else {
      const name = text.slice(0, eq);
      const typed = text.slice(eq + 1);
      const comma = typed.lastIndexOf(",");
      const head = `${name}=${typed.slice(0, comma + 1)}`;
      options = this.suggestions.valuesOf(name).slice(0, 200).map((v) => head + v);
    }
    this.list.replaceChildren(...options.map((o) => h("option", { value: o })));
  }
}
