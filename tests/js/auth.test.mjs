// The local stack's /auth/v1 through supabase-js from npm (its auth-js), as a frontend or a Node script
// signs up and in, then reads its data through /rest/v1 and calls a function with the session.
// Every test makes the users it needs (signUp, or admin.createUser) but the one whose hash the driver
// wrote as GoTrue does; tests run in order, none depends on another's state.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { ANON_KEY, API_URL, AuthApiError, SERVICE_KEY, createClient, fromDriver } from './stack.mjs'

// SHORT_API_URL: the same stack and database, its config.toml's jwt_expiry and reuse interval short.
const { KNOWN_EMAIL, KNOWN_PASSWORD, SHORT_API_URL, SHORT_JWT_EXPIRY, SHORT_REUSE_INTERVAL } = fromDriver(
  'KNOWN_EMAIL',
  'KNOWN_PASSWORD',
  'SHORT_API_URL',
  'SHORT_JWT_EXPIRY',
  'SHORT_REUSE_INTERVAL',
)
const PASSWORD = 'correct horse battery staple'

/** A storage of the client's own, which two clients may share as two loads of one page share one. */
function memoryStorage() {
  const items = new Map()
  return {
    getItem: (key) => items.get(key) ?? null,
    setItem: (key, value) => void items.set(key, value),
    removeItem: (key) => void items.delete(key),
  }
}

/** A client as a frontend makes it: the anon key, a persisted session, refreshed by hand unless told. */
function clientOf({ url = API_URL, storage = memoryStorage(), autoRefreshToken = false } = {}) {
  return createClient(url, ANON_KEY, {
    auth: { storage, autoRefreshToken, persistSession: true, detectSessionInUrl: false },
  })
}

const service = () =>
  createClient(API_URL, SERVICE_KEY, { auth: { persistSession: false, autoRefreshToken: false } }).auth
    .admin

const newEmail = (name) => `${name}-${crypto.randomUUID().slice(0, 8)}@example.com`

function ok({ data, error }) {
  assert.equal(error, null, `unexpected error: ${error && `${error.name} ${error.status} ${error.code}`}`)
  return data
}

/** An error supabase-js built from GoTrue's answer, with the code it read from the 2024-01-01 shape. */
function refused({ error }, status, code) {
  assert.ok(error instanceof AuthApiError, `expected an AuthApiError, got ${error}`)
  assert.deepEqual({ status: error.status, code: error.code }, { status, code })
  return error
}

/** What a session that was ended answers: GoTrue's 403 session_not_found, which auth-js turns into this. */
function sessionMissing({ data, error }) {
  assert.equal(data.user, null)
  assert.equal(error?.name, 'AuthSessionMissingError', `expected a missing session, got ${error}`)
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const claimsOf = (token) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString())

async function signedIn(email = KNOWN_EMAIL, password = KNOWN_PASSWORD, options = {}) {
  const client = clientOf(options)
  ok(await client.auth.signInWithPassword({ email, password }))
  return client
}

test('signUp returns a session and the user as GoTrue shows it; the address is then taken', async () => {
  const client = clientOf()
  const email = newEmail('Sign.Up')
  const { session, user } = ok(
    await client.auth.signUp({ email, password: PASSWORD, options: { data: { full_name: 'Sign Up' } } }),
  )
  assert.ok(session, 'with confirmations off, signUp signs in')
  assert.equal(session.token_type, 'bearer')
  assert.ok(Math.abs(session.expires_in - 3600) <= 1, `expires_in ${session.expires_in}`) // jwt_expiry
  assert.deepEqual(session.user, user)
  assert.equal(user.email, email.toLowerCase())
  assert.ok(user.email_confirmed_at)
  assert.equal(user.user_metadata.full_name, 'Sign Up')
  assert.deepEqual(user.app_metadata, { provider: 'email', providers: ['email'] })
  assert.deepEqual(
    user.identities.map((identity) => [identity.provider, identity.id, identity.identity_data.email]),
    [['email', user.id, email.toLowerCase()]],
  )
  const claims = claimsOf(session.access_token)
  assert.deepEqual(
    { sub: claims.sub, email: claims.email, role: claims.role, aud: claims.aud, aal: claims.aal },
    { sub: user.id, email: user.email, role: 'authenticated', aud: 'authenticated', aal: 'aal1' },
  )
  assert.equal(claims.exp - claims.iat, 3600)
  assert.deepEqual(claims.user_roles, []) // our custom access token hook's claim
  assert.deepEqual(ok(await client.auth.getSession()).session, session)

  refused(await clientOf().auth.signUp({ email, password: PASSWORD }), 422, 'user_already_exists')
})

