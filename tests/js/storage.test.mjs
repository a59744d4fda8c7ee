// The local stack's /storage/v1 through supabase-js from npm, as a frontend (or a Node script) uses it.
// Each test works in a folder of its own under alice's uid, so none depends on another.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { ANON_KEY, API_URL, SERVICE_KEY, StorageApiError, createClient, fromDriver } from './stack.mjs'

const { ALICE_ID, ALICE_TOKEN, BOB_ID, BOB_TOKEN } = fromDriver(
  'ALICE_ID',
  'ALICE_TOKEN',
  'BOB_ID',
  'BOB_TOKEN',
)

const LIMIT = 2 * 1024 * 1024 // the avatars bucket's file_size_limit
// A PNG signature and some bytes: the server stores what it is given and checks only the declared type.
const PNG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...Array(56).keys()])

/** A storage client as the frontend makes it: the anon key, and the user's access token when signed in. */
function storageAs(token, key = ANON_KEY) {
  const options = { auth: { persistSession: false, autoRefreshToken: false } }
  if (token) options.accessToken = async () => token
  return createClient(API_URL, key, options).storage
}

const alice = () => storageAs(ALICE_TOKEN).from('avatars')

/** A folder of alice's own for one test, so tests share no object and may run in any order. */
const folderOf = (name) => `${ALICE_ID}/${name}-${crypto.randomUUID().slice(0, 8)}`

async function bytesOf(blob) {
  return new Uint8Array(await blob.arrayBuffer())
}

/** The error supabase-js built from the server's answer: the real status travels in `statusCode`. */
function assertRefused({ data, error }, statusCode, code, message) {
  assert.equal(data, null)
  assert.ok(error instanceof StorageApiError, `expected a StorageApiError, got ${error}`)
  assert.equal(error.name, 'StorageApiError')
  // Storage answers every error but a 500 with HTTP 400; the status it means is statusCode.
  assert.equal(error.status, 400)
  assert.deepEqual({ statusCode: error.statusCode, code: error.code }, { statusCode, code })
  assert.equal(error.message, message)
}

function ok({ data, error }) {
  assert.equal(error, null, `unexpected error: ${error && JSON.stringify(error)}`)
  return data
}

const pngBlob = (bytes = PNG) => new Blob([bytes], { type: 'image/png' })

test('a Blob and a File go up as multipart, with their cache control and metadata', async () => {
  const avatars = alice()
  const folder = folderOf('multipart')
  const uploaded = ok(
    await avatars.upload(`${folder}/blob.png`, pngBlob(), { cacheControl: '60', metadata: { by: 'blob' } }),
  )
  assert.equal(uploaded.path, `${folder}/blob.png`)
  assert.equal(uploaded.fullPath, `avatars/${folder}/blob.png`)
  assert.match(uploaded.id, /^[0-9a-f-]{36}$/)
  const file = new File([PNG], 'me.png', { type: 'image/png' })
  ok(await avatars.upload(`${folder}/file.png`, file, { metadata: { by: 'file' } }))

  for (const [name, by, cacheControl] of [
    ['blob.png', 'blob', 'max-age=60'],
    ['file.png', 'file', 'max-age=3600'], // supabase-js's default cacheControl, '3600'
  ]) {
    const blob = ok(await avatars.download(`${folder}/${name}`))
    assert.equal(blob.type, 'image/png')
    assert.deepEqual(await bytesOf(blob), PNG)
    const info = ok(await avatars.info(`${folder}/${name}`))
    assert.deepEqual(
      {
        size: info.size,
        contentType: info.contentType,
        cacheControl: info.cacheControl,
        metadata: info.metadata,
      },
      { size: PNG.length, contentType: 'image/png', cacheControl, metadata: { by } },
    )
  }
})

