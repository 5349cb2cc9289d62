'use strict';

// Drive the official Yoti Node SDK (RequestBuilder / Payload) against a server.
// Reads a JSON list of requests from argv[2], writes a JSON list of results to argv[3]
// (the SDK logs errors on stdout, so results go to a file). Each request:
// {base_url, endpoint, pem, sdk_id, payload, headers?, params?}; each result: {status, body, url}.

const fs = require('fs');
const { RequestBuilder, Payload } = require('yoti');

async function run(req) {
  let builder = new RequestBuilder()
    .withBaseUrl(req.base_url)
    .withPemFilePath(req.pem)
    .withEndpoint(req.endpoint)
    .withPayload(new Payload(req.payload))
    .withMethod(req.method || 'POST')
    .withHeader('X-Yoti-Auth-Id', req.sdk_id);
  for (const [name, value] of Object.entries(req.headers || {})) {
    builder = builder.withHeader(name, value);
  }
  for (const [name, value] of Object.entries(req.params || {})) {
    builder = builder.withQueryParam(name, value);
  }
  const request = builder.build();
  const url = request.getUrl();
  try {
    const response = await request.execute();
    return { status: response.getStatusCode(), body: response.getParsedResponse(), url };
  } catch (err) {
    if (err.response) {
      let body = err.response.body;
      if (!body || (typeof body === 'object' && Object.keys(body).length === 0)) {
        try { body = JSON.parse(err.response.text); } catch (e) { body = err.response.text; }
      }
      return { status: err.response.status, body, url };
    }
    return { status: -1, body: String(err && err.message), url };
  }
}

async function main() {
  const requests = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const results = [];
  for (const req of requests) {
    // eslint-disable-next-line no-await-in-loop
    results.push(await run(req));
  }
  fs.writeFileSync(process.argv[3], JSON.stringify(results));
}

main().catch((err) => {
  process.stderr.write(`driver failed: ${err && err.stack}\n`);
  process.exit(2);
});