test('signInWithPassword: a hash GoTrue wrote; a wrong password and an unknown email alike', async () => {
  const client = clientOf()
  const { session, user } = ok(
    await client.auth.signInWithPassword({ email: KNOWN_EMAIL.toUpperCase(), password: KNOWN_PASSWORD }),
  )
  assert.equal(user.email, KNOWN_EMAIL)
  assert.equal(session.user.id, user.id)
  assert.ok(user.last_sign_in_at)
  const wrong = refused(
    await client.auth.signInWithPassword({ email: KNOWN_EMAIL, password: `${KNOWN_PASSWORD}!` }),
    400,
    'invalid_credentials',
  )
  const unknown = refused(
    await client.auth.signInWithPassword({ email: newEmail('nobody'), password: KNOWN_PASSWORD }),
    400,
    'invalid_credentials',
  )
  assert.equal(wrong.message, 'Invalid login credentials')
  assert.equal(unknown.message, wrong.message)
  // A failed sign-in leaves the session there was.
  assert.equal(ok(await client.auth.getSession()).session.access_token, session.access_token)
})

test('getSession, getUser, updateUser (data merged) and refreshSession on one session', async () => {
  const client = await signedIn()
  const { session } = ok(await client.auth.getSession())
  const { user } = ok(await client.auth.getUser())
  assert.equal(user.id, session.user.id)
  assert.equal(user.email, KNOWN_EMAIL)

  const headline = `CFO ${crypto.randomUUID().slice(0, 4)}`
  const updated = ok(await client.auth.updateUser({ data: { headline } })).user
  assert.equal(updated.user_metadata.headline, headline)
  assert.equal(updated.user_metadata.full_name, 'Known User') // merged, not replaced
  assert.equal(ok(await client.auth.getSession()).session.user.user_metadata.headline, headline)

  // Within the same second the access token may come out the same (same claims); the refresh token rotates.
  const refreshed = ok(await client.auth.refreshSession()).session
  assert.notEqual(refreshed.refresh_token, session.refresh_token)
  assert.equal(claimsOf(refreshed.access_token).session_id, claimsOf(session.access_token).session_id)
  assert.equal(claimsOf(refreshed.access_token).user_metadata.headline, headline)
  assert.equal(ok(await client.auth.getUser(refreshed.access_token)).user.id, user.id)
  assert.equal(ok(await client.auth.getSession()).session.refresh_token, refreshed.refresh_token)
  ok(await client.auth.updateUser({ data: { headline: null } })) // GoTrue removes a key given as null
  assert.equal('headline' in ok(await client.auth.getUser()).user.user_metadata, false)
})

test('signOut: `others` ends the other sessions, `local` this one, `global` every one', async () => {
  const email = newEmail('sessions')
  ok(await service().createUser({ email, password: PASSWORD, email_confirm: true }))
  const first = await signedIn(email, PASSWORD)
  const second = await signedIn(email, PASSWORD)
  const third = await signedIn(email, PASSWORD)
  const secondSession = ok(await second.auth.getSession()).session
  const thirdSession = ok(await third.auth.getSession()).session

  ok(await first.auth.signOut({ scope: 'others' }))
  assert.ok(ok(await first.auth.getUser()).user, 'the session that signed the others out lives on')
  sessionMissing(await second.auth.getUser(secondSession.access_token))
  refused(
    await third.auth.refreshSession({ refresh_token: thirdSession.refresh_token }),
    400,
    'refresh_token_not_found',
  )

  const firstSession = ok(await first.auth.getSession()).session
  ok(await first.auth.signOut({ scope: 'local' }))
  assert.equal(ok(await first.auth.getSession()).session, null)
  sessionMissing(await first.auth.getUser(firstSession.access_token))

  const fourth = await signedIn(email, PASSWORD)
  const fifth = await signedIn(email, PASSWORD)
  const fifthSession = ok(await fifth.auth.getSession()).session
  ok(await fourth.auth.signOut()) // global, supabase-js's default
  assert.equal(ok(await fourth.auth.getSession()).session, null)
  sessionMissing(await fifth.auth.getUser(fifthSession.access_token))
  refused(
    await fifth.auth.refreshSession({ refresh_token: fifthSession.refresh_token }),
    400,
    'refresh_token_not_found',
  )
})

