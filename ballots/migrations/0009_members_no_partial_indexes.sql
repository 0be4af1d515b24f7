-- 0009: members drops its two partial indexes on state and district. They
-- served only race open, which reads each eligible member once per race (a
-- sequential scan of a million rows takes well under a second), while every
-- import and sign-up paid for them on each row.
DROP INDEX IF EXISTS members_state;
DROP INDEX IF EXISTS members_district;
