// Pushes log lines to a Loki push API with a real Loki client library, then prints one JSON line saying what
// the client did. Driven by tests/e2e/test_loki_push.py.
//
// usage: node push.mjs winston|pino
// env:   LOKI_URL (http://127.0.0.1:PORT), LOKI_KEY (the API key), LOKI_AUTH (header|basic),
//        LOKI_JOB (the job label), LOKI_TIME_MS (the entries' time, ms), LOKI_LINES (a JSON array of
//        {"level": "...", "message": "..."}), WINSTON_JSON (1: winston-loki's JSON mode instead of protobuf)
import { createRequire } from 'node:module'
import pino from 'pino'
import pinoLoki from 'pino-loki'
import winston from 'winston'
import LokiTransport from 'winston-loki'

const require = createRequire(import.meta.url)
const client = process.argv[2]
const url = process.env.LOKI_URL
const key = process.env.LOKI_KEY
const basic = process.env.LOKI_AUTH === 'basic'
const job = process.env.LOKI_JOB
const timeMs = Number(process.env.LOKI_TIME_MS)
const lines = JSON.parse(process.env.LOKI_LINES)
const errors = []

async function withWinston () {
  const json = process.env.WINSTON_JSON === '1'
  if (!json) require('snappy') // winston-loki silently falls back to JSON without snappy: fail instead
  const transport = new LokiTransport({
    host: url,
    labels: { job, host: 'winston-host' },
    json,
    batching: true,
    interval: 60, // everything goes in the one push that close() sends
    clearOnError: true, // a refused batch is not sent again (winston-loki re-sends it otherwise)
    gracefulShutdown: false,
    replaceTimestamp: false, // keep the entries' own time (winston-loki replaces it by default)
    ...(basic ? { basicAuth: `loki:${key}` } : { headers: { 'X-API-Key': key } }),
    format: winston.format.printf(info => info.message),
    onConnectionError: error => errors.push(error.message)
  })
  const logger = winston.createLogger({ level: 'debug', transports: [transport] })
  for (const { level, message } of lines) {
    logger.log({ level, message, timestamp: new Date(timeMs).toISOString(), request_id: 'r-1' })
  }
  await new Promise(resolve => setImmediate(resolve))
  await transport.close()
  return transport.batcher.contentType
}

async function withPino () {
  const originalError = console.error
  console.error = (...args) => errors.push(args.map(String).join(' ')) // pino-loki reports failures here
  const stream = await pinoLoki({
    host: url,
    labels: { job },
    batching: { interval: 60 }, // everything goes in the one push that closing the stream sends
    ...(basic ? { basicAuth: { username: 'loki', password: key } } : { headers: { 'X-API-Key': key } })
  })
  const logger = pino({ level: 'debug', base: { hostname: 'pino-host' }, timestamp: () => `,"time":${timeMs}` }, stream)
  for (const { level, message } of lines) {
    logger[level]({ meta: { trace_id: '4bf92f3577b34da6a3ce929d0e0e4736', tenant_hint: 'blue' }, user: 'ada' }, message)
  }
  const closed = new Promise(resolve => stream.on('close', resolve))
  stream.end()
  await closed
  console.error = originalError
  return 'application/json'
}

const contentType = client === 'winston' ? await withWinston() : await withPino()
process.stdout.write(JSON.stringify({ client, contentType, errors }) + '\n')
