-- courier's PostgreSQL schema, version 1. Tables live in the schema the
-- connection's search_path names first. Times are timestamptz (microseconds);
-- durations are bigint nanoseconds, as Go keeps them.

CREATE TABLE courier_queues (
    name                text PRIMARY KEY,
    visibility_ns       bigint NOT NULL,
    max_attempts        integer NOT NULL,
    backoff_initial_ns  bigint NOT NULL,
    backoff_max_ns      bigint NOT NULL,
    backoff_multiplier  double precision NOT NULL,
    backoff_jitter      double precision NOT NULL,
    dead_letter_queue   text NOT NULL,
    retention_ns        bigint NOT NULL,
    max_message_bytes   integer NOT NULL,
    dedup_window_ns     bigint NOT NULL,
    paused              boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL
);

-- Message ids and lease numbers. A lease number is never reused (fencing):
-- a sequence only moves forward, also across crashes and failovers.
CREATE SEQUENCE courier_message_seq;
CREATE SEQUENCE courier_lease_seq;

-- One row per message, whatever its state: ready (lease NULL, ready_at
-- passed), delayed (lease NULL, ready_at ahead), in flight (lease set).
CREATE TABLE courier_messages (
    id          bigint PRIMARY KEY,
    queue       text NOT NULL,
    body        bytea NOT NULL,
    kind        smallint NOT NULL,
    headers     jsonb,              -- NULL: none
    priority    smallint NOT NULL,
    grp         text,               -- NULL: no group
    sent_at     timestamptz NOT NULL,
    ready_at    timestamptz NOT NULL,
    delayed     boolean NOT NULL,   -- waiting for ready_at; cleared when promoted
    attempt     integer NOT NULL DEFAULT 0,
    lease       bigint,             -- the current lease number; NULL: not in flight
    lease_exp   timestamptz,
    dead_from   text,               -- the queue it was dead-lettered from
    is_task     boolean NOT NULL    -- the message of an unfinished task
) WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_cost_delay = 0);

-- What Lease scans: the waiting messages of a queue, best first.
CREATE INDEX courier_messages_waiting ON courier_messages (queue, priority DESC, id) WHERE lease IS NULL;
-- What the expiry of leases scans.
CREATE INDEX courier_messages_inflight ON courier_messages (queue, lease_exp) WHERE lease IS NOT NULL;
-- Delayed messages by due time (promotion, NextDue) and retention by send time.
CREATE INDEX courier_messages_due ON courier_messages (queue, ready_at) WHERE lease IS NULL;
CREATE INDEX courier_messages_groups ON courier_messages (queue, grp, id) WHERE grp IS NOT NULL;
CREATE INDEX courier_messages_dead ON courier_messages (dead_from) WHERE dead_from IS NOT NULL;

-- Dedup keys seen within their queue's window: the first message's id.
CREATE TABLE courier_dedup (
    queue  text NOT NULL,
    key    text NOT NULL,
    id     bigint NOT NULL,
    at     timestamptz NOT NULL,
    PRIMARY KEY (queue, key)
);

-- Sent and acked totals, spread over a few slots per queue so that
-- concurrent sends and acks do not queue up behind one row lock.
CREATE TABLE courier_counters (
    queue  text NOT NULL,
    slot   smallint NOT NULL,
    sent   bigint NOT NULL DEFAULT 0,
    acked  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, slot)
);

CREATE TABLE courier_tasks (
    id                bigint PRIMARY KEY,   -- its message's id
    queue             text NOT NULL,
    state             text NOT NULL,
    attempt           integer NOT NULL DEFAULT 0,
    progress          double precision NOT NULL DEFAULT 0,
    progress_message  text NOT NULL DEFAULT '',
    result            bytea,
    error             text NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    finished_at       timestamptz,
    expires_at        timestamptz,
    version           bigint NOT NULL,
    cancel_requested  boolean NOT NULL DEFAULT false,
    notify_url        text NOT NULL,
    notify_secret     text NOT NULL,
    reply_to          text NOT NULL,
    result_ttl_ns     bigint NOT NULL,
    hook_pending      boolean NOT NULL DEFAULT false,
    hook_next         timestamptz,
    hook_delivered    boolean NOT NULL DEFAULT false,
    hook_attempts     jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX courier_tasks_hooks ON courier_tasks (hook_next) WHERE hook_pending;
CREATE INDEX courier_tasks_expiry ON courier_tasks (expires_at) WHERE expires_at IS NOT NULL;
