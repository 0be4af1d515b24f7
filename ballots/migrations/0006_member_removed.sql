-- 0006: a member dropped from the organisation's list by an import --sync
-- is kept (their ballots and votes stay on record) but marked removed: no
-- more ballots.
ALTER TABLE members DROP CONSTRAINT members_status_check;
ALTER TABLE members ADD CONSTRAINT members_status_check
    CHECK (status IN ('active', 'pending', 'unsubscribed', 'bounced', 'removed'));
