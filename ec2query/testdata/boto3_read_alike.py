"""Read two EC2 DescribeClientVpnEndpoints answers with boto3 and compare.

Usage: boto3_read_alike.py AWS_URL OURS_URL [AWS_URL OURS_URL ...]

Each AWS_URL serves a response as AWS documents it, the OURS_URL after it
ec2query's encoding of what aws-sdk-go-v2 read from it. botocore matches XML element names
case-sensitively, unlike the Go SDK, so it notices a mis-cased element.
Lists that are empty count as absent (the contract cannot tell them apart).
Prints one JSON array with one {"equal", "endpoints", "detail"} per pair
(one process for every pair: loading boto3's EC2 model takes seconds).
"""

import json
import sys

import boto3
from botocore.config import Config


# One session for every client: it loads the EC2 model once.
SESSION = boto3.session.Session()


def read(url):
    client = SESSION.client(
        "ec2",
        endpoint_url=url,
        region_name="eu-west-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(retries={"mode": "standard", "max_attempts": 3}),
    )
    out = client.describe_client_vpn_endpoints()
    out.pop("ResponseMetadata", None)
    return without_empty_lists(out)


def without_empty_lists(v):
    if isinstance(v, dict):
        return {k: without_empty_lists(x) for k, x in v.items() if x != []}
    if isinstance(v, list):
        return [without_empty_lists(x) for x in v]
    return v


def first_difference(a, b, path="$"):
    if type(a) is not type(b):
        return f"{path}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{path}.{k}: only in {'AWS' if k in a else 'ours'}"
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
    urls = sys.argv[1:]
    results = []
    for aws_url, ours_url in zip(urls[0::2], urls[1::2]):
        theirs, ours = read(aws_url), read(ours_url)
        diff = first_difference(theirs, ours)
        results.append({"equal": diff is None, "endpoints": len(theirs.get("ClientVpnEndpoints", [])),
                        "detail": diff or ""})
    print(json.dumps(results))


if __name__ == "__main__":
    main()
