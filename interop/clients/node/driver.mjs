// MQTT.js behind the interop line protocol (interop/clients/driver.py describes the operations).
// One mqtt.js client per named connection; automatic reconnection off (reconnectPeriod 0).
import fs from 'node:fs'
import readline from 'node:readline'
import mqtt from 'mqtt'

const here = new URL('.', import.meta.url)
const version = JSON.parse(fs.readFileSync(new URL('node_modules/mqtt/package.json', here))).version
const FEATURES = ['3.1.1', '5.0', 'tls', 'client_certificate', 'websocket', 'will', 'will_delay', 'session_expiry',
  'user_properties', 'message_expiry', 'topic_alias', 'subscription_identifier', 'response_topic',
  'correlation_data', 'payload_format', 'content_type', 'receive_maximum', 'maximum_packet_size',
  'connack_properties']
const connections = new Map()

function outProperties (p) {
  if (!p) return undefined
  const r = {}
  if (p.user_properties) {
    r.userProperties = {}
    for (const [k, v] of p.user_properties) {
      if (k in r.userProperties) r.userProperties[k] = [].concat(r.userProperties[k], v)
      else r.userProperties[k] = v
    }
  }
  if (p.message_expiry !== undefined) r.messageExpiryInterval = p.message_expiry
  if (p.topic_alias !== undefined) r.topicAlias = p.topic_alias
  if (p.response_topic !== undefined) r.responseTopic = p.response_topic
  if (p.correlation_data !== undefined) r.correlationData = Buffer.from(p.correlation_data)
  if (p.payload_format !== undefined) r.payloadFormatIndicator = Boolean(p.payload_format)
  if (p.content_type !== undefined) r.contentType = p.content_type
  return r
}

function inProperties (p) {
  if (!p) return {}
  const r = {}
  if (p.userProperties) {
    r.user_properties = []
    for (const [k, v] of Object.entries(p.userProperties)) {
      for (const one of [].concat(v)) r.user_properties.push([k, String(one)])
    }
  }
  const names = { messageExpiryInterval: 'message_expiry', topicAlias: 'topic_alias', responseTopic: 'response_topic',
    contentType: 'content_type', receiveMaximum: 'receive_maximum', maximumPacketSize: 'maximum_packet_size',
    topicAliasMaximum: 'topic_alias_maximum', maximumQoS: 'maximum_qos', retainAvailable: 'retain_available',
    sessionExpiryInterval: 'session_expiry', assignedClientIdentifier: 'assigned_client_identifier',
    wildcardSubscriptionAvailable: 'wildcard_subscription_available',
    subscriptionIdentifiersAvailable: 'subscription_identifier_available',
    sharedSubscriptionAvailable: 'shared_subscription_available' }
  for (const [k, name] of Object.entries(names)) if (p[k] !== undefined) r[name] = p[k]
  if (p.correlationData !== undefined) r.correlation_data = Buffer.from(p.correlationData).toString('utf8')
  if (p.payloadFormatIndicator !== undefined) r.payload_format = p.payloadFormatIndicator ? 1 : 0
  if (p.subscriptionIdentifier !== undefined) r.subscription_identifier = [].concat(p.subscriptionIdentifier)
  return r
}

