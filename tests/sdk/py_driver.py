"""Drive the official Yoti Python SDK (``yoti_python_sdk.http.SignedRequest``) against a server.

Runs in tests/sdk/.venv (yoti + future; their protobuf pin clashes with AgeGuard's). Reads a JSON list of
requests from the file named by argv[1] and writes a JSON list of results to argv[2]. Each request:
``{"base_url", "endpoint", "pem", "sdk_id", "payload" (object), "headers"?, "params"?, "tamper"?}``.
``tamper`` changes the SDK-built request before sending, to prove the server rejects it:
``body``, ``method`` (signed as PUT, sent as POST), ``path``, ``query``, ``drop:<header>``,
``set:<header>=<value>``, ``replay``.
Each result: ``{"status": int, "body": object|str, "url": str}``.
"""

import json
import sys

import requests
from yoti_python_sdk.http import SignedRequest


def build(req):
    builder = (
        SignedRequest.builder()
        .with_pem_file(req["pem"])
        .with_base_url(req["base_url"])
        .with_endpoint(req["endpoint"])
        .with_http_method(req.get("method", "POST"))
        .with_header("X-Yoti-Auth-Id", req["sdk_id"])
        .with_payload(json.dumps(req["payload"]).encode())
    )
    for name, value in (req.get("headers") or {}).items():
        builder = builder.with_header(name, value)
    for name, value in (req.get("params") or {}).items():
        builder = builder.with_param(name, value)
    return builder.build()


def send(method, url, data, headers):
    response = requests.request(method=method, url=url, data=data, headers=headers, timeout=120)
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return {"status": response.status_code, "body": body, "url": url}


def run(req):
    tamper = req.get("tamper")
    if tamper == "method":  # signed as PUT, sent as POST
        signed = build(dict(req, method="PUT"))
        return send("POST", signed.url, signed.data, dict(signed.headers))
    signed = build(req)
    if not tamper:
        response = signed.execute()
        try:
            body = json.loads(response.text)
        except ValueError:
            body = response.text
        return {"status": response.status_code, "body": body, "url": signed.url}
    method, url, data, headers = signed.method, signed.url, signed.data, dict(signed.headers)
    if tamper == "body":
        payload = dict(req["payload"])
        payload["metadata"] = {"device": "laptop"}
        data = json.dumps(payload).encode()
    elif tamper == "path":
        url = url.replace(req["endpoint"], req["tamper_path"], 1)
    elif tamper == "query":
        url = url + "&extra=1"
    elif tamper.startswith("drop:"):
        headers.pop(tamper[5:], None)
    elif tamper.startswith("set:"):
        name, _, value = tamper[4:].partition("=")
        headers[name] = value
    elif tamper == "replay":
        first = send(method, url, data, headers)
        second = send(method, url, data, headers)
        second["first"] = first
        return second
    return send(method, url, data, headers)


def main():
    with open(sys.argv[1]) as fh:
        requests_in = json.load(fh)
    results = [run(req) for req in requests_in]
    with open(sys.argv[2], "w") as fh:
        json.dump(results, fh)


if __name__ == "__main__":
    main()
