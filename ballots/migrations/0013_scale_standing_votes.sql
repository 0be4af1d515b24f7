-- 0013: tally, status and the digest at a million ballots (issue 23).
--
-- standing_votes holds each ballot's standing vote, its latest (by cast_at,
-- then id): the one DESIGN.md's rule counts. A trigger on votes keeps it in
-- the statement that records the vote, whatever inserts it (one vote or a
-- batch), so a live tally is one pass over a narrow table instead of a
-- sort of the whole vote history. The history stays in votes; `ballotd
-- recount` still counts from it, so the two are checked against each
-- other.
CREATE TABLE standing_votes (
    ballot_id    bigint PRIMARY KEY,
    race_id      bigint NOT NULL,
    vote_id      bigint NOT NULL,
    choice       text NOT NULL,
    candidate_id bigint,
    cast_at      timestamptz NOT NULL
);
CREATE INDEX standing_votes_race ON standing_votes (race_id);

-- A vote replaces the standing one only if it is later: a replayed
-- message, cast when it was received, cannot overtake a later vote. Two
-- transactions voting on one ballot meet on its row (ON CONFLICT waits
-- for the other to commit), and the later vote stands whichever commits
-- first.
CREATE FUNCTION standing_votes_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO standing_votes AS s (ballot_id, race_id, vote_id, choice, candidate_id, cast_at)
    SELECT DISTINCT ON (n.ballot_id) n.ballot_id, b.race_id, n.id, n.choice, n.candidate_id, n.cast_at
    FROM new_votes n JOIN ballots b ON b.id = n.ballot_id
    ORDER BY n.ballot_id, n.cast_at DESC, n.id DESC
    ON CONFLICT (ballot_id) DO UPDATE
        SET vote_id = EXCLUDED.vote_id, choice = EXCLUDED.choice,
            candidate_id = EXCLUDED.candidate_id, cast_at = EXCLUDED.cast_at
        WHERE (s.cast_at, s.vote_id) < (EXCLUDED.cast_at, EXCLUDED.vote_id);
    RETURN NULL;
END $$;
CREATE TRIGGER votes_standing_insert AFTER INSERT ON votes
    REFERENCING NEW TABLE AS new_votes
    FOR EACH STATEMENT EXECUTE FUNCTION standing_votes_insert();

-- ballotd never changes or deletes a vote; should anything, the ballots it
-- touched get their standing vote again from the history.
CREATE FUNCTION standing_votes_redo() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM standing_votes WHERE ballot_id IN (OLD.ballot_id, NEW.ballot_id);
    INSERT INTO standing_votes (ballot_id, race_id, vote_id, choice, candidate_id, cast_at)
    SELECT DISTINCT ON (v.ballot_id) v.ballot_id, b.race_id, v.id, v.choice, v.candidate_id, v.cast_at
    FROM votes v JOIN ballots b ON b.id = v.ballot_id
    WHERE v.ballot_id IN (OLD.ballot_id, NEW.ballot_id)
    ORDER BY v.ballot_id, v.cast_at DESC, v.id DESC;
    RETURN NULL;
END $$;
CREATE TRIGGER votes_standing_redo AFTER UPDATE OR DELETE ON votes
    FOR EACH ROW EXECUTE FUNCTION standing_votes_redo();
CREATE FUNCTION standing_votes_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE standing_votes;
    RETURN NULL;
END $$;
CREATE TRIGGER votes_standing_truncate AFTER TRUNCATE ON votes
    FOR EACH STATEMENT EXECUTE FUNCTION standing_votes_truncate();

INSERT INTO standing_votes (ballot_id, race_id, vote_id, choice, candidate_id, cast_at)
SELECT DISTINCT ON (v.ballot_id) v.ballot_id, b.race_id, v.id, v.choice, v.candidate_id, v.cast_at
FROM votes v JOIN ballots b ON b.id = v.ballot_id
ORDER BY v.ballot_id, v.cast_at DESC, v.id DESC;

-- The few rows that make a ballot unreachable or undelivered, so that the
-- tally's reachable count, `ballotd ballots` and the digest find them
-- without reading every ballot: copies bounced for good, and members
-- unsubscribed or bounced. Both hold only those rows, so they cost the
-- imports and sends that write other rows nothing. (Failed copies have
-- outbox_failed; queued and deferred ones outbox_ready; sending ones
-- outbox_leased.)
CREATE INDEX outbox_bounced ON outbox (ballot_id)
    WHERE ballot_id IS NOT NULL AND (bounce_hard OR bounce_status LIKE '5.%');
CREATE INDEX members_unreachable ON members (id) WHERE status IN ('unsubscribed', 'bounced');
