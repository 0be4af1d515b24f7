-- 0013 (issue 22): an outbox that cannot send twice, and why mail failed.
--
-- claim is written at each claim from outbox_claims: a result, a release,
-- is written only where the row still carries the holder's claim, so a
-- holder whose lease ran out and whose row another worker or replica has
-- claimed since changes nothing.
--
-- reason is the class of the last failure, deferral or bounce (see
-- ballots.FailureReasons: unknown_mailbox, mailbox_full, policy,
-- greylisting, throttled, tls, dns, network, other), '' when none, and
-- complaint says a recipient reported the message as abuse (an RFC 5965
-- feedback report, a provider's feedback loop), for `ballotd delivery`.
CREATE SEQUENCE outbox_claims;
ALTER TABLE outbox
    ADD COLUMN claim     bigint,
    ADD COLUMN reason    text NOT NULL DEFAULT '',
    ADD COLUMN complaint boolean NOT NULL DEFAULT false;

-- The age of the oldest unsent row (/healthz, /metrics, status) is read
-- from the first entry of this index, not by scanning the outbox.
CREATE INDEX outbox_unsent ON outbox (created_at) WHERE status IN ('queued', 'sending', 'deferred');
