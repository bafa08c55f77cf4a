// Shell commands that fetch the same endpoint outside the browser.
import type { EndpointRef } from "./endpoint.js";

/** shellQuote quotes s for a POSIX shell. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** bufCurl is a `buf curl` command calling GetClientVpnEndpoint for ref on the service at origin. */
export function bufCurl(origin: string, ref: EndpointRef): string {
  const body = JSON.stringify({ clientVpnEndpointId: ref.id, region: ref.region, accountId: ref.account });
  return `buf curl --protocol connect -d ${shellQuote(body)} ${shellQuote(origin + "/clientvpn.v1.ClientVpnService/GetClientVpnEndpoint")}`;
}

/**
 * awsCli is an `aws ec2` command reading ref through the service's
 * EC2-compatible API at origin. It names the endpoint with --endpoint-url,
 * which every AWS CLI version reads (AWS_ENDPOINT_URL_EC2 needs 2.13 or
 * later; Debian 12 ships 2.9), so the command never reaches real AWS.
 */
export function awsCli(origin: string, ref: EndpointRef): string {
  return `aws ec2 describe-client-vpn-endpoints --endpoint-url ${shellQuote(origin)} --region ${shellQuote(ref.region)} --client-vpn-endpoint-ids ${shellQuote(ref.id)}`;
}
