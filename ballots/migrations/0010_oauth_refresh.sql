-- 0010: the latest OAuth2 refresh token of the mailbox account, when the
-- provider rotates it (Microsoft sends a new one with every refresh), so a
-- restart does not fall back to the configured one after it has expired.
-- origin names the configured token the chain started from (a hash); a
-- new configured token starts a new chain. sealed is AES-256-GCM under a
-- key derived from BALLOTD_SECRET, never the token in clear.
CREATE TABLE oauth_refresh_tokens (
    origin     text PRIMARY KEY,
    sealed     bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
