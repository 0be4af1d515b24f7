-- 0016 (issue 22): provider limits counted across replicas.
--
-- send_counts holds how many messages each relay was given per minute:
-- domain '' is the relay's total (its rolling 24-hour quota,
-- BALLOTD_SMTP_DAILY, and the recent pace of `ballotd status`), a domain
-- is counted only when that relay has an hourly or daily limit for it.
-- A claimer reserves its rows here before sending them (under an advisory
-- lock on the relay, so replicas cannot both take the last of a quota)
-- and gives back what it did not send; buckets older than two days are
-- pruned as it goes.
CREATE TABLE send_counts (
    relay  text        NOT NULL,
    domain text        NOT NULL,
    bucket timestamptz NOT NULL,
    n      integer     NOT NULL,
    PRIMARY KEY (relay, domain, bucket)
);

-- send_relays is each relay's limits as the last outbox to start had them,
-- in order of preference, so that status and the digest can say when a
-- wave will be out without the daemon's settings.
CREATE TABLE send_relays (
    relay      text             PRIMARY KEY,
    position   integer          NOT NULL,
    per_second double precision NOT NULL DEFAULT 0,
    daily      integer          NOT NULL DEFAULT 0,
    seen_at    timestamptz      NOT NULL DEFAULT now()
);
