// The careers chat through supabase-js from npm, as a frontend streams it: `functions.invoke('ai/chat')`
// hands back the Response of a text/event-stream, read event by event; the conversation is then read
// through PostgREST. The driver (tests/test_jobsearch_chat.py) makes the provider answer ANSWER, word by
// word, slowly enough that a reader can leave in the middle.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { ANON_KEY, API_URL, createClient, fromDriver } from './stack.mjs'

const { ANSWER, USER_TOKEN, OTHER_TOKEN } = fromDriver('ANSWER', 'USER_TOKEN', 'OTHER_TOKEN')

function clientAs(token) {
  return createClient(API_URL, ANON_KEY, {
    accessToken: async () => token,
    auth: { persistSession: false, autoRefreshToken: false },
  })
}

/** Server-Sent Events as the spec dispatches them (fields until a blank line), from a body stream. */
async function* events(reader) {
  let buffer = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buffer += value
    let end
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      let name = 'message'
      const data = []
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim()
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''))
      }
      if (data.length) yield { name, data: JSON.parse(data.join('\n')) }
    }
  }
}

async function ask(token, body) {
  const { data, error } = await clientAs(token).functions.invoke('ai/chat', { body })
  assert.equal(error, null, `unexpected error: ${error}`)
  assert.ok(data instanceof Response, 'invoke hands back the stream for text/event-stream')
  return data.body.pipeThrough(new TextDecoderStream()).getReader()
}

async function messagesOf(conversationId) {
  const { data, error } = await clientAs(USER_TOKEN)
    .from('chat_messages')
    .select('id, role, content, status')
    .eq('conversation_id', conversationId)
    .order('created_at')
  assert.equal(error, null)
  return data
}

test('invoke streams the answer event by event, and the conversation reads back', async () => {
  const seen = []
  for await (const event of events(await ask(USER_TOKEN, { message: 'Where next?' }))) seen.push(event)
  const deltas = seen.filter((event) => event.name === 'delta')
  assert.deepEqual(
    seen.map((event) => event.name),
    ['start', ...deltas.map(() => 'delta'), 'done'],
  )
  assert.equal(deltas.length, ANSWER.split(' ').length)
  assert.equal(deltas.map((event) => event.data.text).join(''), ANSWER)
  const { conversation_id, user_message_id, message_id } = seen[0].data
  assert.deepEqual(await messagesOf(conversation_id), [
    { id: user_message_id, role: 'user', content: 'Where next?', status: 'complete' },
    { id: message_id, role: 'assistant', content: ANSWER, status: 'complete' },
  ])
})

test('a reader that cancels mid-answer leaves the answer stored as incomplete', async () => {
  const reader = await ask(USER_TOKEN, { message: 'Tell me more' })
  const stream = events(reader)
  const start = (await stream.next()).value
  assert.equal(start.name, 'start')
  let received = ''
  for (let i = 0; i < 3; i++) received += (await stream.next()).value.data.text
  await reader.cancel() // the frontend's "stop" button

  // The server settles the answer once it sees the connection gone: poll until it has.
  const deadline = Date.now() + 10_000
  let answer
  do {
    await new Promise((resolve) => setTimeout(resolve, 50))
    const { data, error } = await clientAs(USER_TOKEN)
      .from('chat_messages')
      .select('status, content, completed_at')
      .eq('id', start.data.message_id)
      .single()
    assert.equal(error, null)
    answer = data
  } while (answer.completed_at === null && Date.now() < deadline)
  assert.equal(answer.status, 'incomplete')
  assert.ok(answer.content.startsWith(received), `${answer.content} should start with ${received}`)
  assert.ok(ANSWER.startsWith(answer.content) && answer.content !== ANSWER, answer.content)
})

test("someone else's conversation is a FunctionsHttpError with the chat's 404", async () => {
  const reader = await ask(USER_TOKEN, { message: 'Mine' })
  const start = (await events(reader).next()).value
  await reader.cancel()
  const { data, error } = await clientAs(OTHER_TOKEN).functions.invoke('ai/chat', {
    body: { message: 'Let me in', conversation_id: start.data.conversation_id },
  })
  assert.equal(data, null)
  assert.equal(error.name, 'FunctionsHttpError')
  assert.equal(error.context.status, 404)
  assert.deepEqual(await error.context.json(), {
    error: 'conversation_not_found',
    message: 'no conversation of yours has this id',
  })
})
