// The live stack a pytest driver started (tests/test_local_*_js.py, through tests/support.py's
// run_node_tests), and supabase-js to reach it.
//
// supabase-js is the copy pinned in tools/package.json (and tools/package-lock.json, installed by
// `make install`), the one whose browser bundle the Chromium tests load: one pin, not a second package.json
// and lock here.
// ES modules ignore NODE_PATH and look for node_modules only above the importing file, so it is imported
// by its path; its own imports (auth-js, storage-js, postgrest-js) then resolve inside tools/node_modules.
export {
  AuthApiError,
  StorageApiError,
  createClient,
} from '../../tools/node_modules/@supabase/supabase-js/dist/index.mjs'

/** The driver's variables, or an error saying where they come from when a file is run by hand. */
export function fromDriver(...names) {
  const missing = names.filter((name) => !process.env[name])
  if (missing.length) {
    throw new Error(`${missing.join(', ')} not set: run tests/js/ through pytest (tests/test_local_*_js.py)`)
  }
  return Object.fromEntries(names.map((name) => [name, process.env[name]]))
}

export const { API_URL, ANON_KEY, SERVICE_KEY } = fromDriver('API_URL', 'ANON_KEY', 'SERVICE_KEY')
