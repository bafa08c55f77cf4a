// The table's columns: what each shows, and the value it sorts by.
import type { ClientVpnEndpoint } from "./gen/clientvpn/v1/clientvpn_pb.js";
import { h } from "./dom.js";
import { authTypesOf, nameTag, statusOf, toneOf, toneSymbol, transportOf } from "./endpoint.js";
import { ago, isoSeconds, toDate } from "./format.js";

/** Column is one column the table can show. */
export interface Column {
  /** id is the column's name in the address (cols=, sort=). */
  id: string;
  label: string;
  /** sortKey orders rows; undefined sorts last. */
  sortKey: (e: ClientVpnEndpoint) => string | number | undefined;
  /** cell renders the column's content for one row. */
  cell: (e: ClientVpnEndpoint, now: Date) => Node | string;
  /** mono columns hold ids and addresses. */
  mono?: boolean;
}

const shortAuth: Record<string, string> = {
  "certificate-authentication": "certificate",
  "directory-service-authentication": "directory",
  "federated-authentication": "federated",
};

const text = (s: string | undefined) => s ?? "";

/** columns lists every column, in the order the chooser offers them. */
export const columns: Column[] = [
  { id: "name", label: "Name", sortKey: nameTag, cell: (e) => text(nameTag(e)) },
  { id: "id", label: "Endpoint ID", sortKey: (e) => e.clientVpnEndpointId, cell: (e) => text(e.clientVpnEndpointId), mono: true },
  {
    id: "status",
    label: "State",
    sortKey: statusOf,
    cell: (e) => {
      const s = statusOf(e);
      const tone = toneOf(s);
      return h("span", { class: `status ${tone}`, title: e.status?.message }, h("span", { "aria-hidden": "true" }, toneSymbol[tone] + " "), s || "—");
    },
  },
  { id: "region", label: "Region", sortKey: (e) => e.region, cell: (e) => e.region },
  { id: "account", label: "Account", sortKey: (e) => e.accountId, cell: (e) => e.accountId, mono: true },
  { id: "vpc", label: "VPC", sortKey: (e) => e.vpcId, cell: (e) => text(e.vpcId), mono: true },
  {
    id: "transport",
    label: "Transport",
    sortKey: (e) => `${transportOf(e)}/${String(e.vpnPort ?? 0).padStart(5, "0")}`,
    cell: (e) => [transportOf(e), e.vpnPort].filter((v) => v !== undefined && v !== "").join("/"),
  },
  {
    id: "auth",
    label: "Authentication",
    sortKey: (e) => authTypesOf(e).join(","),
    cell: (e) => authTypesOf(e).map((t) => shortAuth[t] ?? t).join(", "),
  },
  {
    id: "split",
    label: "Split tunnel",
    sortKey: (e) => (e.splitTunnel === undefined ? undefined : e.splitTunnel ? 1 : 0),
    cell: (e) => (e.splitTunnel === undefined ? "" : e.splitTunnel ? "yes" : "no"),
  },
  { id: "cidr", label: "Client CIDR", sortKey: (e) => e.clientCidrBlock, cell: (e) => text(e.clientCidrBlock), mono: true },
  {
    id: "created",
    label: "Created",
    sortKey: (e) => toDate(e.creationTimeParsed)?.getTime() ?? e.creationTime,
    cell: (e, now) => {
      const d = toDate(e.creationTimeParsed);
      if (!d) return text(e.creationTime);
      return h("time", { datetime: isoSeconds(d), title: `${isoSeconds(d)} (AWS: ${e.creationTime ?? ""})` }, ago(d, now));
    },
  },
  { id: "description", label: "Description", sortKey: (e) => e.description, cell: (e) => text(e.description) },
  { id: "dns", label: "DNS name", sortKey: (e) => e.dnsName, cell: (e) => text(e.dnsName), mono: true },
  { id: "security-groups", label: "Security groups", sortKey: (e) => e.securityGroupIds.join(","), cell: (e) => e.securityGroupIds.join(", "), mono: true },
];

/** defaultColumns are shown when the address names none. */
export const defaultColumns = ["name", "id", "status", "region", "account", "vpc", "transport", "auth", "split", "cidr", "created"];

/** columnById finds a column. */
export const columnById = new Map(columns.map((c) => [c.id, c]));
