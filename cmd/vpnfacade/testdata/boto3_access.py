"""Read vpnfacade's EC2-compatible endpoint with boto3 and issued keys.

Usage: boto3_access.py URL CA_BUNDLE < cases.json

Reads a JSON list of cases {"name", "region", "key", "secret", "unsigned",
"dry_run"} and prints a JSON list of results {"name", "ok", "ids", "code",
"status"}: the endpoint ids of every page, or the error code and HTTP
status. Retries are off, so every case is one request per page.
"""

import json
import sys

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError


def run(url, ca, case):
    cfg = Config(retries={"total_max_attempts": 1})
    if case.get("unsigned"):
        cfg = cfg.merge(Config(signature_version=UNSIGNED))
    client = boto3.client(
        "ec2",
        endpoint_url=url,
        verify=ca,
        region_name=case["region"],
        aws_access_key_id=case["key"],
        aws_secret_access_key=case["secret"],
        config=cfg,
    )
    out = {"name": case["name"], "ok": False, "ids": [], "code": "", "status": 0}
    try:
        if case.get("dry_run"):
            client.describe_client_vpn_endpoints(DryRun=True)
        else:
            for page in client.get_paginator("describe_client_vpn_endpoints").paginate(PaginationConfig={"PageSize": 50}):
                out["ids"].extend(e["ClientVpnEndpointId"] for e in page["ClientVpnEndpoints"])
        out["ok"] = True
    except ClientError as e:
        out["code"] = e.response["Error"]["Code"]
        out["status"] = e.response["ResponseMetadata"]["HTTPStatusCode"]
    return out


def main():
    url, ca = sys.argv[1], sys.argv[2]
    json.dump([run(url, ca, c) for c in json.load(sys.stdin)], sys.stdout)


if __name__ == "__main__":
    main()
