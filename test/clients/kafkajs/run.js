// kafkajs driver. Run with node after `npm ci` in this directory.
// See ../README.md for the contract.
'use strict'
const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')

const env = process.env
const count = parseInt(env.KAFKA_COUNT || '20', 10)
const budgetMs = parseFloat(env.KAFKA_TIMEOUT_SEC || '60') * 1000
const topic = env.KAFKA_TOPIC

const kafka = new Kafka({
  clientId: 'scram-proxy-kafkajs',
  brokers: [env.KAFKA_BOOTSTRAP],
  ssl: { ca: [fs.readFileSync(env.KAFKA_CA_FILE)] },
  sasl: {
    mechanism: (env.KAFKA_MECHANISM || 'SCRAM-SHA-512').toLowerCase(),
    username: env.KAFKA_USER,
    password: env.KAFKA_PASSWORD,
  },
  logLevel: logLevel.ERROR,
})

async function main () {
  const want = new Set()
  for (let i = 0; i < count; i++) want.add(`kafkajs-${topic}-${i}`)

  const producer = kafka.producer()
  await producer.connect()
  const res = await producer.send({ topic, acks: -1, messages: [...want].map(v => ({ value: v })) })
  const produced = res.length > 0 ? count : 0
  await producer.disconnect()

  const consumer = kafka.consumer({ groupId: env.KAFKA_GROUP })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const seen = new Set()
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, budgetMs)
    consumer.run({
      eachMessage: async ({ message }) => {
        const v = message.value.toString()
        if (want.has(v)) seen.add(v)
        if (seen.size >= count) { clearTimeout(timer); resolve() }
      },
    })
  })
  await consumer.disconnect()
  console.log(`RESULT produced=${produced} consumed=${seen.size}`)
  return produced === count && seen.size === count
}

const hard = setTimeout(() => { console.error('timed out'); process.exit(2) }, budgetMs + 15000)
main().then(ok => { clearTimeout(hard); process.exit(ok ? 0 : 1) },
  err => { console.error(err); process.exit(1) })
