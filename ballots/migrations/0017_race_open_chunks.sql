-- 0017 (issue 23): a race open commits chunk by chunk, so that its first
-- ballots go out while the rest are made. The race is open from its first
-- chunk; its open step (race_steps) is recorded with the last, and a race
-- that is open without it is still opening (an open that stopped resumes
-- from the last member with a ballot). Every race opened before this
-- opened in one transaction: it gets its open step if it lacks one.
INSERT INTO race_steps (race_id, step, actor, done_at)
SELECT id, 'open', 'manual', coalesce(opened_at, now()) FROM races WHERE status <> 'draft'
ON CONFLICT DO NOTHING;