test('an ArrayBuffer and a Uint8Array go up raw, with type, cache control and metadata headers', async () => {
  const avatars = alice()
  const folder = folderOf('raw')
  const metadata = { size: 'small', tags: ['a', 'b'] }
  const options = { contentType: 'image/png', cacheControl: '120', metadata }
  ok(await avatars.upload(`${folder}/buffer.png`, PNG.buffer, options))
  ok(await avatars.upload(`${folder}/view.png`, PNG.subarray(8), options))
  assert.deepEqual(await bytesOf(ok(await avatars.download(`${folder}/buffer.png`))), PNG)
  assert.deepEqual(await bytesOf(ok(await avatars.download(`${folder}/view.png`))), PNG.subarray(8))
  const info = ok(await avatars.info(`${folder}/buffer.png`))
  assert.equal(info.contentType, 'image/png')
  assert.equal(info.cacheControl, 'max-age=120')
  assert.deepEqual(info.metadata, metadata)
  assert.equal(ok(await avatars.exists(`${folder}/view.png`)), true)
  assert.equal((await avatars.exists(`${folder}/none.png`)).data, false) // told by code NoSuchKey
})

test('creating an existing object is refused; upsert and update replace it', async () => {
  const avatars = alice()
  const path = `${folderOf('upsert')}/twice.png`
  ok(await avatars.upload(path, pngBlob()))
  const again = await avatars.upload(path, pngBlob())
  assertRefused(again, '409', 'ResourceAlreadyExists', 'The resource already exists')
  const second = new Uint8Array([...PNG, 2])
  ok(await avatars.upload(path, pngBlob(second), { upsert: true }))
  assert.deepEqual(await bytesOf(ok(await avatars.download(path))), second)
  const third = new Uint8Array([...PNG, 3])
  ok(await avatars.update(path, third, { contentType: 'image/png' }))
  assert.deepEqual(await bytesOf(ok(await avatars.download(path))), third)
})

test('list: a prefix, limit and offset, sortBy and search', async () => {
  const avatars = alice()
  const folder = folderOf('album')
  // Uploaded one after another, so created_at orders them b, a, c.
  for (const name of ['b.png', 'a.png', 'c.png', 'sub/d.png']) {
    ok(await avatars.upload(`${folder}/${name}`, pngBlob()))
  }
  const names = (entries) => entries.map((entry) => entry.name)
  const listed = ok(await avatars.list(folder))
  // By name, folders and files in one order, as Storage's newest search lists them.
  assert.deepEqual(names(listed), ['a.png', 'b.png', 'c.png', 'sub'])
  assert.equal(listed[3].id, null) // a folder
  assert.equal(listed[0].metadata.size, PNG.length)
  assert.equal(listed[0].metadata.mimetype, 'image/png')
  assert.deepEqual(names(ok(await avatars.list(folder, { limit: 2, offset: 1 }))), ['b.png', 'c.png'])
  assert.deepEqual(names(ok(await avatars.list(folder, { limit: 2, offset: 3 }))), ['sub'])
  const byNameDesc = ok(await avatars.list(folder, { sortBy: { column: 'name', order: 'desc' } }))
  assert.deepEqual(names(byNameDesc), ['sub', 'c.png', 'b.png', 'a.png'])
  // Only the column given: supabase-js keeps its default order, asc. By a date, folders come first.
  assert.deepEqual(names(ok(await avatars.list(folder, { sortBy: { column: 'created_at' } }))), [
    'sub',
    'b.png',
    'a.png',
    'c.png',
  ])
  assert.deepEqual(names(ok(await avatars.list(folder, { search: 'b' }))), ['b.png'])
  assert.deepEqual(names(ok(await avatars.list(`${folder}/sub`))), ['d.png'])
})

test('listV2: one level with folders, paged by its cursor', async () => {
  const avatars = alice()
  const folder = folderOf('v2')
  for (const name of ['b.png', 'a.png', 'deep/1.png', 'deep/2.png']) {
    ok(await avatars.upload(`${folder}/${name}`, pngBlob()))
  }
  const first = ok(await avatars.listV2({ prefix: `${folder}/`, limit: 2, with_delimiter: true }))
  assert.deepEqual(first.objects.map((entry) => entry.name), [`${folder}/a.png`, `${folder}/b.png`])
  assert.equal(first.hasNext, true)
  const second = ok(
    await avatars.listV2({ prefix: `${folder}/`, limit: 2, with_delimiter: true, cursor: first.nextCursor }),
  )
  assert.deepEqual(second.folders.map((entry) => entry.name), [`${folder}/deep/`])
  assert.equal(second.hasNext, false)
})

