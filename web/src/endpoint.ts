// Facts about one endpoint the table, the filters and the details share.
import type { ClientVpnEndpoint } from "./gen/clientvpn/v1/clientvpn_pb.js";
import {
  ClientVpnAuthenticationType,
  ClientVpnEndpointStatusCode,
  TransportProtocol,
} from "./gen/clientvpn/v1/clientvpn_pb.js";
import { awsEnum } from "./format.js";

/** EndpointRef names one endpoint: ids are unique only within an account and region. */
export interface EndpointRef {
  id: string;
  region: string;
  account: string;
}

/** refOf returns the reference of an endpoint. */
export function refOf(e: ClientVpnEndpoint): EndpointRef {
  return { id: e.clientVpnEndpointId ?? "", region: e.region, account: e.accountId };
}

/** sameRef reports whether two references name the same endpoint. */
export function sameRef(a: EndpointRef | null | undefined, b: EndpointRef | null | undefined): boolean {
  return !!a && !!b && a.id === b.id && a.region === b.region && a.account === b.account;
}

/** refKey is a string key of a reference, for maps and DOM attributes. */
export function refKey(r: EndpointRef): string {
  return `${r.account}/${r.region}/${r.id}`;
}

/** nameTag returns the value of the endpoint's Name tag, if any. */
export function nameTag(e: ClientVpnEndpoint): string | undefined {
  return e.tags.find((t) => t.key === "Name")?.value;
}

/** statusOf returns AWS's spelling of the endpoint's state, or "" when absent. */
export function statusOf(e: ClientVpnEndpoint): string {
  return awsEnum(ClientVpnEndpointStatusCode, e.status?.code ?? 0, e.status?.codeUnrecognized) ?? "";
}

/** Tone groups states for display; each tone has a symbol so colour is never the only cue. */
export type Tone = "ok" | "pending" | "gone" | "unknown";

/** toneOf classifies a state spelling. */
export function toneOf(status: string): Tone {
  switch (status) {
    case "available":
      return "ok";
    case "pending":
    case "pending-associate":
      return "pending";
    case "deleting":
    case "deleted":
      return "gone";
    default:
      return "unknown";
  }
}

/** toneSymbol is the text mark of a tone. */
export const toneSymbol: Record<Tone, string> = { ok: "●", pending: "◐", gone: "✕", unknown: "?" };

/** transportOf returns AWS's spelling of the transport protocol, or "". */
export function transportOf(e: ClientVpnEndpoint): string {
  return awsEnum(TransportProtocol, e.transportProtocol, e.transportProtocolUnrecognized) ?? "";
}

/** authTypesOf returns AWS's spellings of the endpoint's authentication types, in AWS's order. */
export function authTypesOf(e: ClientVpnEndpoint): string[] {
  return e.authenticationOptions.map((a) => awsEnum(ClientVpnAuthenticationType, a.type, a.typeUnrecognized) ?? "");
}
