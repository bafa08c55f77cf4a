// The detail view of one endpoint: every field of the contract, grouped as the
// AWS console groups them, with copy-as-JSON and commands that fetch the same
// endpoint. Each value carries data-field, its path in the endpoint's JSON form
// (tags.0.key), so that what is shown can be checked against the API.
import { toJsonString } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { ClientVpnEndpoint, SnapshotInfo } from "./gen/clientvpn/v1/clientvpn_pb.js";
import {
  AssociatedNetworkType,
  ClientVpnAuthenticationType,
  ClientVpnDeviceTrustProviderType,
  ClientVpnEndpointAttributeStatusCode,
  ClientVpnEndpointSchema,
  ClientVpnEndpointStatusCode,
  IpAddressType,
  TransportProtocol,
  VpnProtocol,
} from "./gen/clientvpn/v1/clientvpn_pb.js";
import { awsCli, bufCurl } from "./commands.js";
import { copyText, h, type Child } from "./dom.js";
import { nameTag, refOf, statusOf, toneOf, toneSymbol } from "./endpoint.js";
import { ago, awsEnum, enabled, isoSeconds, toDate } from "./format.js";

type Value = string | number | boolean | Timestamp | undefined;

/** show renders one value as the page shows it everywhere. */
function show(v: Exclude<Value, undefined>): string {
  if (typeof v === "boolean") return enabled(v);
  if (typeof v === "number") return String(v);
  if (typeof v === "string") return v === "" ? "(empty)" : v;
  return isoSeconds(toDate(v)!);
}

/** field is one label and value; an absent value shows a dash and no data-field. */
function field(label: string, path: string, v: Value): Node[] {
  const dd = v === undefined ? h("dd", { class: "unset" }, "—") : h("dd", { "data-field": path }, show(v));
  return [h("dt", {}, label), dd];
}

/** enumField shows a known enum value under path, or AWS's unknown spelling under path+"Unrecognized". */
function enumField(label: string, path: string, names: Record<number, string>, value: number, unrecognized: string | undefined): Node[] {
  if (value === 0 && unrecognized !== undefined) {
    return [h("dt", {}, label), h("dd", { "data-field": path + "Unrecognized", title: "a value this version of the contract does not know" }, show(unrecognized))];
  }
  return field(label, path, awsEnum(names, value, undefined));
}

function listField(label: string, path: string, values: string[]): Node[] {
  if (values.length === 0) return [h("dt", {}, label), h("dd", { class: "unset" }, "—")];
  return [h("dt", {}, label), h("dd", {}, h("ul", { class: "plain" }, ...values.map((v, i) => h("li", { "data-field": `${path}.${i}` }, show(v)))))];
}

function group(title: string, ...rows: (Node[] | Child)[]): HTMLElement {
  const dl = h("dl");
  const rest: Child[] = [];
  for (const r of rows) {
    if (Array.isArray(r)) dl.append(...r);
    else rest.push(r);
  }
  return h("section", { class: "group" }, h("h3", {}, title), dl.childElementCount > 0 ? dl : null, ...rest);
}

function notConfigured(): HTMLElement {
  return h("p", { class: "unset" }, "Not configured");
}