test('remove, move and copy', async () => {
  const avatars = alice()
  const folder = folderOf('files')
  ok(await avatars.upload(`${folder}/move-me.png`, pngBlob()))
  assert.deepEqual(ok(await avatars.move(`${folder}/move-me.png`, `${folder}/moved.png`)), {
    message: 'Successfully moved',
  })
  assert.deepEqual(await bytesOf(ok(await avatars.download(`${folder}/moved.png`))), PNG)
  assertRefused(await avatars.download(`${folder}/move-me.png`), '404', 'NoSuchKey', 'Object not found')
  assert.deepEqual(ok(await avatars.copy(`${folder}/moved.png`, `${folder}/copied.png`)), {
    path: `avatars/${folder}/copied.png`,
  })
  assert.deepEqual(await bytesOf(ok(await avatars.download(`${folder}/copied.png`))), PNG)
  const paths = [`${folder}/moved.png`, `${folder}/copied.png`, `${folder}/never.png`]
  const removed = ok(await avatars.remove(paths))
  assert.deepEqual(removed.map((entry) => entry.name).sort(), [`${folder}/copied.png`, `${folder}/moved.png`])
  assert.deepEqual(ok(await avatars.list(folder)), [])
})

test('a signed URL serves the object to anyone who has it; `download` makes it an attachment', async () => {
  const avatars = alice()
  const folder = folderOf('signed')
  ok(await avatars.upload(`${folder}/signed.png`, pngBlob()))
  const { signedUrl } = ok(await avatars.createSignedUrl(`${folder}/signed.png`, 60))
  assert.ok(signedUrl.startsWith(`${API_URL}/storage/v1/object/sign/avatars/${folder}/signed.png?token=`))
  const response = await fetch(signedUrl)
  assert.equal(response.status, 200)
  assert.equal(response.headers.get('content-type'), 'image/png')
  assert.equal(response.headers.get('content-disposition'), null)
  assert.deepEqual(new Uint8Array(await response.arrayBuffer()), PNG)

  const named = ok(await avatars.createSignedUrl(`${folder}/signed.png`, 60, { download: 'avatar.png' }))
  const attachment = await fetch(named.signedUrl)
  assert.match(attachment.headers.get('content-disposition'), /^attachment; filename=avatar\.png/)
  assert.deepEqual(new Uint8Array(await attachment.arrayBuffer()), PNG)
  const unnamed = ok(await avatars.createSignedUrl(`${folder}/signed.png`, 60, { download: true }))
  assert.equal((await fetch(unnamed.signedUrl)).headers.get('content-disposition'), 'attachment;')

  const missing = await avatars.createSignedUrl(`${folder}/missing.png`, 60)
  assertRefused(missing, '404', 'NoSuchKey', 'Object not found')
})

test('createSignedUrls signs the objects that exist and says which do not', async () => {
  const avatars = alice()
  const folder = folderOf('signed-many')
  ok(await avatars.upload(`${folder}/one.png`, pngBlob()))
  const paths = [`${folder}/one.png`, `${folder}/missing.png`]
  const [one, missing] = ok(await avatars.createSignedUrls(paths, 60))
  assert.equal(one.error, null)
  assert.equal(one.path, `${folder}/one.png`)
  assert.deepEqual(new Uint8Array(await (await fetch(one.signedUrl)).arrayBuffer()), PNG)
  assert.equal(missing.path, `${folder}/missing.png`)
  assert.equal(missing.signedUrl, null)
  assert.equal(typeof missing.error, 'string')
})

