// The live stack the driver (tests/test_local_storage_js.py) started, and supabase-js clients of it.
//
// supabase-js is the copy pinned in tools/package.json (and tools/package-lock.json, installed by
// `make install`), the one whose browser bundle the Chromium tests load: one pin, not a second package.json
// and lock here.
// ES modules ignore NODE_PATH and look for node_modules only above the importing file, so it is imported
// by its path; its own imports (storage-js, postgrest-js) then resolve inside tools/node_modules.
import { createClient, StorageApiError } from '../../tools/node_modules/@supabase/supabase-js/dist/index.mjs'

const NAMES = ['API_URL', 'ANON_KEY', 'SERVICE_KEY', 'ALICE_ID', 'ALICE_TOKEN', 'BOB_ID', 'BOB_TOKEN']
const missing = NAMES.filter((name) => !process.env[name])
if (missing.length) {
  throw new Error(`${missing.join(', ')} not set: run these through pytest tests/test_local_storage_js.py`)
}
export const { API_URL, ANON_KEY, SERVICE_KEY, ALICE_ID, ALICE_TOKEN, BOB_ID, BOB_TOKEN } = process.env
export { StorageApiError }

export const LIMIT = 2 * 1024 * 1024 // the avatars bucket's file_size_limit
// A PNG signature and some bytes: the server stores what it is given and checks only the declared type.
export const PNG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...Array(56).keys()])

/** A storage client as the frontend makes it: the anon key, and the user's access token when signed in. */
export function storageAs(token, key = ANON_KEY) {
  const options = { auth: { persistSession: false, autoRefreshToken: false } }
  if (token) options.accessToken = async () => token
  return createClient(API_URL, key, options).storage
}

export const alice = () => storageAs(ALICE_TOKEN).from('avatars')

/** A folder of alice's own for one test, so tests share no object and may run in any order. */
export const folderOf = (name) => `${ALICE_ID}/${name}-${crypto.randomUUID().slice(0, 8)}`

export async function bytesOf(blob) {
  return new Uint8Array(await blob.arrayBuffer())
}
