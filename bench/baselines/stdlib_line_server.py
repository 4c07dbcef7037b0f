"""Baseline: the least a Python process can be that answers requests on stdio.

The interpreter and its json module only: each line read is answered with one
line, until stdin closes. The floor for the `parleyd` shim, which has to start
an interpreter too before it can splice anything.
"""

import json
import sys

_INITIALIZED = {"protocolVersion": 1, "agentCapabilities": {}, "authMethods": []}

for line in sys.stdin.buffer:
    request = json.loads(line)
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": _INITIALIZED}))
    sys.stdout.write("\n")
    sys.stdout.flush()