test('a signed upload URL lets a client without a session upload that one path', async () => {
  const avatars = alice()
  const path = `${folderOf('by-token')}/upload.png`
  const signed = ok(await avatars.createSignedUploadUrl(path))
  assert.equal(signed.path, path)
  assert.ok(signed.signedUrl.startsWith(`${API_URL}/storage/v1/object/upload/sign/avatars/${path}?token=`))
  const anon = storageAs(null).from('avatars')
  assert.deepEqual(ok(await anon.uploadToSignedUrl(path, signed.token, pngBlob())), {
    path,
    fullPath: `avatars/${path}`,
  })
  assert.deepEqual(await bytesOf(ok(await avatars.download(path))), PNG)
  const elsewhere = await anon.uploadToSignedUrl(`${path}.other.png`, signed.token, pngBlob())
  assertRefused(elsewhere, '400', 'InvalidSignature', 'Invalid signature')
  // Bob may not sign an upload into alice's folder: his insert there would not pass.
  const bob = storageAs(BOB_TOKEN).from('avatars')
  assertRefused(
    await bob.createSignedUploadUrl(`${path}.bob.png`),
    '403',
    'AccessDenied',
    'new row violates row-level security policy',
  )
})

test('the public URL of a public bucket is fetched with no token', async () => {
  const avatars = alice()
  const path = `${folderOf('public')}/face.png`
  ok(await avatars.upload(path, pngBlob()))
  const { publicUrl } = avatars.getPublicUrl(path).data
  assert.equal(publicUrl, `${API_URL}/storage/v1/object/public/avatars/${path}`)
  const response = await fetch(publicUrl)
  assert.equal(response.status, 200)
  assert.equal(response.headers.get('content-type'), 'image/png')
  assert.deepEqual(new Uint8Array(await response.arrayBuffer()), PNG)
  const download = await fetch(avatars.getPublicUrl(path, { download: 'face.png' }).data.publicUrl)
  assert.match(download.headers.get('content-disposition'), /^attachment; filename=face\.png/)
})

test('the service key lists the buckets', async () => {
  const service = storageAs(null, SERVICE_KEY)
  const buckets = ok(await service.listBuckets())
  const byId = Object.fromEntries(buckets.map((bucket) => [bucket.id, bucket]))
  for (const id of ['avatars', 'company-logos']) {
    assert.equal(byId[id]?.public, true, id)
    assert.equal(byId[id].file_size_limit, LIMIT, id)
    assert.ok(byId[id].allowed_mime_types.includes('image/png'), id)
  }
  assert.equal(ok(await service.getBucket('avatars')).name, 'avatars')
})

test("an upload into another user's folder is refused", async () => {
  const avatars = alice()
  const refused = await avatars.upload(`${BOB_ID}/from-alice.png`, pngBlob())
  assertRefused(refused, '403', 'AccessDenied', 'new row violates row-level security policy')
  const options = { contentType: 'image/png', upsert: true }
  const raw = await avatars.upload(`${BOB_ID}/from-alice.png`, PNG, options)
  assertRefused(raw, '403', 'AccessDenied', 'new row violates row-level security policy')
  assert.equal((await storageAs(BOB_TOKEN).from('avatars').exists(`${BOB_ID}/from-alice.png`)).data, false)
})

test('an object over the bucket limit is refused, raw or multipart; one at the limit is stored', async () => {
  const avatars = alice()
  const folder = folderOf('limit')
  ok(await avatars.upload(`${folder}/max.png`, pngBlob(new Uint8Array(LIMIT))))
  const over = new Uint8Array(LIMIT + 1)
  const message = 'The object exceeded the maximum allowed size'
  const raw = await avatars.upload(`${folder}/raw.png`, over, { contentType: 'image/png' })
  assertRefused(raw, '413', 'EntityTooLarge', message)
  assertRefused(await avatars.upload(`${folder}/form.png`, pngBlob(over)), '413', 'EntityTooLarge', message)
  assert.deepEqual(ok(await avatars.list(folder)).map((entry) => entry.name), ['max.png'])
})

test('a type the bucket does not allow is refused', async () => {
  const avatars = alice()
  const folder = folderOf('types')
  const html = new Blob(['<p>hi</p>'], { type: 'text/html' })
  const message = 'mime type text/html is not supported'
  assertRefused(await avatars.upload(`${folder}/page.html`, html), '415', 'InvalidMimeType', message)
  const raw = await avatars.upload(`${folder}/page.html`, '<p>hi</p>', { contentType: 'text/html' })
  assertRefused(raw, '415', 'InvalidMimeType', message)
  assert.deepEqual(ok(await avatars.list(folder)), [])
})
