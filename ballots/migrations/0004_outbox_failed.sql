-- Failed outbox rows are listed by `ballotd outbox`; keep that cheap when
-- the outbox holds a hundred thousand sent rows.
CREATE INDEX outbox_failed ON outbox (id) WHERE status = 'failed';