test('admin with the service key: createUser, listUsers in pages, deleteUser; not the anon key', async () => {
  const admin = service()
  const email = newEmail('admin-made')
  const { user } = ok(
    await admin.createUser({
      email,
      password: PASSWORD,
      email_confirm: true,
      user_metadata: { full_name: 'Made By Admin' },
    }),
  )
  assert.equal(user.email, email)
  assert.ok(user.email_confirmed_at)
  assert.equal(user.user_metadata.full_name, 'Made By Admin')
  const client = await signedIn(email, PASSWORD)
  assert.equal(ok(await client.auth.getUser()).user.id, user.id)

  // auth-js reads the paging from GoTrue's X-Total-Count and Link headers.
  const page = ok(await admin.listUsers({ page: 1, perPage: 1 }))
  assert.equal(page.users.length, 1)
  assert.ok(page.total >= 2, `total ${page.total}`)
  assert.equal(page.lastPage, page.total)
  assert.equal(page.nextPage, 2)
  const all = ok(await admin.listUsers({ perPage: 1000 }))
  assert.equal(all.users.length, page.total)
  assert.equal(all.nextPage, null)
  assert.ok(all.users.some((listed) => listed.id === user.id))
  assert.equal(ok(await admin.getUserById(user.id)).user.email, email)

  const anon = createClient(API_URL, ANON_KEY, { auth: { persistSession: false } }).auth.admin
  refused(await anon.listUsers(), 403, 'not_admin')
  refused(await anon.deleteUser(user.id), 403, 'not_admin')

  ok(await admin.deleteUser(user.id))
  refused(await admin.getUserById(user.id), 404, 'user_not_found')
  refused(await clientOf().auth.signInWithPassword({ email, password: PASSWORD }), 400, 'invalid_credentials')
})

test("the session in from('profiles'), rpc('whoami') and functions.invoke('whoami')", async () => {
  const client = clientOf()
  const email = newEmail('reader')
  const { user } = ok(
    await client.auth.signUp({ email, password: PASSWORD, options: { data: { full_name: 'Data Reader' } } }),
  )
  // The profile trigger ran on sign-up, with the name from the sign-up's data.
  const profiles = ok(await client.from('profiles').select('id, full_name').eq('id', user.id))
  assert.deepEqual(profiles, [{ id: user.id, full_name: 'Data Reader' }])
  const expected = {
    id: user.id,
    email,
    profile: { full_name: 'Data Reader', avatar_url: null },
    roles: [],
    companies: [],
  }
  assert.deepEqual(ok(await client.rpc('whoami')), [expected])
  assert.deepEqual(ok(await client.functions.invoke('whoami')), expected)

  ok(await client.auth.signOut())
  // Signed out, the client sends the anon key again, which may not read profiles nor call whoami.
  const anonymous = await client.from('profiles').select('id').eq('id', user.id)
  assert.equal(anonymous.error?.code, '42501')
  const { error } = await client.functions.invoke('whoami')
  assert.equal(error?.context?.status, 403)
  assert.equal((await error.context.json()).error, 'insufficient_role')
})

test('onAuthStateChange: INITIAL_SESSION, SIGNED_IN, TOKEN_REFRESHED, USER_UPDATED, SIGNED_OUT', async () => {
  const client = clientOf()
  const events = []
  const initial = new Promise((resolve) => {
    client.auth.onAuthStateChange((event, session) => {
      events.push({ event, session })
      if (event === 'INITIAL_SESSION') resolve()
    })
  })
  await initial
  const email = newEmail('events')
  const signedUp = ok(await client.auth.signUp({ email, password: PASSWORD })).session
  const refreshed = ok(await client.auth.refreshSession()).session
  ok(await client.auth.updateUser({ data: { step: 'updated' } }))
  ok(await client.auth.signOut())

  assert.deepEqual(
    events.map(({ event }) => event),
    ['INITIAL_SESSION', 'SIGNED_IN', 'TOKEN_REFRESHED', 'USER_UPDATED', 'SIGNED_OUT'],
  )
  const [initialSession, signedInSession, tokenRefreshed, userUpdated, signedOut] = events.map(
    ({ session }) => session,
  )
  assert.equal(initialSession, null)
  assert.equal(signedInSession.access_token, signedUp.access_token)
  assert.equal(tokenRefreshed.refresh_token, refreshed.refresh_token)
  assert.notEqual(tokenRefreshed.refresh_token, signedUp.refresh_token)
  assert.equal(userUpdated.user.user_metadata.step, 'updated')
  assert.equal(signedOut, null)
})