/** renderDetails builds the detail view of e, read from snapshot, for the service at origin. */
export function renderDetails(e: ClientVpnEndpoint, snapshot: SnapshotInfo | undefined, origin: string, onClose: () => void): HTMLElement {
  const ref = refOf(e);
  const json = toJsonString(ClientVpnEndpointSchema, e, { prettySpaces: 2 });
  const state = statusOf(e);
  const tone = toneOf(state);
  const created = toDate(e.creationTimeParsed);

  const close = h("button", { type: "button", class: "close", "aria-label": "Close details (Escape)", title: "Close (Escape)" }, "×");
  close.addEventListener("click", onClose);
  const copyButton = (label: string, text: string) => {
    const b = h("button", { type: "button", class: "copy" }, label);
    b.addEventListener("click", () => {
      void copyText(text).then(() => {
        b.textContent = "Copied ✓";
        setTimeout(() => (b.textContent = label), 1500);
      });
    });
    return b;
  };
  const buf = bufCurl(origin, ref);
  const aws = awsCli(origin, ref);

  const auth = e.authenticationOptions.map((a, i) =>
    group(
      `Authentication ${i + 1}`,
      enumField("Type", `authenticationOptions.${i}.type`, ClientVpnAuthenticationType, a.type, a.typeUnrecognized),
      a.mutualAuthentication && field("Client root certificate chain", `authenticationOptions.${i}.mutualAuthentication.clientRootCertificateChain`, a.mutualAuthentication.clientRootCertificateChain),
      a.activeDirectory && field("Active Directory ID", `authenticationOptions.${i}.activeDirectory.directoryId`, a.activeDirectory.directoryId),
      a.federatedAuthentication && field("SAML provider ARN", `authenticationOptions.${i}.federatedAuthentication.samlProviderArn`, a.federatedAuthentication.samlProviderArn),
      a.federatedAuthentication && field("Self-service SAML provider ARN", `authenticationOptions.${i}.federatedAuthentication.selfServiceSamlProviderArn`, a.federatedAuthentication.selfServiceSamlProviderArn),
    ),
  );
  const logs = e.connectionLogOptions;
  const cc = e.clientConnectOptions;
  const banner = e.clientLoginBannerOptions;
  const tgw = e.transitGatewayConfiguration;
  const posture = e.devicePostureOptions;

  return h(
    "div",
    { class: "details-body", "data-key": `${ref.account}/${ref.region}/${ref.id}` },
    h(
      "header",
      { class: "details-head" },
      h("div", {}, h("h2", { id: "details-title" }, nameTag(e) || ref.id), h("p", { class: "mono sub" }, `${ref.id} · ${ref.region} · ${ref.account}`)),
      close,
    ),
    h("p", { class: `status ${tone}` }, h("span", { "aria-hidden": "true" }, toneSymbol[tone] + " "), state || "no state",
      e.status?.message ? ` — ${e.status.message}` : "",
      tone === "gone" ? h("strong", { class: "gone-note" }, " This endpoint is deleted or being deleted.") : ""),
    h("div", { class: "actions" }, copyButton("Copy JSON", json), copyButton("Copy buf curl", buf), copyButton("Copy aws command", aws)),
    h("pre", { class: "command", id: "cmd-buf", tabindex: 0 }, buf),
    h("pre", { class: "command", id: "cmd-aws", tabindex: 0 }, aws),
    group(
      "Details",
      field("Client VPN endpoint ID", "clientVpnEndpointId", e.clientVpnEndpointId),
      field("Description", "description", e.description),
      enumField("State", "status.code", ClientVpnEndpointStatusCode, e.status?.code ?? 0, e.status?.codeUnrecognized),
      field("State message", "status.message", e.status?.message),
      field("Creation time (as AWS sent it)", "creationTime", e.creationTime),
      field("Creation time (UTC)", "creationTimeParsed", e.creationTimeParsed),
      [h("dt", {}, "Age"), h("dd", {}, created ? ago(created) : "—")],
      field("Deletion time (as AWS sent it)", "deletionTime", e.deletionTime),
      field("Deletion time (UTC)", "deletionTimeParsed", e.deletionTimeParsed),
      field("Region", "region", e.region),
      field("Account", "accountId", e.accountId),
    ),
    group(
      "Network",
      field("VPC ID", "vpcId", e.vpcId),
      field("Client IPv4 CIDR", "clientCidrBlock", e.clientCidrBlock),
      field("DNS name", "dnsName", e.dnsName),
      listField("DNS servers", "dnsServers", e.dnsServers),
      field("Split tunnel", "splitTunnel", e.splitTunnel),
      enumField("Transport protocol", "transportProtocol", TransportProtocol, e.transportProtocol, e.transportProtocolUnrecognized),
      field("VPN port", "vpnPort", e.vpnPort),
      enumField("VPN protocol", "vpnProtocol", VpnProtocol, e.vpnProtocol, e.vpnProtocolUnrecognized),
      enumField("Endpoint IP address type", "endpointIpAddressType", IpAddressType, e.endpointIpAddressType, e.endpointIpAddressTypeUnrecognized),
      enumField("Traffic IP address type", "trafficIpAddressType", IpAddressType, e.trafficIpAddressType, e.trafficIpAddressTypeUnrecognized),
      listField("Security group IDs", "securityGroupIds", e.securityGroupIds),
    ),
    group(
      "Target network associations",
      ...e.associatedTargetNetworks.flatMap((n, i) => [
        field(`Network ${i + 1} ID`, `associatedTargetNetworks.${i}.networkId`, n.networkId),
        enumField(`Network ${i + 1} type`, `associatedTargetNetworks.${i}.networkType`, AssociatedNetworkType, n.networkType, n.networkTypeUnrecognized),
      ]),
      e.associatedTargetNetworks.length === 0 && notConfigured(),
    ),
    group(
      "Authentication",
      field("Server certificate ARN", "serverCertificateArn", e.serverCertificateArn),
      field("Self-service portal URL", "selfServicePortalUrl", e.selfServicePortalUrl),
      ...auth,
    ),
    group(
      "Connection logging",
      ...(logs
        ? [
            field("Connection logging", "connectionLogOptions.enabled", logs.enabled),
            field("CloudWatch Logs log group", "connectionLogOptions.cloudwatchLogGroup", logs.cloudwatchLogGroup),
            field("CloudWatch Logs log stream", "connectionLogOptions.cloudwatchLogStream", logs.cloudwatchLogStream),
            field("Authorization policy context in logs", "connectionLogOptions.includeAuthorizationPolicyContext", logs.includeAuthorizationPolicyContext),
          ]
        : [notConfigured()]),
    ),
    group(
      "Client connect handler",
      ...(cc
        ? [
            field("Client connect handler", "clientConnectOptions.enabled", cc.enabled),
            field("Lambda function ARN", "clientConnectOptions.lambdaFunctionArn", cc.lambdaFunctionArn),
            cc.status
              ? enumField("Status", "clientConnectOptions.status.code", ClientVpnEndpointAttributeStatusCode, cc.status.code, cc.status.codeUnrecognized)
              : field("Status", "", undefined),
            field("Status message", "clientConnectOptions.status.message", cc.status?.message),
          ]
        : [notConfigured()]),
    ),
    group(
      "Session",
      field("Session timeout (hours)", "sessionTimeoutHours", e.sessionTimeoutHours),
      field("Disconnect on session timeout", "disconnectOnSessionTimeout", e.disconnectOnSessionTimeout),
    ),
    group(
      "Client login banner",
      ...(banner
        ? [
            field("Client login banner", "clientLoginBannerOptions.enabled", banner.enabled),
            field("Banner text", "clientLoginBannerOptions.bannerText", banner.bannerText),
          ]
        : [notConfigured()]),
    ),
    group(
      "Client route enforcement",
      e.clientRouteEnforcementOptions ? field("Route enforcement", "clientRouteEnforcementOptions.enforced", e.clientRouteEnforcementOptions.enforced) : notConfigured(),
    ),
    group(
      "Transit gateway",
      ...(tgw
        ? [
            field("Transit gateway ID", "transitGatewayConfiguration.transitGatewayId", tgw.transitGatewayId),
            field("Transit gateway attachment ID", "transitGatewayConfiguration.transitGatewayAttachmentId", tgw.transitGatewayAttachmentId),
            listField("Availability zones", "transitGatewayConfiguration.availabilityZones", tgw.availabilityZones),
            listField("Availability zone IDs", "transitGatewayConfiguration.availabilityZoneIds", tgw.availabilityZoneIds),
          ]
        : [notConfigured()]),
    ),
    group(
      "Device posture",
      ...(posture
        ? posture.trustProviders.flatMap((p, i) => [
            enumField(`Trust provider ${i + 1} type`, `devicePostureOptions.trustProviders.${i}.trustProviderType`, ClientVpnDeviceTrustProviderType, p.trustProviderType, p.trustProviderTypeUnrecognized),
            field(`Trust provider ${i + 1} tenant ID`, `devicePostureOptions.trustProviders.${i}.tenantId`, p.tenantId),
            field(`Trust provider ${i + 1} public signing key URL`, `devicePostureOptions.trustProviders.${i}.publicSigningKeyUrl`, p.publicSigningKeyUrl),
          ])
        : [notConfigured()]),
      posture && posture.trustProviders.length === 0 && h("p", { class: "unset" }, "No trust providers"),
    ),
    group(
      "Tags",
      e.tags.length === 0
        ? h("p", { class: "unset" }, "No tags")
        : h(
            "table",
            { class: "tags" },
            h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Key"), h("th", { scope: "col" }, "Value"))),
            h("tbody", {}, ...e.tags.map((t, i) => h("tr", {},
              t.key === undefined ? h("td", { class: "unset" }, "—") : h("td", { "data-field": `tags.${i}.key` }, show(t.key)),
              t.value === undefined ? h("td", { class: "unset" }, "—") : h("td", { "data-field": `tags.${i}.value` }, show(t.value))))),
          ),
    ),
    h("details", { class: "json" }, h("summary", {}, "JSON"), h("pre", { id: "details-json", tabindex: 0 }, json)),
    h("p", { class: "sub" }, `Read from snapshot ${snapshot?.version ?? "?"}.`),
  );
}
