// Sends bulk operations to an Elasticsearch `_bulk` API with the official Node.js client, unchanged, then prints
// one JSON line saying what the client reported. Driven by tests/e2e/test_es_bulk_node_client.py.
//
// usage: node bulk.mjs helper|bulk
//   helper: client.helpers.bulk(), reporting its stats (total, successful, failed) and every onDrop call
//   bulk:   client.bulk(), reporting the answer's `errors` and `items`
// env:   ES_URL (http://127.0.0.1:PORT), ES_KEY (the API key),
//        ES_AUTH (apikey: `ApiKey <key>`; apikey-pair: `ApiKey base64(id:key)`; basic: the key as password),
//        ES_GZIP (1: gzip the request bodies), ES_OPERATIONS (a JSON array of
//        {"action": "index"|"create"|"delete", "index": "...", "id"?: "...", "document"?: {...}})
import { Client } from '@elastic/elasticsearch'

const mode = process.argv[2]
const key = process.env.ES_KEY
const auths = {
  apikey: { apiKey: key },
  'apikey-pair': { apiKey: { id: 'mintlog', api_key: key } },
  basic: { username: 'mintlog', password: key }
}
const client = new Client({
  node: process.env.ES_URL,
  auth: auths[process.env.ES_AUTH],
  compression: process.env.ES_GZIP === '1',
  maxRetries: 0, // a test must see what Mintlog answered the first time
  requestTimeout: 30000
})
const operations = JSON.parse(process.env.ES_OPERATIONS)

function header ({ action, index, id }) {
  return { [action]: { _index: index, ...(id === undefined ? {} : { _id: id }) } }
}

async function withHelper () {
  const drops = []
  const stats = await client.helpers.bulk({
    datasource: operations,
    onDocument: operation => operation.action === 'delete' ? header(operation) : [header(operation), operation.document],
    onDrop: drop => drops.push({ status: drop.status, error: drop.error, operation: drop.operation }),
    retries: 0,
    flushInterval: 100
  })
  return { total: stats.total, successful: stats.successful, failed: stats.failed, drops }
}

async function withBulk () {
  const body = operations.flatMap(
    operation => operation.action === 'delete' ? [header(operation)] : [header(operation), operation.document]
  )
  const answer = await client.bulk({ operations: body })
  return { errors: answer.errors, items: answer.items }
}

// What the client checks before sending anything: the product header and the version of `GET /`.
const info = await client.info()
const outcome = mode === 'helper' ? await withHelper() : await withBulk()
await client.close()
process.stdout.write(JSON.stringify({ version: info.version.number, ...outcome }) + '\n')
