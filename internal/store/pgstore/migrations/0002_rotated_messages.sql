-- courier's PostgreSQL schema, version 2: courier_messages becomes a table
-- partitioned by a small `part` column, so that the space of acknowledged
-- messages is given back by TRUNCATE instead of left to vacuum. Why, and
-- how the partitions rotate, is explained in rotate.go.
--
--   part 0..3  a ring: sends go to the current one (courier_rotation); the
--              leader rotates, and truncates a non-current one once it
--              holds no live row.
--   part 4     the long-lived partition: rows still alive two rotations
--              after they were sent (a backlog, long delays, long leases)
--              are moved here once, and vacuumed as before.
--
-- The rows of version 1 are copied into the long-lived partition: their age
-- is unknown, and there they are never moved again. The copy holds the old
-- table locked; its time grows with the number of messages stored.

-- Which ring partition sends go to, since when, and the last message number
-- taken at that moment (so the leader knows how many were sent since).
CREATE TABLE courier_rotation (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    current     smallint NOT NULL CHECK (current BETWEEN 0 AND 3),
    rotated_at  timestamptz NOT NULL,
    first_id    bigint NOT NULL
);
INSERT INTO courier_rotation (current, rotated_at, first_id)
    SELECT 0, now(), CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM courier_message_seq;

-- The default of `part`, for inserts that do not name it (courier names it;
-- a node of version 1 still running during a rolling upgrade does not).
CREATE FUNCTION courier_current_part() RETURNS smallint LANGUAGE sql STABLE
    AS 'SELECT current FROM courier_rotation';

ALTER TABLE courier_messages RENAME TO courier_messages_v1;
ALTER TABLE courier_messages_v1 RENAME CONSTRAINT courier_messages_pkey TO courier_messages_v1_pkey;
DROP INDEX courier_messages_waiting, courier_messages_inflight, courier_messages_due,
    courier_messages_groups, courier_messages_dead;

-- The columns of version 1, after `part`. Each partition has its own
-- primary key on id: a key on the parent would have to include part, and
-- then the planner would not know that id alone finds one row; a partition
-- analyzed while nearly empty (as truncated ones are) would then be read
-- whole to find a few ids. Ids are unique across partitions because they
-- come from one sequence and a row changes partition only by moving.
CREATE TABLE courier_messages (
    part        smallint NOT NULL DEFAULT courier_current_part(),
    id          bigint NOT NULL,
    queue       text NOT NULL,
    body        bytea NOT NULL,
    kind        smallint NOT NULL,
    headers     jsonb,
    priority    smallint NOT NULL,
    grp         text,
    sent_at     timestamptz NOT NULL,
    ready_at    timestamptz NOT NULL,
    delayed     boolean NOT NULL,
    attempt     integer NOT NULL DEFAULT 0,
    lease       bigint,
    lease_exp   timestamptz,
    dead_from   text,
    is_task     boolean NOT NULL
) PARTITION BY LIST (part);

-- Storage parameters are per partition. A ring partition is still vacuumed
-- while it is current, so it grows less between truncations; the fill
-- factor keeps a lease's update on its page.
CREATE TABLE courier_messages_0 PARTITION OF courier_messages (PRIMARY KEY (id)) FOR VALUES IN (0)
    WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_cost_delay = 0);
CREATE TABLE courier_messages_1 PARTITION OF courier_messages (PRIMARY KEY (id)) FOR VALUES IN (1)
    WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_cost_delay = 0);
CREATE TABLE courier_messages_2 PARTITION OF courier_messages (PRIMARY KEY (id)) FOR VALUES IN (2)
    WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_cost_delay = 0);
CREATE TABLE courier_messages_3 PARTITION OF courier_messages (PRIMARY KEY (id)) FOR VALUES IN (3)
    WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_cost_delay = 0);
CREATE TABLE courier_messages_long PARTITION OF courier_messages (PRIMARY KEY (id)) FOR VALUES IN (4)
    WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_cost_delay = 0);

INSERT INTO courier_messages (part, id, queue, body, kind, headers, priority, grp, sent_at, ready_at,
        delayed, attempt, lease, lease_exp, dead_from, is_task)
    SELECT 4, id, queue, body, kind, headers, priority, grp, sent_at, ready_at,
        delayed, attempt, lease, lease_exp, dead_from, is_task
    FROM courier_messages_v1;
DROP TABLE courier_messages_v1;

-- The indexes of version 1, now on every partition (built after the copy).
CREATE INDEX courier_messages_waiting ON courier_messages (queue, priority DESC, id) WHERE lease IS NULL;
CREATE INDEX courier_messages_inflight ON courier_messages (queue, lease_exp) WHERE lease IS NOT NULL;
CREATE INDEX courier_messages_due ON courier_messages (queue, ready_at) WHERE lease IS NULL;
CREATE INDEX courier_messages_groups ON courier_messages (queue, grp, id) WHERE grp IS NOT NULL;
CREATE INDEX courier_messages_dead ON courier_messages (dead_from) WHERE dead_from IS NOT NULL;
