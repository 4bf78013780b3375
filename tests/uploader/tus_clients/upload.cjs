// One upload with tus-js-client at its default settings (retries, chunk size, no URL store),
// for tests/uploader/collector/test_foreign_clients.py. Prints one JSON line: {ok, url | error}.
// Usage: node upload.cjs ENDPOINT TOKEN FILE METADATA_JSON [UPLOAD_URL]
'use strict'
const fs = require('fs')
const { Upload } = require('tus-js-client')

const [endpoint, token, file, metadata, uploadUrl] = process.argv.slice(2)
const options = {
  endpoint,
  headers: { Authorization: `Bearer ${token}` },
  metadata: JSON.parse(metadata),
  onSuccess () {
    console.log(JSON.stringify({ ok: true, url: upload.url }))
  },
  onError (error) {
    console.log(JSON.stringify({ ok: false, error: String(error) }))
    process.exitCode = 1
  },
}
if (uploadUrl) options.uploadUrl = uploadUrl  // resume a known upload, as a restored URL store would
const upload = new Upload(fs.readFileSync(file), options)
upload.start()
