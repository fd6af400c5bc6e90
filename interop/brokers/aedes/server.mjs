// The aedes broker as an interop target (started by interop/brokers/aedes_target.py).
//   node server.mjs --port N [--ws-port N] [--tls-port N --cert FILE --key FILE [--mtls-port N --ca FILE]]
// Listens on 127.0.0.1 only, prints "READY" once every listener is bound, logs client events to stdout,
// and closes its listeners on SIGTERM.
import net from 'node:net'
import tls from 'node:tls'
import http from 'node:http'
import fs from 'node:fs'
import { Aedes } from 'aedes'
import { WebSocketServer, createWebSocketStream } from 'ws'

const here = new URL('.', import.meta.url)
const version = JSON.parse(fs.readFileSync(new URL('node_modules/aedes/package.json', here))).version

function option (name) {
  const at = process.argv.indexOf('--' + name)
  return at >= 0 ? process.argv[at + 1] : undefined
}

function listen (server, port) {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(Number(port), '127.0.0.1', resolve)
  })
}

const broker = await Aedes.createBroker()
const servers = []
servers.push(net.createServer(broker.handle))
await listen(servers[0], option('port'))
if (option('ws-port')) {
  const httpServer = http.createServer()
  const wss = new WebSocketServer({ server: httpServer })
  wss.on('connection', (socket, request) => broker.handle(createWebSocketStream(socket), request))
  servers.push(httpServer)
  await listen(httpServer, option('ws-port'))
}
if (option('tls-port')) {
  const keys = { cert: fs.readFileSync(option('cert')), key: fs.readFileSync(option('key')) }
  const tlsServer = tls.createServer(keys, broker.handle)
  servers.push(tlsServer)
  await listen(tlsServer, option('tls-port'))
  if (option('mtls-port')) { // a client certificate signed by --ca is required
    const mtls = tls.createServer({ ...keys, ca: fs.readFileSync(option('ca')), requestCert: true, rejectUnauthorized: true }, broker.handle)
    servers.push(mtls)
    await listen(mtls, option('mtls-port'))
  }
}
broker.on('client', (client) => console.log(`client connected ${client.id}`))
broker.on('clientDisconnect', (client) => console.log(`client disconnected ${client.id}`))
broker.on('clientError', (client, err) => console.log(`client error ${client && client.id}: ${err.message}`))
broker.on('connectionError', (client, err) => console.log(`connection error ${client && client.id}: ${err.message}`))
console.log(`aedes ${version} READY`)
process.on('SIGTERM', () => {
  for (const server of servers) server.close()
  broker.close(() => process.exit(0))
  setTimeout(() => process.exit(0), 1000).unref()
})
