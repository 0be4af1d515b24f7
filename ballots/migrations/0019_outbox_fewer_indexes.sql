-- 0019 (issue 23): fewer index entries per outbox row. Every write of a
-- row that is not a HOT update (each of a ballot mail's three: enqueued,
-- claimed, sent, as each changes the status the queue's partial indexes
-- are defined on) adds the new version to each index it qualifies for;
-- each entry costs about 3 µs of PostgreSQL.
--
-- The rows of a ballot were indexed twice: by ballot (outbox_ballot, every
-- kind) and, once per ballot, by kind and ballot (outbox_once_per_ballot
-- for the ballot mail and the announcement, outbox_once_per_ballot_reminder
-- for the reminder). One unique index does both: led by the ballot, so it
-- finds a ballot's rows of any kind (and of given kinds), with a third
-- column that is 0 for the kinds sent once per ballot, so that a second
-- such row conflicts, and the row's own id for every other kind (receipts
-- and resends, as many as there are), so that those never do. Every
-- insert that relies on it says ON CONFLICT DO NOTHING with no arbiter.
--
-- outbox_unsent (the oldest unsent row's age, for /healthz, /metrics and
-- status) held the rows in flight too, so a claim added each to it again;
-- it now holds the queued and deferred rows, and the few in flight are
-- found through outbox_leased.
CREATE UNIQUE INDEX outbox_by_ballot ON outbox
    (ballot_id, kind, (CASE WHEN kind IN ('ballot', 'announcement', 'reminder') THEN 0 ELSE id END))
    WHERE ballot_id IS NOT NULL;
DROP INDEX outbox_ballot, outbox_once_per_ballot, outbox_once_per_ballot_reminder;
DROP INDEX outbox_unsent;
CREATE INDEX outbox_unsent ON outbox (created_at) WHERE status IN ('queued', 'deferred');
