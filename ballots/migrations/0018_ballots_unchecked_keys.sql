-- 0018 (issue 23): a ballot's race and member, and an outbox row's ballot,
-- are checked by no foreign key any more. Each check cost a lookup and a
-- row lock (a WAL record on the member's, the race's or the ballot's row)
-- per row written: together about half of PostgreSQL's work in a race
-- open (≈ 55 µs a ballot with them, ≈ 29 without, measured on 100,000).
-- Every ballot is made by a race open's statement that reads the race
-- (locked FOR UPDATE) and the members it names; every outbox row that
-- names a ballot is written by a statement that made or read it. Nothing
-- deletes a race or a ballot, and members are deleted only by an import
-- into an empty members table (duplicate lines), when no ballot can name
-- them. Should a row ever name a ballot that is not there, its mail fails
-- at render (mailer: no nonce, so no token a reply could be checked
-- against) instead of going out. Votes keep their key to the ballot.
ALTER TABLE ballots DROP CONSTRAINT ballots_race_id_fkey, DROP CONSTRAINT ballots_member_id_fkey;
ALTER TABLE outbox DROP CONSTRAINT outbox_ballot_id_fkey;