class Inbox {
  constructor () { this.messages = []; this.waiters = [] }
  put (m) { this.messages.push(m); for (const w of this.waiters.splice(0)) w() }
  async take (count, timeout) {
    const deadline = Date.now() + timeout * 1000
    while (this.messages.length < count && Date.now() < deadline) {
      await new Promise(resolve => {
        const timer = setTimeout(resolve, deadline - Date.now())
        this.waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
    return this.messages.splice(0, count)
  }
}

function get (conn) {
  const c = connections.get(conn)
  if (!c || !c.client) throw new Error(`no connection ${conn}`)
  return c
}

function close (c) {
  return new Promise(resolve => {
    if (!c.client) return resolve()
    const client = c.client
    c.client = null
    client.end(false, {}, () => resolve())
    setTimeout(() => { client.end(true); resolve() }, 2000).unref()
  })
}

const ops = {
  async hello () { return { library: 'mqtt.js', version, features: FEATURES } },

  async connect (a) {
    const old = connections.get(a.conn)
    if (old) await close(old)
    const v5 = a.version === '5.0'
    const scheme = { tcp: 'mqtt', tls: 'mqtts', ws: 'ws' }[a.transport || 'tcp']
    const url = `${scheme}://${a.host}:${a.port}${a.transport === 'ws' ? '/mqtt' : ''}`
    const options = { protocolVersion: v5 ? 5 : 4, clientId: a.client_id, clean: a.clean !== false,
      keepalive: a.keepalive || 30, reconnectPeriod: 0, connectTimeout: (a.timeout || 10) * 1000 }
    if (a.username !== undefined && a.username !== null) { options.username = a.username; options.password = a.password }
    if (a.transport === 'tls') {
      options.ca = fs.readFileSync(a.ca); options.rejectUnauthorized = true
      if (a.cert) { options.cert = fs.readFileSync(a.cert); options.key = fs.readFileSync(a.key) }
    }
    if (v5) {
      const p = {}
      if (a.session_expiry !== undefined) p.sessionExpiryInterval = a.session_expiry
      if (a.receive_maximum !== undefined) p.receiveMaximum = a.receive_maximum
      if (a.maximum_packet_size !== undefined) p.maximumPacketSize = a.maximum_packet_size
      options.properties = p
    }
    if (a.will) {
      options.will = { topic: a.will.topic, payload: Buffer.from(a.will.payload || ''), qos: a.will.qos || 0,
        retain: Boolean(a.will.retain) }
      if (a.will.delay) options.will.properties = { willDelayInterval: a.will.delay }
    }
    const c = { client: null, inbox: old ? old.inbox : new Inbox(), connected: false }
    connections.set(a.conn, c)
    const client = mqtt.connect(url, options)
    c.client = client
    client.on('message', (topic, payload, packet) => {
      c.inbox.put({ topic, payload: payload.toString('utf8'), qos: packet.qos, retain: Boolean(packet.retain),
        properties: v5 ? inProperties(packet.properties) : {} })
    })
    client.on('close', () => { c.connected = false })
    client.on('error', () => {})
    return await new Promise((resolve, reject) => {
      client.once('connect', (connack) => {
        c.connected = true
        resolve({ session_present: Boolean(connack.sessionPresent), reason_code: connack.reasonCode || connack.returnCode || 0,
          properties: v5 ? inProperties(connack.properties) : {} })
      })
      client.once('error', (err) => reject(err))
      client.once('close', () => reject(new Error('the connection closed before CONNACK')))
    })
  },

  async subscribe (a) {
    const c = get(a.conn)
    const options = { qos: a.qos || 0 }
    if (a.subscription_identifier) options.properties = { subscriptionIdentifier: a.subscription_identifier }
    const granted = await c.client.subscribeAsync(a.topic, options)
    return { granted: granted.map(g => g.qos) }
  },

  async unsubscribe (a) { await get(a.conn).client.unsubscribeAsync(a.topic); return {} },

  async publish (a) {
    const c = get(a.conn)
    const options = { qos: a.qos || 0, retain: Boolean(a.retain) }
    const p = outProperties(a.properties)
    if (p) options.properties = p
    await c.client.publishAsync(a.topic, a.payload || '', options)
    return {}
  },

  async receive (a) {
    const c = connections.get(a.conn)
    if (!c) throw new Error(`no connection ${a.conn}`)
    return { messages: await c.inbox.take(a.count || 1, a.timeout || 2) }
  },

  async status (a) {
    const c = connections.get(a.conn)
    return { connected: Boolean(c && c.client && c.client.connected) }
  },

  async disconnect (a) { await close(get(a.conn)); return {} },

  async reset () {
    await Promise.all([...connections.values()].map(close))
    connections.clear()
    return {}
  }
}

const lines = readline.createInterface({ input: process.stdin })
let queue = Promise.resolve()
lines.on('line', (line) => {
  let request
  try { request = JSON.parse(line) } catch { return }
  queue = queue.then(async () => {
    const { id, op, ...args } = request
    let answer
    try {
      if (!ops[op]) throw new Error(`unknown operation ${op}`)
      answer = { ok: true, ...(await ops[op](args)) }
    } catch (err) {
      answer = { ok: false, error: `${err && err.name}: ${err && err.message}` }
    }
    answer.id = id
    process.stdout.write(JSON.stringify(answer) + '\n')
  })
})
lines.on('close', () => { queue.then(() => ops.reset()).then(() => process.exit(0)) })
