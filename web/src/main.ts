// The endpoint page: lists the cached endpoints through Connect-Web (HTTP GET
// reads), one page at a time, with an optional EC2-style filter.
import { ConnectError } from "@connectrpc/connect";
import { newClientVpnClient } from "./client.js";
import type { ClientVpnEndpoint, Filter } from "./gen/clientvpn/v1/clientvpn_pb.js";
import { ClientVpnEndpointStatusCode, TransportProtocol } from "./gen/clientvpn/v1/clientvpn_pb.js";

const client = newClientVpnClient(window.location.origin);

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const rows = $<HTMLTableSectionElement>("endpoints");
const snapshot = $<HTMLDivElement>("snapshot");
const errorBox = $<HTMLDivElement>("error");
const filterInput = $<HTMLInputElement>("filter");
const more = $<HTMLButtonElement>("more");

let nextToken = "";
// A filter in the address (?filter=transport-protocol%3Dudp) is applied at once,
// so that a filtered view can be shared as a link.
filterInput.value = new URLSearchParams(window.location.search).get("filter") ?? "";

/** parseFilter turns "name=v1,v2" into a filter; empty input means none. */
function parseFilter(text: string): Filter[] {
  const trimmed = text.trim();
  if (trimmed === "") return [];
  const eq = trimmed.indexOf("=");
  if (eq <= 0) throw new Error(`"${trimmed}" is not name=value, e.g. transport-protocol=udp`);
  const values = trimmed.slice(eq + 1).split(",").map((v) => v.trim()).filter((v) => v !== "");
  return [{ $typeName: "clientvpn.v1.Filter", name: trimmed.slice(0, eq).trim(), values }];
}

/** awsSpelling renders an enum value as AWS spells it, or AWS's own unknown value. */
function awsSpelling(names: Record<number, string>, prefix: string, value: number, unrecognized?: string): string {
  if (value === 0) return unrecognized ?? "";
  return (names[value] ?? "").replace(prefix, "").toLowerCase().replaceAll("_", "-");
}

function cell(text: string, className?: string): HTMLTableCellElement {
  const td = document.createElement("td");
  td.textContent = text; // never innerHTML: descriptions and tags are user text
  if (className) td.className = className;
  return td;
}

function render(endpoints: ClientVpnEndpoint[], append: boolean): void {
  if (!append) rows.replaceChildren();
  for (const e of endpoints) {
    const tr = document.createElement("tr");
    tr.append(
      cell(e.clientVpnEndpointId ?? "", "id"),
      cell(e.description ?? ""),
      cell(awsSpelling(ClientVpnEndpointStatusCode, "CLIENT_VPN_ENDPOINT_STATUS_CODE_", e.status?.code ?? 0, e.status?.codeUnrecognized)),
      cell(e.region),
      cell(e.accountId),
      cell(awsSpelling(TransportProtocol, "TRANSPORT_PROTOCOL_", e.transportProtocol, e.transportProtocolUnrecognized)),
      cell(e.vpcId ?? ""),
    );
    rows.append(tr);
  }
}

async function load(append: boolean): Promise<void> {
  errorBox.textContent = "";
  try {
    const res = await client.listClientVpnEndpoints({
      filters: parseFilter(filterInput.value),
      maxResults: 100,
      nextToken: append ? nextToken : "",
    });
    render(res.clientVpnEndpoints, append);
    nextToken = res.nextToken;
    more.disabled = nextToken === "";
    const s = res.snapshot;
    const refreshed = s?.refreshedAt ? new Date(Number(s.refreshedAt.seconds) * 1000).toISOString() : "unknown";
    snapshot.textContent = `snapshot version ${s?.version ?? "?"}, refreshed ${refreshed}` + (s?.stale ? " — " : "");
    if (s?.stale) {
      const mark = document.createElement("span");
      mark.className = "stale";
      mark.textContent = "stale: the cache could not be refreshed or reached";
      snapshot.append(mark);
    }
  } catch (err) {
    errorBox.textContent = err instanceof ConnectError ? `${err.code}: ${err.rawMessage}` : String(err);
  }
}

$<HTMLFormElement>("query").addEventListener("submit", (ev) => {
  ev.preventDefault();
  void load(false);
});
more.addEventListener("click", () => void load(true));
void load(false);
