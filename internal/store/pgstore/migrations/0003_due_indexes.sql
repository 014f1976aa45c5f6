-- courier's PostgreSQL schema, version 3: indexes for the work every Lease
-- does first (due.go). Promoting delayed messages and dropping those past
-- their queue's retention each filtered the whole backlog through the
-- (queue, ready_at) index, since every waiting message is "ready_at <= now":
-- a lease cost time in proportion to the messages waiting (7 ms each at
-- 50,000). With these, each looks at the rows it acts on and no others.

CREATE INDEX courier_messages_delayed ON courier_messages (queue, ready_at) WHERE delayed AND lease IS NULL;
CREATE INDEX courier_messages_retain ON courier_messages (queue, sent_at) WHERE lease IS NULL;
