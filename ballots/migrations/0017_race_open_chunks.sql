-- 0017 (issue 23): a race open commits chunk by chunk, so that its first
-- ballots go out while the rest are made. The race is open from its first
-- chunk; its open step (race_steps) is recorded with the last, and a race
-- that is open without it is still opening (an open that stopped resumes
-- from the last member with a ballot). Every race opened before this
-- opened in one transaction: it gets its open step if it lacks one.
INSERT INTO race_steps (race_id, step, actor, done_at)
SELECT id, 'open', 'manual', coalesce(opened_at, now()) FROM races WHERE status <> 'draft'
ON CONFLICT DO NOTHING;

-- An outbox row's member and race are checked by no foreign key any more:
-- each check cost a lookup and a row lock per row enqueued, a tenth of what
-- PostgreSQL spends on a ballot from race open to sent, and every row is
-- written by a statement that reads the member and the race it names (a
-- race open, a close, an answer), which nothing deletes. The ballot's key
-- stays checked: a ballot row's token is made from it.
ALTER TABLE outbox DROP CONSTRAINT outbox_member_id_fkey, DROP CONSTRAINT outbox_race_id_fkey;
