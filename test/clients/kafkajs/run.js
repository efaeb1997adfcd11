// kafkajs driver (kafkajs 2.2.4, pinned by package-lock.json). See
// ../README.md for the contract. Run in this directory after `npm ci`:
//   node run.js
'use strict'
const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')

const env = process.env
for (const v of ['KAFKA_BOOTSTRAP', 'KAFKA_CA_FILE', 'KAFKA_USER', 'KAFKA_PASSWORD', 'KAFKA_TOPIC', 'KAFKA_GROUP']) {
  if (!env[v]) {
    console.error(`kafkajs driver: ${v} is not set`)
    process.exit(2)
  }
}
const count = parseInt(env.KAFKA_COUNT || '20', 10)
const budgetMs = parseFloat(env.KAFKA_TIMEOUT_SEC || '60') * 1000
const deadline = Date.now() + budgetMs
const topic = env.KAFKA_TOPIC
const want = new Set()
for (let i = 0; i < count; i++) want.add(`kafkajs-${topic}-${i}`)
let produced = 0
const seen = new Set()

let finished = false
function finish (code, err) {
  if (finished) return
  finished = true
  if (err) console.error('kafkajs driver:', err)
  console.log(`RESULT produced=${produced} consumed=${seen.size}`)
  process.exit(code)
}

// Holds the run to the budget whatever the client does on connect/disconnect
// (kafkajs retries with backoff, and disconnect waits for a running batch).
setTimeout(() => finish(3, `timed out after ${budgetMs / 1000}s`), budgetMs + 3000).unref()

const kafka = new Kafka({
  clientId: 'scram-proxy-kafkajs',
  brokers: [env.KAFKA_BOOTSTRAP],
  ssl: { ca: [fs.readFileSync(env.KAFKA_CA_FILE)] },
  sasl: {
    mechanism: (env.KAFKA_MECHANISM || 'SCRAM-SHA-512').toLowerCase(), // scram-sha-512 | scram-sha-256
    username: env.KAFKA_USER,
    password: env.KAFKA_PASSWORD,
  },
  connectionTimeout: 10000,
  logLevel: logLevel.ERROR,
})

async function main () {
  const producer = kafka.producer()
  await producer.connect()
  try {
    // Resolves once every record is acknowledged by all in-sync replicas.
    await producer.send({ topic, acks: -1, messages: [...want].map(v => ({ value: v })) })
    produced = count
  } finally {
    await producer.disconnect()
  }

  const consumer = kafka.consumer({ groupId: env.KAFKA_GROUP })
  let crashed = null
  try {
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()))
      consumer.on(consumer.events.CRASH, (e) => {
        crashed = e.payload.error
        clearTimeout(timer)
        resolve()
      })
      // autoCommit (the default) commits the offsets of each batch once
      // eachMessage has returned for all of it.
      consumer.run({
        eachMessage: async ({ message }) => {
          const v = message.value ? message.value.toString() : ''
          if (want.has(v)) seen.add(v)
          if (seen.size >= count) {
            clearTimeout(timer)
            resolve()
          }
        },
      }).catch((e) => { crashed = e; clearTimeout(timer); resolve() })
    })
  } finally {
    // Stops the fetch loop after the running batch (and its commit), then
    // leaves the group.
    await consumer.disconnect()
  }
  if (crashed) throw crashed
  if (seen.size < count) throw new Error(`consumed ${seen.size} of ${count} values before the ${budgetMs / 1000}s budget ran out`)
}

main().then(() => finish(produced === count && seen.size === count ? 0 : 1),
  (err) => finish(1, err))
