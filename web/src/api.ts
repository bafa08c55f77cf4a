// The page's calls to ClientVpnService, and how their errors are shown.
import { Code, ConnectError } from "@connectrpc/connect";
import type { ClientVpnClient } from "./client.js";
import type { EndpointRef } from "./endpoint.js";
import type { ClientVpnEndpoint, Filter, SnapshotInfo } from "./gen/clientvpn/v1/clientvpn_pb.js";
import type { FilterSpec } from "./view.js";

/** Page is one answer of ListClientVpnEndpoints. */
export interface Page {
  endpoints: ClientVpnEndpoint[];
  nextToken: string;
  snapshot: SnapshotInfo | undefined;
}

/** Listing is every match, up to a limit. */
export interface Listing {
  endpoints: ClientVpnEndpoint[];
  /** True when there were more matches than the limit. */
  truncated: boolean;
  snapshot: SnapshotInfo | undefined;
}

/** ApiError is an error as the page shows it: the Connect code's name and the message. */
export interface ApiError {
  code: string;
  message: string;
}

function toFilters(filters: FilterSpec[]): Filter[] {
  return filters.map((f) => ({ $typeName: "clientvpn.v1.Filter", name: f.name, values: f.values }));
}

/** Api reads endpoints through a ClientVpnService client. */
export class Api {
  constructor(private readonly client: ClientVpnClient) {}

  /** page fetches one page of matches. */
  async page(filters: FilterSpec[], size: number, token: string, signal?: AbortSignal): Promise<Page> {
    const res = await this.client.listClientVpnEndpoints(
      { filters: toFilters(filters), maxResults: size, nextToken: token },
      { signal },
    );
    return { endpoints: res.clientVpnEndpoints, nextToken: res.nextToken, snapshot: res.snapshot };
  }

  /** all fetches every match, up to limit, in pages of 1000 (the API's largest). */
  async all(filters: FilterSpec[], limit: number, signal?: AbortSignal): Promise<Listing> {
    const endpoints: ClientVpnEndpoint[] = [];
    let token = "";
    let snapshot: SnapshotInfo | undefined;
    for (;;) {
      const p = await this.page(filters, Math.min(1000, limit - endpoints.length), token, signal);
      endpoints.push(...p.endpoints);
      snapshot ??= p.snapshot;
      token = p.nextToken;
      if (token === "") return { endpoints, truncated: false, snapshot };
      if (endpoints.length >= limit) return { endpoints, truncated: true, snapshot };
    }
  }

  /** get fetches one endpoint with the snapshot it was read from. */
  async get(ref: EndpointRef, signal?: AbortSignal): Promise<{ endpoint: ClientVpnEndpoint; snapshot: SnapshotInfo | undefined }> {
    const res = await this.client.getClientVpnEndpoint(
      { clientVpnEndpointId: ref.id, region: ref.region, accountId: ref.account },
      { signal },
    );
    if (!res.clientVpnEndpoint) throw new ConnectError("the answer carries no endpoint", Code.Internal);
    return { endpoint: res.clientVpnEndpoint, snapshot: res.snapshot };
  }

  /** snapshot asks which snapshot the service answers from, with the cheapest read. */
  async snapshot(signal?: AbortSignal): Promise<SnapshotInfo | undefined> {
    return (await this.page([], 1, "", signal)).snapshot;
  }
}

/** describeError turns any failure into the code's name and a message. */
export function describeError(err: unknown): ApiError {
  if (err instanceof ConnectError) {
    return { code: Code[err.code] ?? `code ${err.code}`, message: err.rawMessage || "(no message)" };
  }
  if (err instanceof Error) return { code: "Error", message: err.message };
  return { code: "Error", message: String(err) };
}

/** isAbort reports whether err is the cancellation of a superseded request. */
export function isAbort(err: unknown): boolean {
  return (err instanceof ConnectError && err.code === Code.Canceled) || (err instanceof DOMException && err.name === "AbortError");
}
