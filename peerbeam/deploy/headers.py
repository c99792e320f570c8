"""CloudFront's response headers policy for the site, rendered from peerbeam.website.

The packaged template gets this resource (``SiteHeadersPolicy``) from here, so the
deployed site and `peerbeam serve` send the same headers from one definition. Only
two things differ on AWS: ``connect-src`` names the API Gateway endpoints, and HSTS is
added (the distribution serves HTTPS only, with a real certificate).
"""

from __future__ import annotations

from typing import Any

from peerbeam import website

RESOURCE_NAME = "SiteHeadersPolicy"

# The WebSocket API is named exactly. The REST API cannot be: the distribution → headers
# policy → REST API → its function's environment → the distribution's domain (the
# allowed origin) would be a dependency cycle, so any REST API of the region is allowed.
CONNECT_SRC = (
    "'self' https://*.execute-api.${AWS::Region}.${AWS::URLSuffix} "
    "wss://${WebsocketAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}"
)


def _custom(name: str, value: str) -> dict[str, Any]:
    return {"Header": name, "Value": value, "Override": True}


def response_headers_policy() -> dict[str, Any]:
    """The ``AWS::CloudFront::ResponseHeadersPolicy`` resource.

    CloudFront takes the headers it knows as typed fields (and refuses them as custom
    headers); every other header of the site becomes a custom header.
    """
    security: dict[str, Any] = {
        "StrictTransportSecurity": {
            "AccessControlMaxAgeSec": website.HSTS_MAX_AGE,
            "IncludeSubdomains": website.HSTS_INCLUDE_SUBDOMAINS,
            "Preload": False,
            "Override": True,
        },
    }
    custom: list[dict[str, Any]] = []
    for name, value in website.security_headers(CONNECT_SRC).items():
        if name == "Content-Security-Policy":
            security["ContentSecurityPolicy"] = {
                "ContentSecurityPolicy": {"Fn::Sub": value}, "Override": True
            }
        elif name == "X-Content-Type-Options":
            if value != "nosniff":  # the only value CloudFront can send
                raise ValueError(f"CloudFront cannot send X-Content-Type-Options: {value}")
            security["ContentTypeOptions"] = {"Override": True}
        elif name == "X-Frame-Options":
            security["FrameOptions"] = {"FrameOption": value, "Override": True}
        elif name == "Referrer-Policy":
            security["ReferrerPolicy"] = {"ReferrerPolicy": value, "Override": True}
        else:
            custom.append(_custom(name, value))
    return {
        "Type": "AWS::CloudFront::ResponseHeadersPolicy",
        "Properties": {
            "ResponseHeadersPolicyConfig": {
                "Name": {"Fn::Sub": "${AWS::StackName}-security-headers"},
                "Comment": "The web client's security headers (peerbeam/website.py), plus HSTS",
                "SecurityHeadersConfig": security,
                "CustomHeadersConfig": {"Items": custom},
            }
        },
    }
