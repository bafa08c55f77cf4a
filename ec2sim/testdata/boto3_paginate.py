"""Drive ec2sim with boto3, as a wire-compatibility check.

Usage: boto3_paginate.py ENDPOINT_URL REGION PAGE_SIZE

Pages through DescribeClientVpnEndpoints with boto3's paginator, makes one
filtered call and one invalid call, and prints a JSON document:
{"pages": N, "endpoints": [...], "filtered": [ids], "error": {"code", "status"},
 "model": {...}, "botocore": "1.29.27"}.
"model" is the ClientVpnEndpoint shape of the installed botocore: for each
member its own members (structures and lists of structures), else null.
botocore parses only the members its model knows, and distributions ship
different versions (Debian 12's python3-boto3 has botocore 1.29).
"""

import json
import sys

import boto3
import botocore
from botocore.config import Config
from botocore.exceptions import ClientError


def members(shape):
    """The member tree of a botocore shape, for the test to compare with."""
    if shape.type_name == "list":
        return members(shape.member)
    if shape.type_name == "structure":
        return {name: members(m) for name, m in shape.members.items()}
    return None


def main():
    endpoint_url, region, page_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    client = boto3.client(
        "ec2",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(retries={"mode": "standard", "max_attempts": 5}),
    )

    pages, endpoints = 0, []
    paginator = client.get_paginator("describe_client_vpn_endpoints")
    for page in paginator.paginate(PaginationConfig={"PageSize": page_size}):
        pages += 1
        endpoints.extend(page["ClientVpnEndpoints"])

    filtered = client.describe_client_vpn_endpoints(
        Filters=[
            {"Name": "transport-protocol", "Values": ["tcp"]},
            {"Name": "tag:Environment", "Values": ["prod*", "stag?ng"]},
        ]
    )["ClientVpnEndpoints"]

    error = None
    try:
        client.describe_client_vpn_endpoints(ClientVpnEndpointIds=["cvpn-endpoint-00000000000000000"])
    except ClientError as e:
        error = {
            "code": e.response["Error"]["Code"],
            "message": e.response["Error"]["Message"],
            "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
        }

    json.dump(
        {
            "pages": pages,
            "endpoints": endpoints,
            "filtered": [e["ClientVpnEndpointId"] for e in filtered],
            "error": error,
            "model": members(client.meta.service_model.shape_for("ClientVpnEndpoint")),
            "botocore": botocore.__version__,
        },
        sys.stdout,
        default=str,
    )


if __name__ == "__main__":
    main()
