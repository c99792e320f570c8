"""Server domain of peerbeam: room rules, stores, signaling relay, ICE servers.

Everything here must stay importable inside AWS Lambda with only the standard
library and boto3 (which the Lambda runtime provides).
"""