test('autoRefreshToken: a session about to expire is refreshed by itself; the new token works', async () => {
  // Signed in on a stack whose jwt_expiry is short, then loaded by a client that refreshes by itself, as
  // the next page load or a restarted app would. auth-js's ticker (a tick every 30 s, the first at once)
  // refreshes a session that expires within 3 ticks; its 90 s margin (EXPIRY_MARGIN_MS) is not reached
  // yet, so neither loading the session nor getSession() refreshes it: only the ticker does.
  const expiry = Number(SHORT_JWT_EXPIRY)
  assert.ok(expiry > 90 && expiry < 120, `jwt_expiry ${expiry} must fall between auth-js's margins`)
  const storage = memoryStorage()
  const first = await signedIn(KNOWN_EMAIL, KNOWN_PASSWORD, { url: SHORT_API_URL, storage })
  const before = ok(await first.auth.getSession()).session
  assert.ok(Math.abs(before.expires_in - expiry) <= 1, `expires_in ${before.expires_in}`)
  const claims = claimsOf(before.access_token)
  assert.equal(claims.exp - claims.iat, expiry)
  await sleep(1100) // so that the refreshed token's second, and so its expiry, is a later one

  const client = clientOf({ url: SHORT_API_URL, storage, autoRefreshToken: true })
  try {
    const refreshed = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no TOKEN_REFRESHED within 10 s')), 10_000)
      client.auth.onAuthStateChange((event, session) => {
        if (event === 'TOKEN_REFRESHED') {
          clearTimeout(timer)
          resolve(session)
        }
      })
    })
    assert.notEqual(refreshed.refresh_token, before.refresh_token)
    assert.ok(refreshed.expires_at > before.expires_at)
    assert.notEqual(refreshed.access_token, before.access_token)
    assert.equal(claimsOf(refreshed.access_token).session_id, claims.session_id)
    assert.equal(ok(await client.auth.getSession()).session.access_token, refreshed.access_token)
    assert.equal(ok(await client.auth.getUser()).user.email, KNOWN_EMAIL)
    assert.equal(ok(await client.rpc('whoami'))[0].email, KNOWN_EMAIL)
    assert.equal(ok(await client.functions.invoke('whoami')).email, KNOWN_EMAIL)
  } finally {
    await client.auth.stopAutoRefresh()
  }
})

test('a refresh whose answer was lost is answered again, even after the reuse interval', async () => {
  // auth-js retries a refresh that failed on the network for up to 30 s, with the token it sent: the
  // server may have rotated it already. GoTrue (tokens.RefreshTokenGrant) then hands back the session's
  // active token as long as the spent one is its parent, at any time; only a token further back, after
  // refresh_token_reuse_interval, is a replay (refresh_token_already_used).
  const wait = () => sleep(Number(SHORT_REUSE_INTERVAL) * 1000 + 500)
  const client = await signedIn(KNOWN_EMAIL, KNOWN_PASSWORD, { url: SHORT_API_URL })
  const first = ok(await client.auth.getSession()).session.refresh_token
  const second = ok(await client.auth.refreshSession()).session.refresh_token // the answer that was lost
  assert.notEqual(second, first)
  const retry = () => clientOf({ url: SHORT_API_URL }).auth.refreshSession({ refresh_token: first })
  assert.equal(ok(await retry()).session.refresh_token, second, 'within the reuse interval')
  await wait()
  assert.equal(ok(await retry()).session.refresh_token, second, 'after the reuse interval')

  const third = ok(await client.auth.refreshSession()).session.refresh_token
  assert.notEqual(third, second)
  await wait()
  refused(await retry(), 400, 'refresh_token_already_used')
})
