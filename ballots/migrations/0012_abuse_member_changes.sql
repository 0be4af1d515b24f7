-- 0012 (abuse): a sign-up that would change an existing member (name,
-- district or status) waits here until the member's registered address
-- confirms it (ballots+c-TOKEN@, the token naming this row). Only the
-- latest request of a member can be confirmed; an older one is superseded.

CREATE TABLE member_changes (
    id            bigserial PRIMARY KEY,
    member_id     bigint NOT NULL REFERENCES members(id),
    -- the member as it was when the change was asked for: the change
    -- applies only to a member still as it was
    old_name      text NOT NULL,
    old_district  text NOT NULL,
    old_status    text NOT NULL,
    name          text NOT NULL,
    state         text NOT NULL,
    district      text NOT NULL,
    status        text NOT NULL,
    inbound_id    bigint REFERENCES inbound_messages(id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    outcome       text NOT NULL DEFAULT 'waiting'
                  CHECK (outcome IN ('waiting', 'applied', 'superseded', 'stale')),
    done_at       timestamptz
);
CREATE INDEX member_changes_waiting ON member_changes (member_id) WHERE outcome = 'waiting';
