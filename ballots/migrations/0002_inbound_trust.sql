-- 0002: inbound trust. Bounces recorded on the outbox row they answer and
-- counted on the member; automatic answers limited per sender, reason and
-- day.

ALTER TABLE outbox
    ADD COLUMN bounce_status     text NOT NULL DEFAULT '',   -- RFC 3463 status of the last bounce, e.g. 5.1.1
    ADD COLUMN bounce_diagnostic text NOT NULL DEFAULT '',   -- the remote server's words
    ADD COLUMN bounce_hard       boolean NOT NULL DEFAULT false,
    ADD COLUMN soft_bounces      int NOT NULL DEFAULT 0,
    ADD COLUMN bounced_at        timestamptz,
    ADD COLUMN bounce_inbound_id bigint REFERENCES inbound_messages(id);

ALTER TABLE members
    ADD COLUMN soft_bounces int NOT NULL DEFAULT 0,
    ADD COLUMN bounced_at   timestamptz;

-- One automatic answer per sender, reason (outbox kind) and UTC day: the
-- insert that conflicts is an answer not sent.
CREATE TABLE answer_limits (
    sender      text NOT NULL,
    reason      text NOT NULL,
    day         date NOT NULL,
    inbound_id  bigint REFERENCES inbound_messages(id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sender, reason, day)
);
