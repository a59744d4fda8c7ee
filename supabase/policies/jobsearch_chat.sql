-- =====================================================================================================
-- Job search assistant policies: careers chat conversations and messages
-- =====================================================================================================
-- Re-applied after every migration run. A chat is its owner's alone: nobody else reads it, platform
-- admins included (it holds their career plans and resume). Anonymous visitors have no grants at all.

-- chat_conversations -----------------------------------------------------------------------------------

create policy "Users see their own conversations"
  on public.chat_conversations for select to authenticated
  using (user_id = (select auth.uid()));

-- A frontend may start a conversation itself (to name it before the first message); the chat function
-- starts one when a message comes without. Only the title is the user's to write (column grants).
create policy "Users start conversations of their own"
  on public.chat_conversations for insert to authenticated
  with check (user_id = (select auth.uid()));

create policy "Users rename their own conversations"
  on public.chat_conversations for update to authenticated
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid()));

-- Deleting a conversation deletes its messages (the foreign key cascades): the one way a user removes
-- what they said.
create policy "Users delete their own conversations"
  on public.chat_conversations for delete to authenticated
  using (user_id = (select auth.uid()));

-- chat_messages ----------------------------------------------------------------------------------------

create policy "Users read the messages of their own conversations"
  on public.chat_messages for select to authenticated
  using (user_id = (select auth.uid()));

-- No insert, update or delete for users (no grants either): every message is written by the chat
-- function, which stores the user's message with the answer it streams, so the history sent back to the
-- provider is what was said and answered. A user's own inserts could forge assistant answers or leave
-- questions no answer follows; edits would rewrite what the assistant answered to. Single messages are
-- not deleted: a conversation is, whole.
