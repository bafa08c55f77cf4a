"""Call an EC2-compatible endpoint with boto3, signing with given keys.

Usage: boto3_sigv4.py < cases.json

Reads a JSON list of cases, each {"name", "url", "region", "key", "secret",
"tamper", "unsigned"}, calls DescribeClientVpnEndpoints(MaxResults=5) for
each with boto3's own SigV4 signer, and prints one JSON list of results
{"name", "ok", "code", "status", "count"}. With "tamper", the body is
changed after signing (MaxResults=5 becomes MaxResults=9), as a proxy or
an attacker would; with "unsigned", the request is sent without a
signature. Retries are off, so every case is one request.
"""

import json
import sys

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError


def tamper(request, **_):
    body = request.body
    if isinstance(body, str):
        body = body.encode()
    request.body = body.replace(b"MaxResults=5", b"MaxResults=9")


def run(case):
    cfg = Config(retries={"total_max_attempts": 1})
    if case.get("unsigned"):
        cfg = cfg.merge(Config(signature_version=UNSIGNED))
    client = boto3.client(
        "ec2",
        endpoint_url=case["url"],
        region_name=case["region"],
        aws_access_key_id=case["key"],
        aws_secret_access_key=case["secret"],
        config=cfg,
    )
    if case.get("tamper"):
        client.meta.events.register("before-send.ec2.DescribeClientVpnEndpoints", tamper)
    try:
        out = client.describe_client_vpn_endpoints(MaxResults=5)
        return {"name": case["name"], "ok": True, "count": len(out["ClientVpnEndpoints"])}
    except ClientError as e:
        return {
            "name": case["name"],
            "ok": False,
            "code": e.response["Error"]["Code"],
            "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
        }


def main():
    cases = json.load(sys.stdin)
    json.dump([run(c) for c in cases], sys.stdout)


if __name__ == "__main__":
    main()
