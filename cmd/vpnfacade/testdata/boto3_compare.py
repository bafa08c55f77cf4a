"""Ask the EC2 emulator and vpnfacade the same questions with boto3.

Usage: boto3_compare.py EC2SIM_URL VPNFACADE_URL REGION

For each case, runs the same boto3 call (paginated where it pages) against
both endpoints and compares the parsed results deeply (dicts, lists, types).
Prints one JSON document: {"cases": [{"name", "equal", "count", "detail"}]}.
"""

import json
import sys

import boto3
from botocore.config import Config
from botocore import UNSIGNED
from botocore.exceptions import ClientError


def client(url, region, validate=True):
    return boto3.client(
        "ec2",
        endpoint_url=url,
        region_name=region,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        # Without client-side validation, bad values reach the server, as
        # they would from a client that does not validate.
        config=Config(retries={"mode": "standard", "max_attempts": 5}, parameter_validation=validate),
    )


def paginate(c, **kwargs):
    out = []
    for page in c.get_paginator("describe_client_vpn_endpoints").paginate(**kwargs):
        out.extend(page["ClientVpnEndpoints"])
    return out


def error_code(c, **kwargs):
    try:
        c.describe_client_vpn_endpoints(**kwargs)
    except ClientError as e:
        return {"code": e.response["Error"]["Code"], "status": e.response["ResponseMetadata"]["HTTPStatusCode"]}
    return None


def error_of(c, **kwargs):
    try:
        c.describe_client_vpn_endpoints(**kwargs)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["Error"]["Message"]
    return None, None


def first_difference(a, b, path="$"):
    if type(a) is not type(b):
        return f"{path}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{path}.{k}: present on one side only"
            d = first_difference(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} vs {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else f"{path}: {a!r} vs {b!r}"


def main():
    sim_url, facade_url, region, other = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    sim, facade = client(sim_url, region), client(facade_url, region)
    other_id = paginate(client(sim_url, other), PaginationConfig={"PageSize": 1000})[0]["ClientVpnEndpointId"]
    everything = paginate(sim, PaginationConfig={"PageSize": 1000})
    ids = [e["ClientVpnEndpointId"] for e in everything]
    tag = next(t for e in everything for t in e.get("Tags", []) if t["Key"] == "Environment")

    listings = {
        "all, pages of 50": dict(PaginationConfig={"PageSize": 50}),
        "all, pages of 5": dict(PaginationConfig={"PageSize": 5}),
        "transport-protocol udp": dict(Filters=[{"Name": "transport-protocol", "Values": ["udp"]}]),
        "tag and wildcard id": dict(Filters=[
            {"Name": "tag:Environment", "Values": [tag["Value"]]},
            {"Name": "endpoint-id", "Values": ["cvpn-endpoint-0*", "cvpn-endpoint-?a*"]},
        ], PaginationConfig={"PageSize": 7}),
        "ids": dict(ClientVpnEndpointIds=ids[3:9]),
    }
    cases = []
    for name, kwargs in listings.items():
        a, b = paginate(sim, **kwargs), paginate(facade, **kwargs)
        diff = first_difference(a, b)
        cases.append({"name": name, "equal": diff is None and a == b, "count": len(a), "detail": diff or ""})

    a = sim.describe_client_vpn_endpoints(MaxResults=5)
    b = facade.describe_client_vpn_endpoints(MaxResults=5)
    diff = first_difference(a["ClientVpnEndpoints"], b["ClientVpnEndpoints"])
    cases.append({"name": "one page of MaxResults 5", "equal": diff is None and bool(b.get("NextToken")),
                  "count": len(a["ClientVpnEndpoints"]), "detail": diff or ""})

    errors = {
        "unknown filter": dict(Filters=[{"Name": "colour", "Values": ["red"]}]),
        "MaxResults too small": dict(MaxResults=4),
        "MaxResults too large": dict(MaxResults=1001),
        "unknown id": dict(ClientVpnEndpointIds=["cvpn-endpoint-00000000000000000"]),
        "bad NextToken": dict(NextToken="not-a-token"),
        "dry run": dict(DryRun=True),
        "id of another region": dict(ClientVpnEndpointIds=[other_id]),
        "id of another region among ids": dict(ClientVpnEndpointIds=ids[:2] + [other_id]),
    }
    raw_sim, raw_facade = client(sim_url, region, False), client(facade_url, region, False)
    for name, kwargs in errors.items():
        a, b = error_code(raw_sim, **kwargs), error_code(raw_facade, **kwargs)
        cases.append({"name": "error: " + name, "equal": a == b and a is not None, "count": 0,
                      "detail": f"emulator {a}, vpnfacade {b}"})

    # Where EC2 has no counterpart (a region this endpoint does not cache, an
    # unsigned request), the facade answers with an error that says what to
    # do; and parameters are named in the EC2 API's spelling.
    facade_only = {
        "region not cached": (client(facade_url, "ap-south-1", False), {},
                              "InvalidParameterValue", [region, other, "ap-south-1"]),
        "unsigned with several regions": (boto3.client("ec2", endpoint_url=facade_url, region_name=region,
                                                       config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1})),
                                          {}, "InvalidParameterValue", ["not signed", region]),
        "bad NextToken names NextToken": (raw_facade, dict(NextToken="not-a-token"), "InvalidPaginationToken", ["NextToken"]),
    }
    for name, (c, kwargs, want_code, want_words) in facade_only.items():
        code, message = error_of(c, **kwargs)
        ok = code == want_code and all(w in (message or "") for w in want_words) and "next_token" not in (message or "")
        cases.append({"name": "facade error: " + name, "equal": ok, "count": 0,
                      "detail": f"got {code}: {message!r}; want {want_code} mentioning {want_words}"})
    print(json.dumps({"cases": cases}))


if __name__ == "__main__":
    main()
