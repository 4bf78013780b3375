// The reference tus server for scripts/bench/upload.py: @tus/server with @tus/file-store, as
// their README runs them, on 127.0.0.1. With --fdatasync, each PATCH's data is made durable
// (fdatasync) before the offset is answered, which is what the collector guarantees.
// Usage: node server.mjs DIR [--fdatasync]   (prints the port it listens on, then serves)
import fs from 'node:fs/promises'
import http from 'node:http'
import { FileStore } from '@tus/file-store'
import { Server } from '@tus/server'

class SyncedFileStore extends FileStore {
  async write (readable, id, offset) {
    const end = await super.write(readable, id, offset)
    const file = await fs.open(this.resolve(id), 'r+')
    try {
      await file.datasync()
    } finally {
      await file.close()
    }
    return end
  }
}

const [directory, flag] = process.argv.slice(2)
const Store = flag === '--fdatasync' ? SyncedFileStore : FileStore
const tus = new Server({ path: '/files', datastore: new Store({ directory }) })
const server = http.createServer((req, res) => tus.handle(req, res))
server.listen(0, '127.0.0.1', () => console.log(server.address().port))
