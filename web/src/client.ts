// Browser client for vpnfacade's ClientVpnService over the Connect protocol.
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { ClientVpnService } from "./gen/clientvpn/v1/clientvpn_pb.js";

/** A typed client for ClientVpnService. */
export type ClientVpnClient = Client<typeof ClientVpnService>;

/**
 * newClientVpnClient returns a client that talks to the vpnfacade at baseUrl.
 * Read RPCs use HTTP GET, so browsers and proxies may cache them; the watch
 * stream is a POST. Interceptors see every call (the page's adds its token).
 */
export function newClientVpnClient(baseUrl: string, interceptors: Interceptor[] = []): ClientVpnClient {
  const transport = createConnectTransport({ baseUrl, useHttpGet: true, interceptors });
  return createClient(ClientVpnService, transport);
}
